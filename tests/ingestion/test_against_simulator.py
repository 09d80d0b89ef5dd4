"""Pulls against the running simulator (real HTTP on loopback, real file drops), compared
with its ground truth: every site and kind, every fault, re-runs, overlaps, SIGKILL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from ingestion.http import FetchError, NotDeliveredError, RetryPolicy
from ingestion.orchestration import ingest_interval
from ingestion.paths import DataPaths
from ingestion.pii_scan import scan_landing
from ingestion.pull import pull
from ingestion.registry import DEFAULT_REGISTRY, Registry, load_registry, parse_registry
from ingestion.state import StateStore
from ingestion.timeutil import LOCAL_TZ
from tests.fixtures.simulator import SimulatorHandle
from tests.ingestion.conftest import use

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(attempts=5, backoff_base_s=0.05, backoff_max_s=0.5, retry_after_max_s=2.0, timeout_s=10.0)
ISC_SITE, REST_SITE = "cy_commerce_block", "lt_airport_block"  # the smallest sites of each API shape
DAY = dt.date(2026, 1, 6)


def small_pages(page_size: int = 500) -> Registry:
    """The registry with smaller API pages, so one day spans several pages."""
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text(encoding="utf-8"))
    for site in raw["sites"]:
        for source in site["sources"].values():
            if source["shape"] in ("isc_openapi", "token_rest"):
                source["page_size"] = page_size
    return parse_registry(raw)


def landed(paths: DataPaths, kind: str, site_id: str) -> list[tuple[Any, ...]]:
    """(day, _source_record_id) of every landed row of a site's kind."""
    files = list((paths.landing / kind / f"site={site_id}").glob("date=*/data.parquet"))
    if not files:
        return []
    glob = str(paths.landing / kind / f"site={site_id}" / "date=*" / "data.parquet")
    return (
        duckdb.connect()
        .sql(f"select date::varchar, _source_record_id from read_parquet('{glob}', hive_partitioning=true)")
        .fetchall()
    )


def quarantined(paths: DataPaths, kind: str, site_id: str) -> list[tuple[Any, ...]]:
    base = paths.quarantine / kind / f"site={site_id}"
    if not any(base.glob("date=*/quarantine.parquet")):
        return []
    glob = str(base / "date=*" / "quarantine.parquet")
    return (
        duckdb.connect().sql(f"select day::varchar, _source_record_id, reason from read_parquet('{glob}')").fetchall()
    )


