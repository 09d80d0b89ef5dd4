"""Shared fixtures: project paths and the registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingestion.registry import Registry, load_registry

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The suite runs the demo (its secrets, users and simulator); tests of the production
# behaviour unset it for themselves (core/demo.py).
os.environ.setdefault("SMARTCOMM_DEMO", "1")

# The simulator fixtures (`simulator`, `simulator_factory`) for every area's tests.
pytest_plugins = ["tests.fixtures.simulator"]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()
