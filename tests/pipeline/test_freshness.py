"""Freshness SLA per site and kind, from a real state database written by the ingestion StateStore."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from ingestion.paths import data_paths
from ingestion.state import LoadFigures, StateStore
from ingestion.timeutil import LOCAL_TZ
from pipeline.alerts import recorded_alerts
from pipeline.freshness import check_freshness, sla_hours

JUNE_30 = dt.date(2026, 6, 30)
MORNING_AFTER = dt.datetime(2026, 7, 1, 8, tzinfo=LOCAL_TZ)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateStore:
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SMARTCOMM_FRESHNESS_AS_OF", raising=False)
    return StateStore(data_paths())


def _load(state: StateStore, site: str, kind: str, through: dt.date, outcome: str = "success", run: str = "r1") -> None:
    state.start(run, site, kind, "isc_openapi", through, through)
    error = "HTTP 503 from vendor" if outcome == "failed" else None
    state.finish(run, site, kind, through, through, LoadFigures(), outcome=outcome, duration_s=1.0, error=error)


def _freshness(state: StateStore) -> dict[tuple[str, str], tuple]:
    with duckdb.connect(str(state.path), read_only=True) as con:
        rows = con.execute("select site_id, kind, status, age_hours, hours_late, sla_hours from freshness").fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_sla_precedence_site_over_shape_over_kind_over_default() -> None:
    settings = {
        "default_hours": 26,
        "kinds": {"surveys": 50},
        "shapes": {"manual_xlsx": 840},
        "sites": {"a": {"surveys": 9}},
    }
    assert sla_hours(settings, "a", "surveys", "manual_xlsx") == 9
    assert sla_hours(settings, "b", "surveys", "manual_xlsx") == 840
    assert sla_hours(settings, "b", "surveys", "token_rest") == 50
    assert sla_hours(settings, "b", "passages", "token_rest") == 26


def test_late_failing_and_fresh_feeds(state: StateStore) -> None:
    _load(state, "vanke_meili", "passages", JUNE_30)  # fresh: 8 h old, SLA 26 h
    _load(state, "vanke_meili", "vehicles", JUNE_30 - dt.timedelta(days=3))  # 80 h old: 54 h late
    _load(state, "xihoulou", "passages", JUNE_30 - dt.timedelta(days=1))
    _load(state, "xihoulou", "passages", JUNE_30, outcome="failed", run="r2")  # vendor down
    _load(state, "vanke_meili", "surveys", dt.date(2026, 5, 31))  # monthly workbook: 30 days 8 h old, SLA 35 days

    result = check_freshness(MORNING_AFTER)

    feeds = _freshness(state)
    assert feeds["vanke_meili", "passages"] == ("ok", 8.0, 0.0, 26.0)
    assert feeds["vanke_meili", "vehicles"] == ("late", 80.0, 54.0, 26.0)
    assert feeds["xihoulou", "passages"][:2] == ("failing", 32.0)
    assert feeds["vanke_meili", "surveys"] == ("ok", 728.0, 0.0, 840.0)
    assert feeds["lt_harbour", "passages"][0] == "missing"
    assert len(feeds) == sum(result["feeds"].values())
    keys = set(result["new_alerts"])
    assert {
        "freshness:vanke_meili:vehicles:late:2026-06-27",
        "freshness:xihoulou:passages:failing:2026-06-29",
    } <= keys
    assert not any(k.startswith("freshness:vanke_meili:passages") for k in keys)
    by_key = {a["key"]: a for a in recorded_alerts()}
    assert by_key["freshness:vanke_meili:vehicles:late:2026-06-27"]["severity"] == "critical"  # late > its SLA
    assert "HTTP 503" in by_key["freshness:xihoulou:passages:failing:2026-06-29"]["title_en"]


def test_a_feed_that_stays_late_is_alerted_once(state: StateStore, caplog: pytest.LogCaptureFixture) -> None:
    _load(state, "vanke_meili", "vehicles", JUNE_30 - dt.timedelta(days=3))
    first = check_freshness(MORNING_AFTER)
    again = check_freshness(MORNING_AFTER + dt.timedelta(hours=5))
    assert "freshness:vanke_meili:vehicles:late:2026-06-27" in first["new_alerts"]
    assert again["new_alerts"] == []
    assert _freshness(state)["vanke_meili", "vehicles"][2] == 59.0  # the table is the latest check
    assert "FRESHNESS LATE vanke_meili/vehicles: landed through 2026-06-27" in caplog.text
