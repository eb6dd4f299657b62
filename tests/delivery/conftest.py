"""Shared fixtures: the real delivery files, parsed once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checks  # noqa: E402

ROOT = checks.REPO_ROOT


SERVICE_DIR = ROOT / "terraform" / "modules" / "service"
PIPELINE_DIR = ROOT / "terraform" / "pipeline"
# Every Terraform root (own state, own lock file) and the modules they call.
ROOT_DIRS = [ROOT / "terraform" / "pipeline", ROOT / "terraform" / "environments" / "test",
             ROOT / "terraform" / "environments" / "prod"]
KMS_DIR = ROOT / "terraform" / "modules" / "kms"
MODULE_DIRS = [SERVICE_DIR, ROOT / "terraform" / "modules" / "naming", KMS_DIR]


def _texts(directory: Path) -> dict[str, str]:
    files = sorted(directory.glob("*.tf"))
    assert files, f"{directory}/*.tf not found"
    return {p.name: p.read_text() for p in files}


@pytest.fixture(scope="session")
def tf_texts() -> dict[str, str]:
    """The environment stack (terraform/modules/service), one instance per environment."""
    return _texts(SERVICE_DIR)


@pytest.fixture(scope="session")
def module(tf_texts) -> checks.Module:
    return checks.Module.from_texts(tf_texts)


@pytest.fixture(scope="session")
def pipeline_texts() -> dict[str, str]:
    """The shared delivery stack (terraform/pipeline)."""
    return _texts(PIPELINE_DIR)


@pytest.fixture(scope="session")
def pipeline_module(pipeline_texts) -> checks.Module:
    return checks.Module.from_texts(pipeline_texts)


@pytest.fixture(scope="session")
def kms_texts() -> dict[str, str]:
    """The key module both stacks use (terraform/modules/kms)."""
    return _texts(KMS_DIR)


@pytest.fixture(scope="session", params=[d.relative_to(ROOT).as_posix() for d in ROOT_DIRS + MODULE_DIRS])
def any_module(request) -> checks.Module:
    """Each Terraform directory, one at a time."""
    return checks.Module.from_dir(ROOT / request.param)


@pytest.fixture(scope="session")
def all_tf_texts() -> dict[str, str]:
    """Every .tf file under terraform/, keyed by its path relative to terraform/."""
    base = ROOT / "terraform"
    return {p.relative_to(base).as_posix(): p.read_text() for p in sorted(base.rglob("*.tf"))
            if ".terraform" not in p.parts}


@pytest.fixture(scope="session")
def buildspec_text() -> str:
    return (ROOT / "buildspec.yml").read_text()


@pytest.fixture(scope="session")
def buildspec(buildspec_text) -> dict:
    return yaml.safe_load(buildspec_text)


@pytest.fixture(scope="session")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


@pytest.fixture(scope="session")
def readme() -> str | None:
    path = ROOT / "README.md"
    return path.read_text() if path.exists() else None
