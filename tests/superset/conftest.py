"""The Superset session fixtures (one real Superset per run, tests/superset/fixtures.py), and
the names the tests import from here."""

from __future__ import annotations

import pytest

from tests.superset import fixtures
from tests.superset.fixtures import (  # noqa: F401 (imported by the tests from here)
    ARTIFACTS,
    PROJECT_ROOT,
    Client,
    RunningSuperset,
    ServingData,
    free_port,
)


def register_fixtures(config: pytest.Config) -> None:
    """The fixtures as a plugin (global, registered once), not as a folder's conftest: tests/security
    registers the same plugin, and a run of both shares one Superset."""
    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, fixtures.__name__)


def pytest_configure(config: pytest.Config) -> None:
    register_fixtures(config)
