#!/usr/bin/env bash
# Static checks of the delivery files: buildspec.yml (yamllint), Dockerfile (hadolint),
# terraform/ (checkov) and our own rules (pytest tests/delivery).
# Needs python3 (>= 3.10) and PyPI; the tools are installed once into .venv-delivery/
# (gitignored) and reinstalled only when the pinned requirements change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV_DIR="${DELIVERY_VENV:-$ROOT/.venv-delivery}"
PYTHON="${PYTHON:-python3}"

# ensure_venv NAME REQUIREMENTS: create/refresh $VENV_DIR/NAME when the requirements changed.
ensure_venv() {
    local name="$1" requirements="$2" dir="$VENV_DIR/$1" stamp want
    want="$(sha256sum "$requirements" | cut -d' ' -f1)"
    stamp="$dir/.requirements.sha256"
    if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    echo "delivery-checks: installing $name tools into $dir" >&2
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
    echo "$want" >"$stamp"
}

ensure_venv tools tests/delivery/requirements.txt
ensure_venv checkov tests/delivery/requirements-checkov.txt

TOOLS="$VENV_DIR/tools/bin"
export HADOLINT_BIN="$TOOLS/hadolint"
export YAMLLINT_BIN="$TOOLS/yamllint"
export CHECKOV_BIN="$VENV_DIR/checkov/bin/checkov"

failed=()

step() {
    local label="$1"
    shift
    echo "== $label"
    if ! "$@"; then
        failed+=("$label")
        echo "!! $label failed" >&2
    fi
}

step "yamllint buildspec.yml" "$YAMLLINT_BIN" --strict buildspec.yml .yamllint.yml
step "hadolint Dockerfile" "$HADOLINT_BIN" Dockerfile
# --skip-download: no network calls to the vendor's API (skips by CKV_* id still apply).
step "checkov terraform" "$CHECKOV_BIN" -d terraform --framework terraform --quiet --compact --skip-download
step "pytest tests/delivery" "$TOOLS/python" -m pytest tests/delivery -q -p no:cacheprovider

if ((${#failed[@]})); then
    echo "delivery-checks: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "delivery-checks: all passed"
