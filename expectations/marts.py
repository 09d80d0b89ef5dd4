"""Validate the evaluation marts dbt builds in the warehouse, one month at a time.

Each mart is read for one month through DuckDB (read-only, closed right after) into pandas
and checked with its suite. The checks below are the marts' contract with dbt_project/:
ratios in [0, 1], scores in [0, 100], stars in 1-5, coverage in [0, 1], one row per key,
every pilot site present each month. A mart that does not exist is a pipeline error (dbt
did not build it), not a data failure.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from core.sql import identifier
from expectations.engine import GxEngine
from expectations.landing import new_run_id, to_outcomes
from expectations.results import DataQualityPipelineError, ValidationReport
from expectations.suites import build_mart_suite
from ingestion.paths import data_paths
from ingestion.registry import Registry, load_registry

LAYER = "marts"

# mart -> (SQL selecting one month, `?` = the month's first day; the checks on its rows)
MART_CHECKS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "indicator_values": (
        # ratio_value: the value of ratio indicators only (the catalog's unit), so the [0, 1]
        # bound does not apply to minutes, working days or rates per 10,000 passages.
        """select v.site_id, v.month, v.indicator_id, v.value, v.assessable,
                  case when c.unit = 'ratio' then v.value end as ratio_value
           from {indicator_values} v left join {indicator_catalog} c using (indicator_id)
           where v.month = ?""",
        [
            {
                "type": "between",
                "rule": "ratio_in_unit_interval",
                "column": "ratio_value",
                "min": 0,
                "max": 1,
                "description": "ratio indicators lie in [0, 1]",
            },
            {
                "type": "between",
                "rule": "score_in_range",
                "column": "value",
                "min": 0,
                "description": "no indicator is negative",
            },
            {"type": "unique", "rule": "key_unique", "columns": ["site_id", "month", "indicator_id"]},
            {
                "type": "sites_present",
                "rule": "every_site_present",
                "column": "site_id",
                "description": "every pilot site has indicator values this month",
            },
        ],
    ),
    "indicator_scores": (
        "select * from {indicator_scores} where month = ?",
        [
            {"type": "between", "rule": "score_in_range", "column": "score", "min": 0, "max": 100},
            {"type": "between", "rule": "stars_in_range", "column": "indicator_stars", "min": 0, "max": 5},
            {"type": "unique", "rule": "key_unique", "columns": ["site_id", "month", "framework_id", "indicator_id"]},
        ],
    ),
    "dimension_scores": (
        "select * from {dimension_scores} where month = ?",
        [{"type": "between", "rule": "score_in_range", "column": "score", "min": 0, "max": 100}],
    ),
    "star_ratings": (
        "select * from {star_ratings} where month = ?",
        [
            {"type": "not_null", "rule": "stars_in_range", "column": "stars"},
            {
                "type": "between",
                "rule": "stars_in_range",
                "column": "stars",
                "min": 1,
                "max": 5,
                "description": "ratings are 1 to 5 stars",
            },
            {"type": "between", "rule": "stars_in_range", "column": "band_stars", "min": 1, "max": 5},
            {
                "type": "between",
                "rule": "coverage_in_unit_interval",
                "column": "coverage",
                "min": 0,
                "max": 1,
                "description": "the share of indicator weight with data lies in [0, 1]",
            },
            {"type": "between", "rule": "score_in_range", "column": "total_score", "min": 0, "max": 110},
            {"type": "unique", "rule": "key_unique", "columns": ["site_id", "month", "framework_id"]},
            {
                "type": "sites_present",
                "rule": "every_site_present",
                "column": "site_id",
                "description": "every pilot site is rated this month",
            },
        ],
    ),
}


class MartValidator:
    """Validates the evaluation marts in a DuckDB file with one GX context."""

    def __init__(
        self,
        *,
        data_dir: Path | str | None = None,
        registry: Registry | None = None,
        gx_root: Path | str | None = None,
        engine: GxEngine | None = None,
    ) -> None:
        self.paths = data_paths(data_dir)
        self.registry = registry or load_registry()
        self.engine = engine or GxEngine(gx_root)

    def _read(
        self, db_path: Path, month: dt.date | None
    ) -> tuple[list[dt.date], dict[tuple[str, dt.date], pd.DataFrame]]:
        """Every mart's rows per month, read in one short read-only session."""
        try:
            con = duckdb.connect(str(db_path), read_only=True)
        except duckdb.Error as exc:
            raise DataQualityPipelineError(f"cannot open the marts database {db_path}: {exc}") from exc
        try:
            # dbt puts marts and seeds in schemas of its own (e.g. main, main_config): find them.
            found: dict[str, str] = {}
            for schema, table in con.execute(
                "select table_schema, table_name from information_schema.tables order by table_schema = 'main' desc"
            ).fetchall():
                found.setdefault(table, f"{identifier(schema)}.{identifier(table)}")
            missing = sorted((set(MART_CHECKS) | {"indicator_catalog"}) - set(found))
            if missing:
                raise DataQualityPipelineError(f"{db_path}: marts not built: {', '.join(missing)}")
            if month is not None:
                months = [month]
            else:
                months = [
                    r[0]
                    for r in con.execute(f"select distinct month from {found['star_ratings']} order by 1").fetchall()
                ]
            frames = {
                (mart, m): con.execute(sql.format(**found), [m]).df()
                for m in months
                for mart, (sql, _checks) in MART_CHECKS.items()
            }
        finally:
            con.close()
        return months, frames

    def validate(
        self, *, db_path: Path | str | None = None, month: str | dt.date | None = None, run_id: str | None = None
    ) -> ValidationReport:
        """Validate every mart for `month` (YYYY-MM or a date; default: every month rated)."""
        run_id = run_id or new_run_id()
        db_path = Path(db_path) if db_path else self.paths.warehouse_db
        if isinstance(month, str):
            month = dt.date.fromisoformat(f"{month[:7]}-01")
        months, frames = self._read(db_path, month)
        site_ids = [s.site_id for s in self.registry.sites]
        report = ValidationReport(run_id)
        for mart, (_sql, checks) in MART_CHECKS.items():
            name = f"marts.{mart}"
            if not self.engine.is_registered(name):
                self.engine.register(build_mart_suite(mart, checks))
            for m in months:
                results = self.engine.run(name, frames[(mart, m)], {"site_ids": site_ids}, run_id)
                report.outcomes.extend(
                    to_outcomes(
                        results, run_id=run_id, layer=LAYER, site_id=None, kind=mart, partition_date=m, suite=name
                    )
                )
        return report