def by_day(rows: list[tuple[Any, ...]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[0]] = counts.get(row[0], 0) + 1
    return counts


def assert_matches_truth(sim: SimulatorHandle, paths: DataPaths, site_id: str, kind: str, start: dt.date, end: dt.date):
    truth = sim.control.truth(site_id, kind, str(start), str(end))
    rows = landed(paths, kind, site_id)
    in_range = [r for r in rows if str(start) <= r[0] <= str(end)]
    expected = {d: n for d, n in truth["by_day"].items() if n}
    assert {d: n for d, n in by_day(in_range).items() if n} == expected, f"{site_id}/{kind}"
    assert len({r[1] for r in in_range}) == len(in_range), f"{site_id}/{kind}: duplicate record ids landed"
    bad = quarantined(paths, kind, site_id)
    assert len(bad) == len(truth["malformed"]), (
        f"{site_id}/{kind}: quarantine {bad[:3]} vs truth {truth['malformed'][:3]}"
    )
    ids = {b[1].split("|")[0] for b in bad if b[1] is not None}  # device-hours: the device id
    if len(ids) == len({b[1] for b in bad}):
        assert ids == {m["id"] for m in truth["malformed"]}, f"{site_id}/{kind}"
    return truth


def smallest_site_per_shape_and_kind(registry: Registry) -> list[tuple[str, str]]:
    """Every (vendor shape, kind) combination once, at its smallest site (keeps the default suite quick)."""
    chosen: dict[tuple[str, str], tuple[int, str]] = {}
    for site in registry.sites:
        for kind, source in site.sources.items():
            key = (source.shape, kind)
            if key not in chosen or site.residents < chosen[key][0]:
                chosen[key] = (site.residents, site.site_id)
    return sorted((site_id, kind) for (_, kind), (_, site_id) in chosen.items())


def land_and_compare(
    sim: SimulatorHandle, paths: DataPaths, pairs: list[tuple[str, str]], first: dt.date, last: dt.date
):
    registry = load_registry()
    malformed_total = 0
    for site_id, kind in pairs:
        # drops: the range plus the late-listing day; a monthly workbook exactly the range (a
        # row with an unreadable date cannot be placed, so it must not come from outside it)
        monthly = registry.site(site_id).source(kind).shape == "manual_xlsx"
        drop_end = last if monthly else last + dt.timedelta(days=1)
        sim.control.drop_files(str(first), str(drop_end), site=site_id, kind=kind)
        pull(site_id, kind, first, last, registry=registry, policy=FAST)
        truth = assert_matches_truth(sim, paths, site_id, kind, first, last)
        malformed_total += len(truth["malformed"])
    assert malformed_total > 0, "the fault injected no malformed rows: the test would prove nothing"
    report = scan_landing(paths)
    assert report.files > 0 and report.clean, report.hits[:5]


DATA_FAULTS = [
    {"fault": "malformed_rows", "params": {"rate": 0.003}},
    {"fault": "invalid_id_checksum", "params": {"rate": 0.003}},
]


def test_every_shape_and_kind_lands_truth_minus_quarantined_malformed(simulator_factory, monkeypatch, tmp_path):
    sim = simulator_factory(seed=7, faults=DATA_FAULTS, start="2026-01-25", end="2026-02-03", quiet=True)
    paths = use(sim, monkeypatch, tmp_path)
    day = dt.date(2026, 2, 1)  # the register snapshot day, and a new month's workbooks
    land_and_compare(sim, paths, smallest_site_per_shape_and_kind(load_registry()), day, day)


@pytest.mark.slow
def test_every_site_and_kind_for_a_week(simulator_factory, monkeypatch, tmp_path):
    sim = simulator_factory(seed=7, faults=DATA_FAULTS, start="2026-01-25", end="2026-02-10", quiet=True)
    paths = use(sim, monkeypatch, tmp_path)
    first, last = dt.date(2026, 1, 29), dt.date(2026, 2, 4)  # a week across a month end and a register snapshot
    registry = load_registry()
    pairs = [(site.site_id, kind) for site in registry.sites for kind in site.sources]
    land_and_compare(sim, paths, pairs, first, last)


@pytest.mark.parametrize(
    ("site_id", "fault"),
    [
        (ISC_SITE, {"fault": "rate_limit", "count": 2, "params": {"retry_after": 1}}),
        (REST_SITE, {"fault": "rate_limit", "count": 2, "params": {"retry_after": 1}}),
        (ISC_SITE, {"fault": "server_error", "count": 2}),
        (REST_SITE, {"fault": "server_error", "count": 2, "params": {"status": 502}}),
        (ISC_SITE, {"fault": "slow", "count": 1, "params": {"delay_s": 3}}),
        (REST_SITE, {"fault": "reset_mid_body", "count": 2}),
        (ISC_SITE, {"fault": "reset_mid_body", "count": 1, "after_page": 1}),
        (ISC_SITE, {"fault": "error_code", "count": 2}),
        (REST_SITE, {"fault": "error_code", "count": 2}),
        (REST_SITE, {"fault": "token_expired", "count": 1, "after_page": 1}),
        (ISC_SITE, {"fault": "duplicate_rows", "after_page": 1}),
        (REST_SITE, {"fault": "duplicate_rows", "after_page": 1}),
        (ISC_SITE, {"fault": "total_drift", "after_page": 1}),
        (ISC_SITE, {"fault": "schema_drift", "params": {"variant": "new_field"}}),
        (ISC_SITE, {"fault": "schema_drift", "params": {"variant": "renamed_field"}}),
        (ISC_SITE, {"fault": "schema_drift", "params": {"variant": "number_as_string"}}),
        (REST_SITE, {"fault": "schema_drift", "params": {"variant": "renamed_field"}}),
        (REST_SITE, {"fault": "schema_drift", "params": {"variant": "number_as_string"}}),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v['fault']}-{v.get('params', {}).get('variant', '')}",
)
def test_transient_faults_end_with_exact_truth(sim, site_id, fault):
    simulator, paths = sim
    simulator.control.set_faults([{**fault, "site": site_id, "kind": "passages"}])
    policy = RetryPolicy(**{**FAST.__dict__, "timeout_s": 1.5}) if fault["fault"] == "slow" else FAST
    outcome = pull(site_id, "passages", DAY, DAY, registry=small_pages(), policy=policy)
    assert outcome.outcome == "success"
    if fault["fault"] in ("rate_limit", "server_error", "slow", "reset_mid_body", "error_code", "token_expired"):
        assert outcome.retries >= 1, "the fault never fired: the test would prove nothing"
    if fault["fault"] == "duplicate_rows":
        assert outcome.figures.rows_deduplicated > 0
    simulator.control.clear_faults()
    assert_matches_truth(simulator, paths, site_id, "passages", DAY, DAY)


@pytest.mark.parametrize("site_id", [ISC_SITE, REST_SITE])
def test_persistent_fault_fails_loudly_then_rerun_gives_truth(sim, site_id):
    simulator, paths = sim
    simulator.control.set_faults([{"fault": "server_error", "site": site_id, "kind": "passages"}])
    with pytest.raises(FetchError) as failure:
        pull(site_id, "passages", DAY, DAY, registry=small_pages(), policy=FAST)
    message = str(failure.value)
    assert site_id in message and "passages" in message and "503" in message, message
    audit = StateStore(paths).audit()
    assert audit[-1]["outcome"] == "failed" and "503" in audit[-1]["error"]
    assert landed(paths, "passages", site_id) == []  # nothing half-landed
    simulator.control.clear_faults()
    pull(site_id, "passages", DAY, DAY, registry=small_pages(), policy=FAST)
    assert_matches_truth(simulator, paths, site_id, "passages", DAY, DAY)


@pytest.mark.parametrize(
    ("site_id", "kind"), [(ISC_SITE, "passages"), (REST_SITE, "passages"), ("xihoulou", "fire_alarms")]
)
def test_late_events_reopen_their_day_without_duplicates(sim, site_id, kind):
    simulator, paths = sim
    simulator.control.set_faults([{"fault": "late_events", "site": site_id, "kind": kind, "params": {"rate": 0.3}}])
    simulator.control.drop_files(str(DAY), str(DAY + dt.timedelta(days=2)), site=site_id, kind=kind)
    pull(site_id, kind, DAY, DAY, policy=FAST)
    truth = assert_matches_truth(simulator, paths, site_id, kind, DAY, DAY)
    assert truth["late"], "no late event was injected: the test would prove nothing"
    nxt = DAY + dt.timedelta(days=1)
    pull(site_id, kind, nxt, nxt, policy=FAST)  # the late rows of DAY are listed here: not landed twice
    assert_matches_truth(simulator, paths, site_id, kind, DAY, nxt)


@pytest.mark.parametrize(
    ("site_id", "kind", "fault"),
    [
        (ISC_SITE, "service_cases", "truncated_file"),  # gov_export CSV (GBK)
        ("baishawan", "service_cases", "truncated_file"),  # gov_export XLSX
        ("xihoulou", "fire_alarms", "truncated_file"),  # alarm JSON lines
        ("cy_old_estate", "activities", "truncated_file"),  # manual workbook
    ],
)
def test_truncated_file_fails_loudly_then_redrop_gives_truth(sim, site_id, kind, fault):
    simulator, paths = sim
    simulator.control.set_faults([{"fault": fault, "site": site_id, "kind": kind}])
    simulator.control.drop_files(str(DAY), str(DAY + dt.timedelta(days=1)), site=site_id, kind=kind)
    with pytest.raises(FetchError, match="truncated") as failure:
        pull(site_id, kind, DAY, DAY, policy=FAST)
    assert site_id in str(failure.value) and kind in str(failure.value)
    simulator.control.clear_faults()
    simulator.control.drop_files(str(DAY), str(DAY + dt.timedelta(days=1)), site=site_id, kind=kind)
    pull(site_id, kind, DAY, DAY, policy=FAST)
    assert_matches_truth(simulator, paths, site_id, kind, DAY, DAY)


@pytest.mark.parametrize(
    ("site_id", "kind", "fault"),
    [
        (ISC_SITE, "service_cases", "wrong_encoding"),
        (ISC_SITE, "service_cases", "duplicate_file"),
        ("xihoulou", "fire_alarms", "duplicate_file"),
        ("cy_old_estate", "activities", "duplicate_file"),
    ],
)
def test_file_faults_read_correctly(sim, site_id, kind, fault):
    simulator, paths = sim
    simulator.control.set_faults([{"fault": fault, "site": site_id, "kind": kind}])
    simulator.control.drop_files(str(DAY), str(DAY + dt.timedelta(days=1)), site=site_id, kind=kind)
    outcome = pull(site_id, kind, DAY, DAY, policy=FAST)
    if fault == "duplicate_file" and outcome.figures.rows_landed:
        assert outcome.figures.rows_deduplicated >= outcome.figures.rows_landed
    assert_matches_truth(simulator, paths, site_id, kind, DAY, DAY)


def test_missing_drop_is_not_delivered_not_empty(sim):
    _, paths = sim
    with pytest.raises(NotDeliveredError, match="not delivered"):
        pull(ISC_SITE, "service_cases", dt.date(2026, 1, 9), dt.date(2026, 1, 9), policy=FAST)
    assert not paths.partition("service_cases", ISC_SITE, "2026-01-09").exists()


def test_scheduled_interval_lands_month_to_date_for_monthly_workbooks(sim):
    simulator, paths = sim
    simulator.control.drop_files("2026-01-01", "2026-01-07", site="cy_old_estate", kind="service_cases")
    start = dt.datetime(2026, 1, 6, tzinfo=LOCAL_TZ)
    summary = ingest_interval("cy_old_estate", "service_cases", start, start + dt.timedelta(days=1), "scheduled__t")
    assert (summary["start"], summary["end"]) == ("2026-01-01", "2026-01-06")
    assert_matches_truth(simulator, paths, "cy_old_estate", "service_cases", dt.date(2026, 1, 1), dt.date(2026, 1, 6))


def test_rerun_and_overlapping_ranges_never_duplicate(sim):
    simulator, paths = sim
    first, last = dt.date(2026, 1, 5), dt.date(2026, 1, 8)
    pull(REST_SITE, "passages", first, dt.date(2026, 1, 6), policy=FAST)
    pull(REST_SITE, "passages", dt.date(2026, 1, 6), last, policy=FAST)  # overlaps on the 6th
    pull(REST_SITE, "passages", first, last, policy=FAST)  # and the whole range again
    assert_matches_truth(simulator, paths, REST_SITE, "passages", first, last)
    assert {s["outcome"] for s in StateStore(paths).audit()} == {"success"}
    assert StateStore(paths).watermark(REST_SITE, "passages") == last


def test_sigkill_mid_run_then_rerun_gives_truth(sim):
    simulator, paths = sim
    first, last = dt.date(2026, 1, 3), dt.date(2026, 1, 10)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    args = [sys.executable, "-m", "ingestion", "pull", "--site", ISC_SITE, "--kind", "passages"]
    args += ["--start", str(first), "--end", str(last), "--quiet"]
    child = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = paths.landing / "passages" / f"site={ISC_SITE}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(base.glob("date=*/data.parquet"))) < 2:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    written = len(list(base.glob("date=*/data.parquet")))
    assert 2 <= written < 8, f"the kill did not land mid-run ({written} partitions)"
    pull(ISC_SITE, "passages", first, last, policy=FAST)
    assert_matches_truth(simulator, paths, ISC_SITE, "passages", first, last)
    assert not [p for p in base.rglob("*") if p.is_file() and p.name != "data.parquet"], "temp files left visible"
