"""Pipeline steps for Airflow tasks: validate, record in dq_results, fail on critical.

A DAG task calls one of these and does nothing else. A critical failure raises
CriticalDataQualityError, so the task fails and everything downstream of it (dbt, the
publish step) does not run; warnings are recorded and returned. Validators are cached per
process: importing GX and building its context costs seconds, a partition milliseconds.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from expectations.landing import LandingValidator
from expectations.marts import MartValidator
from expectations.results import ValidationReport, write_results
from ingestion.paths import data_paths


@cache
def _landing_validator(data_dir: str | None, gx_root: str | None) -> LandingValidator:
    return LandingValidator(data_dir=data_dir, gx_root=gx_root)


@cache
def _mart_validator(data_dir: str | None, gx_root: str | None) -> MartValidator:
    landing = _landing_validator(data_dir, gx_root)
    return MartValidator(data_dir=data_dir, engine=landing.engine, registry=landing.registry)


def _write(report: ValidationReport, data_dir: str | None, results_db: str | Path | None) -> None:
    write_results(report.outcomes, Path(results_db) if results_db else data_paths(data_dir).warehouse_db)


def _finish(report: ValidationReport, data_dir: str | None, results_db: str | Path | None) -> dict:
    _write(report, data_dir, results_db)
    report.raise_for_critical()
    return {"run_id": report.run_id, **report.summary(), "skipped": len(report.skipped)}


def validate_landing_days(
    site_id: str,
    days: list[dt.date | str],
    run_id: str,
    *,
    kinds: list[str] | None = None,
    data_dir: str | None = None,
    gx_root: str | None = None,
    results_db: str | Path | None = None,
) -> dict:
    """Validate a site's landed days (all its kinds by default); raises on a critical failure."""
    validator = _landing_validator(data_dir, gx_root)
    report = validator.validate([site_id], days, kinds, run_id)
    return _finish(report, data_dir, results_db)


def validate_landing_plan(
    plan: dict[str, dict[str, list[dt.date | str]]],
    run_id: str,
    *,
    data_dir: str | None = None,
    gx_root: str | None = None,
    results_db: str | Path | None = None,
) -> ValidationReport:
    """Validate the days of every site and kind of an evaluation plan, `{site_id: {kind: days}}`,
    in one call (each kind's partitions of all sites together) and record them in dq_results.

    Returns the report and does not raise: the caller decides (pipeline.steps.validate_landing
    raises after summarizing per site)."""
    report = _landing_validator(data_dir, gx_root).validate_plan(plan, run_id)
    _write(report, data_dir, results_db)
    return report


def validate_landing_interval(
    site_id: str,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    run_id: str,
    **kwargs,
) -> dict:
    """The local days of an Airflow data interval [start, end) (Asia/Shanghai), as validate_landing_days."""
    import pendulum

    tz = pendulum.timezone("Asia/Shanghai")
    first = pendulum.instance(interval_start).in_timezone(tz).date()
    last = (pendulum.instance(interval_end).in_timezone(tz) - dt.timedelta(microseconds=1)).date()
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return validate_landing_days(site_id, days, run_id, **kwargs)


def validate_marts(
    run_id: str,
    *,
    month: str | None = None,
    db_path: str | Path | None = None,
    data_dir: str | None = None,
    gx_root: str | None = None,
    results_db: str | Path | None = None,
) -> dict:
    """Validate the evaluation marts (every month by default); raises on a critical failure."""
    report = _mart_validator(data_dir, gx_root).validate(db_path=db_path, month=month, run_id=run_id)
    return _finish(report, data_dir, results_db)
