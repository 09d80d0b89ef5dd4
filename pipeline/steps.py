"""Steps of the district evaluation run, one function per Airflow task (dags/evaluate_district.py).

What to evaluate is read from the load audit, not guessed from the clock: every (site,
local day) landed successfully since the last successful evaluation is validated and
rebuilt. A re-run after a failure picks up the same days again, so the run is idempotent.
The evaluation watermark lives in the state database beside the load audit.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import yaml

from core.sql import identifier, literal
from ingestion.paths import data_paths
from ingestion.registry import PROJECT_ROOT

log = logging.getLogger(__name__)
PIPELINE_CONFIG = PROJECT_ROOT / "config" / "pipeline.yml"


def pipeline_config() -> dict[str, Any]:
    return yaml.safe_load(PIPELINE_CONFIG.read_text(encoding="utf-8"))


_EVALUATION_SCHEMA = """
create table if not exists evaluation_runs (
    run_id varchar primary key,
    planned_at_utc timestamp not null,
    landed_until_utc timestamp,        -- load-audit rows finished up to here are covered
    days_planned integer,
    outcome varchar not null,          -- planned | success | blocked | failed
    reason varchar,
    finished_at_utc timestamp
);
"""


@contextmanager
def _state(read_only: bool = False, lock_wait_s: float = 120.0):
    """The state DuckDB file, opened briefly (ingest tasks write to it too)."""
    path = data_paths().state_db
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_wait_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only and path.exists())
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        if not read_only:
            con.execute(_EVALUATION_SCHEMA)
        yield con
    finally:
        con.close()


class DataQualityBlocked(RuntimeError):
    """A critical expectation failed somewhere in the run: nothing is published."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def plan(run_id: str) -> dict[str, Any]:
    """The (site, kind, days) landed successfully since the last successful evaluation.

    Returns {"run_id", "landed_until_utc", "sites": {site_id: {kind: [YYYY-MM-DD, ...]}}, "days": n}.
    """
    now = _utc_now()
    with _state() as con:
        since, rows = _landed_since_last_success(con, now)
        landed: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        if rows:
            for site_id, kind, start, end in rows:
                day = start
                while day <= end:
                    landed[site_id][kind].add(day.isoformat())
                    day += dt.timedelta(days=1)
        sites = {
            site: {kind: sorted(days) for kind, days in sorted(kinds.items())} for site, kinds in sorted(landed.items())
        }
        days = sum(len(d) for kinds in sites.values() for d in kinds.values())
        con.execute(
            "insert or replace into evaluation_runs values (?, ?, ?, ?, 'planned', null, null)",
            [run_id, now, now, days],
        )
    log.info("evaluation %s: %d site-kind-days landed since %s", run_id, days, since)
    return {"run_id": run_id, "landed_until_utc": now.isoformat(), "sites": sites, "days": days}


