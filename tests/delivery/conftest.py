"""Shared fixtures: the real delivery files, parsed once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checks  # noqa: E402

ROOT = checks.REPO_ROOT


@pytest.fixture(scope="session")
def tf_texts() -> dict[str, str]:
    files = sorted((ROOT / "terraform").glob("*.tf"))
    assert files, "terraform/*.tf not found"
    return {p.name: p.read_text() for p in files}


@pytest.fixture(scope="session")
def module(tf_texts) -> checks.Module:
    return checks.Module.from_texts(tf_texts)


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
