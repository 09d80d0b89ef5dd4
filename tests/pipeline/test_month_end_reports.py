"""Month-end reports are written only for rated months: a month the landed data begins inside
(a vendor's files from the week before the roll-out) has no rating, so no report, and the
evaluation does not fail on it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingestion.paths import data_paths
from pipeline.steps import completed_months, month_end_reports, rated_months


@pytest.fixture
def serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A serving database whose star ratings cover January 2026 only."""
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path))
    path = data_paths().serving_db
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create table star_ratings (site_id varchar, framework_id varchar, month date, stars integer)")
        con.execute(
            "insert into star_ratings values ('a', 'default', date '2026-01-01', 4), ('a', 'f2', date '2026-02-01', 3)"
        )
    return path


def test_a_month_the_data_begins_inside_gets_no_report(serving: Path) -> None:
    planned = {"sites": {"a": {"passages": ["2025-12-25", "2025-12-31", "2026-01-01"]}}}
    assert completed_months(planned) == ["2025-12"]  # its last day was landed, so it would be due
    assert rated_months() == {"2026-01"} and rated_months("f2") == {"2026-02"}
    assert month_end_reports(planned) == []