def _landed_since_last_success(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> tuple[Any, list[tuple]]:
    """(last successful evaluation's landed_until_utc, [(site, kind, start, end)] of loads finished since)."""
    since = con.execute("select max(landed_until_utc) from evaluation_runs where outcome = 'success'").fetchone()[0]
    if not con.execute("select count(*) from information_schema.tables where table_name = 'load_audit'").fetchone()[0]:
        return since, []
    rows = con.execute(
        """
        select site_id, kind, interval_start, interval_end from load_audit
        where outcome = 'success' and finished_at_utc <= ?
          and (? is null or finished_at_utc > ?)
        """,
        [now, since, since],
    ).fetchall()
    return since, rows


def nothing_to_evaluate() -> bool:
    """True when a successful evaluation covers every successful load (a re-run may skip it)."""
    if not data_paths().state_db.exists():
        return False
    with _state() as con:
        since, rows = _landed_since_last_success(con, _utc_now())
    return since is not None and not rows


def all_days(planned: dict[str, Any]) -> list[str]:
    return sorted({day for kinds in planned["sites"].values() for days in kinds.values() for day in days})


def validate_landing(planned: dict[str, Any]) -> dict[str, Any]:
    """Validate the planned partitions (every planned day, or the most recent `max_recent_days`
    per site and kind when config/pipeline.yml sets a cap) in one call with one GX context:
    each kind's partitions of all sites are checked together. Every site is checked before a
    critical failure is raised; the failures are reported per site."""
    from expectations.results import CriticalDataQualityError, ValidationReport
    from expectations.steps import validate_landing_plan

    recent = pipeline_config()["landing_validation"].get("max_recent_days")
    plan = {
        site_id: {kind: days[-int(recent) :] if recent else days for kind, days in kinds.items()}
        for site_id, kinds in planned["sites"].items()
    }
    report = validate_landing_plan(plan, planned["run_id"])
    by_site: dict[str, ValidationReport] = {site_id: ValidationReport(report.run_id) for site_id in plan}
    for outcome in report.outcomes:
        by_site[outcome.site_id].outcomes.append(outcome)
    summaries = {site_id: site_report.summary() for site_id, site_report in by_site.items()}
    critical = [str(CriticalDataQualityError(r)) for r in by_site.values() if not r.ok]
    if critical:
        raise DataQualityBlocked("\n".join(critical))
    return {"run_id": report.run_id, **report.summary(), "skipped": len(report.skipped), "sites": summaries}


def export_reference() -> dict[str, str]:
    from ingestion.reference import export_reference as export

    return {name: str(path) for name, path in export().items()}


def build_marts(planned: dict[str, Any]) -> dict[str, Any]:
    """`dbt build`, rebuilding the incremental facts of the planned days only."""
    from dbt_project.run import build

    days = all_days(planned)
    started = time.perf_counter()
    build(landing_days=days or None)
    return {"days": len(days), "seconds": round(time.perf_counter() - started, 1)}


def validate_marts(planned: dict[str, Any]) -> dict[str, Any]:
    from expectations.steps import validate_marts as validate

    return validate(planned["run_id"])


def publish() -> dict[str, Any]:
    from superset_assets.publish import publish as publish_serving

    result = publish_serving(data_paths().warehouse_db)
    return {"serving_db": str(result.serving_db), "tables": result.tables, "seconds": round(result.seconds, 2)}


def publish_quality_only() -> dict[str, Any]:
    """After a blocked run: publish the new data-quality results, keep the last good marts.

    The last good serving file is copied, the warehouse's data-quality tables replace its
    own, and that copy goes through the normal publish (labels, atomic rename), so the
    数据质量 dashboard says why the figures did not move.
    """
    import shutil

    from superset_assets.publish import load_publish_config
    from superset_assets.publish import publish as publish_serving

    paths = data_paths()
    if not paths.serving_db.exists() or not paths.warehouse_db.exists():
        return {"skipped": "nothing was published yet"}
    config = load_publish_config()
    quality_tables = [t for t in config["warehouse"].get("optional", []) if t.startswith("dq_")]
    last_good = paths.serving_db.with_name(f".last_good.{paths.serving_db.name}")
    shutil.copyfile(paths.serving_db, last_good)
    try:
        con = duckdb.connect(str(last_good))
        try:
            con.execute(f"attach {literal(str(paths.warehouse_db))} as wh (read_only)")
            present = {
                row[0]
                for row in con.execute("select table_name from duckdb_tables() where database_name = 'wh'").fetchall()
            }
            for table in quality_tables:
                con.execute(f"drop table if exists {identifier(table)}")
                if table in present:
                    con.execute(f"create table {identifier(table)} as select * from wh.{identifier(table)}")
        finally:
            con.close()
        result = publish_serving(last_good, paths.serving_db)
    finally:
        last_good.unlink(missing_ok=True)
    return {"serving_db": str(result.serving_db), "tables": result.tables}


def finish(planned: dict[str, Any], outcome: str, reason: str | None = None) -> None:
    """Record the evaluation's outcome; only `success` moves the watermark."""
    with _state() as con:
        con.execute(
            "update evaluation_runs set outcome = ?, reason = ?, finished_at_utc = ? where run_id = ?",
            [outcome, reason, _utc_now(), planned["run_id"]],
        )


def completed_months(planned: dict[str, Any]) -> list[str]:
    """Months whose last day is among the planned days: their report is due."""
    months = set()
    for day in all_days(planned):
        date = dt.date.fromisoformat(day)
        if (date + dt.timedelta(days=1)).month != date.month:
            months.add(date.strftime("%Y-%m"))
    return sorted(months)


def rated_months(framework_id: str = "default") -> set[str]:
    """The months ('YYYY-MM') the published star ratings cover under a framework."""
    from reporting.data import rated_months as published

    with duckdb.connect(str(serving_path()), read_only=True) as con:
        return set(published(con, framework_id))


def month_end_reports(planned: dict[str, Any], framework_id: str = "default") -> list[str]:
    """Write the evaluation report of every month that the planned days complete and that is
    rated: a month the landing zone reaches only at its end (files from before the roll-out)
    has no rating, so no report (dbt_project/models/marts/evaluation/indicator_values.sql)."""
    from reporting.__main__ import build_report

    due = completed_months(planned)
    rated = rated_months(framework_id) if due else set()
    written: list[str] = []
    for month in due:
        if month not in rated:
            log.info("no report for %s: the month is not rated (the landed data begins inside it)", month)
            continue
        for path in build_report(month, framework_id):
            written.append(str(path))
    return written


def serving_path() -> Path:
    return data_paths().serving_db
