"""A sparse landing zone: one site's passages from the epoch-ms vendor around a month end.

Every other kind has no file at all, so the build also proves the empty-glob fallback. Then
days are re-landed and the incremental facts must replace them, never duplicate them.
"""

from __future__ import annotations

import duckdb
import pytest

from dbt_project.run import build, run_dbt
from ingestion.landing import land_records
from ingestion.paths import data_paths
from ingestion.reference import export_reference
from ingestion.registry import load_registry
from tests.dbt.conftest import demo_pseudonymizer

SITE = "xihoulou"  # passages arrive in the token_rest shape: epoch milliseconds, UTC
LAST_SECOND_OF_JANUARY_MS = 1769875199000  # 2026-01-31T15:59:59Z = 2026-01-31 23:59:59+08:00
FIRST_SECOND_OF_FEBRUARY_MS = 1769875200000  # 2026-01-31T16:00:00Z = 2026-02-01 00:00:00+08:00


def _passage(event_id: str, epoch_ms: int, method: str = "face") -> dict:
    return {
        "event_id": event_id,
        "event_time": epoch_ms,
        "gate_id": "G01",
        "direction": "in",
        "method": method,
        "person_type": "resident",
        "person_id": f"R{event_id}",
        "tailgating": False,
    }


def _land(paths, day: str, records: list[dict], run_id: str) -> None:
    result = land_records(
        "passages",
        SITE,
        day,
        records,
        source_shape="token_rest",
        run_id=run_id,
        paths=paths,
        pseudonymizer=demo_pseudonymizer(),
    )
    assert result.rows_quarantined == 0, result.quarantine_reasons


def _rows(paths, sql: str) -> list[tuple]:
    with duckdb.connect(str(paths.warehouse_db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    paths = data_paths(tmp_path_factory.mktemp("dbt_sparse"))
    export_reference(paths.root, load_registry())
    _land(paths, "2026-01-30", [_passage(f"a{i}", 1769731200000 + i * 60_000) for i in range(5)], "run-1")
    _land(paths, "2026-01-31", [_passage("last-jan", LAST_SECOND_OF_JANUARY_MS)], "run-1")
    _land(paths, "2026-02-01", [_passage("first-feb", FIRST_SECOND_OF_FEBRUARY_MS, method="card")], "run-1")
    # Every model and seed (data tests run in the month build): ten kinds have no landed file.
    run_dbt(["build", "--exclude", "test_type:data", "test_type:unit"], paths.root)
    return paths


def test_epoch_ms_utc_lands_on_the_local_day_and_month(sparse) -> None:
    rows = dict(
        (event_id, (str(event_time), str(event_date), str(event_month)))
        for event_id, event_time, event_date, event_month in _rows(
            sparse,
            "select event_id, event_time, event_date, event_month from fct_passages where event_id in ('last-jan', 'first-feb')",
        )
    )
    assert rows == {
        "last-jan": ("2026-01-31 23:59:59", "2026-01-31", "2026-01-01"),
        "first-feb": ("2026-02-01 00:00:00", "2026-02-01", "2026-02-01"),
    }


def test_missing_kinds_build_as_empty_and_months_are_scored(sparse) -> None:
    assert _rows(sparse, "select count(*) from fct_alerts") == [(0,)]
    shares = dict(
        (str(month), (value, numerator, denominator))
        for month, value, numerator, denominator in _rows(
            sparse,
            f"select month, value, numerator, denominator from indicator_values "
            f"where site_id = '{SITE}' and indicator_id = 'contact_free_passage_share'",
        )
    )
    # the landed data begins on 30 January: January is not rated on two days, February is (to date)
    assert shares == {"2026-02-01": (0.0, 0.0, 1.0)}
    ratings = _rows(sparse, "select count(*), min(stars), max(stars) from star_ratings")
    assert ratings[0][0] > 0 and 1 <= ratings[0][1] <= ratings[0][2] <= 5


def test_relanded_day_replaces_its_rows_and_reruns_never_duplicate(sparse) -> None:
    def per_day() -> dict[str, int]:
        return {
            str(day): count
            for day, count in _rows(sparse, "select landing_date, count(*) from fct_passages group by 1")
        }

    before = per_day()
    assert before == {"2026-01-30": 5, "2026-01-31": 1, "2026-02-01": 1}

    # Day 2026-01-30 re-landed by a later run with two rows fewer: found by its new run id.
    _land(sparse, "2026-01-30", [_passage(f"a{i}", 1769731200000 + i * 60_000) for i in range(3)], "run-2")
    build(sparse.root, select="fct_passages")
    assert per_day() == {"2026-01-30": 3, "2026-01-31": 1, "2026-02-01": 1}

    # Nothing changed: a re-run keeps every count.
    build(sparse.root, select="fct_passages")
    assert per_day() == {"2026-01-30": 3, "2026-01-31": 1, "2026-02-01": 1}

    # The pipeline names the day it re-landed: only that day is rebuilt, with the new rows.
    _land(
        sparse,
        "2026-02-01",
        [_passage("first-feb", FIRST_SECOND_OF_FEBRUARY_MS), _passage("b2", FIRST_SECOND_OF_FEBRUARY_MS + 5)],
        "run-3",
    )
    build(sparse.root, landing_days=["2026-02-01"], select="fct_passages")
    assert per_day() == {"2026-01-30": 3, "2026-01-31": 1, "2026-02-01": 2}
    assert _rows(sparse, "select count(*) - count(distinct event_id) from fct_passages") == [(0,)]
    assert _rows(sparse, "select distinct _run_id from fct_passages where landing_date = '2026-02-01'") == [("run-3",)]


def test_a_named_day_is_tested_alone_but_its_keys_against_every_day(sparse) -> None:
    """The pipeline's daily build tests only the days it rebuilt (macros/incremental.sql);
    the grain test still counts a rebuilt key over the whole fact, so a duplicate of an
    older day's event fails the build."""
    from dbt_project.run import DbtRunError

    records = [_passage("last-jan", LAST_SECOND_OF_JANUARY_MS), _passage("a0", LAST_SECOND_OF_JANUARY_MS - 60_000)]
    _land(sparse, "2026-01-31", records, "run-4")
    with pytest.raises(DbtRunError, match="unique_combination_fct_passages_site_id__event_id"):
        build(sparse.root, landing_days=["2026-01-31"], select="fct_passages")
    compiled = sparse.warehouse_dir / "dbt" / "target" / "compiled" / "smartcomm" / "models" / "marts" / "core"
    accepted = next(compiled.rglob("accepted_values_fct_passages_direction*.sql")).read_text(encoding="utf-8")
    assert "landing_date in (cast('2026-01-31' as date))" in accepted

    _land(sparse, "2026-01-31", records[:1], "run-5")  # the vendor fixes the day: the build passes again
    build(sparse.root, landing_days=["2026-01-31"], select="fct_passages")
    assert _rows(sparse, "select count(*) - count(distinct event_id) from fct_passages") == [(0,)]
