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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The load audit's identity over every run the suite made: for each successful load,
    rows fetched = landed + deduplicated + quarantined + outside the window. A run that broke
    it fails the session, whichever test made it (tests/ingestion/test_accounting.py)."""
    import duckdb

    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or session.config.option.collectonly:
        return
    unbalanced = []
    for state_db in factory.getbasetemp().rglob("state.duckdb"):
        try:
            with duckdb.connect(str(state_db), read_only=True) as con:
                rows = con.execute(
                    "select run_id, site_id, kind, rows_fetched, rows_landed, rows_deduplicated, rows_quarantined,"
                    " rows_outside_window from load_audit where outcome = 'success' and rows_fetched <>"
                    " rows_landed + rows_deduplicated + rows_quarantined + rows_outside_window"
                ).fetchall()
        except duckdb.Error:  # not an ingestion state file, or one a test left broken on purpose
            continue
        unbalanced += [(str(state_db), *row) for row in rows]
    if unbalanced:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = "\n".join(map(str, unbalanced[:20]))
        if reporter:
            reporter.write_line(f"load audit rows that do not add up ({len(unbalanced)}):\n{lines}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
