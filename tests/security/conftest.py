"""tests/security: the Superset tests (test_superset_*.py) use the Superset session fixtures of
tests/superset/fixtures.py, registered once as a plugin (tests/superset/conftest.py), so a run
of tests/superset and tests/security starts one Superset."""

from __future__ import annotations

import pytest

from tests.superset.conftest import register_fixtures


def pytest_configure(config: pytest.Config) -> None:
    register_fixtures(config)
