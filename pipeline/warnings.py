"""Early warning in the evaluation run: send new high-severity warnings through the alert hook.

dbt computes the warnings (`fct_warnings`, `fct_forecasts` in dbt_project/models/warnings/)
in the run's `dbt build`; this step, after the mart validation and before publish, reads
them from the warehouse and raises one alert per warning episode through
`pipeline.alerts.raise_alerts`. The alert key is `warning:<warning_id>`, and warning_id is
stable while an episode goes on (site, kind, series and start), so an ongoing episode or a
re-run day never alerts twice. Which severities alert, and how recent a warning must be to
alert at all (a backfill of past months must not page anyone), is config/warnings.yml.

CLI: `python -m pipeline.warnings --data-dir data` raises the alerts of the built warehouse
and prints the open warnings.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import duckdb
import yaml

from ingestion.paths import data_paths
from ingestion.registry import PROJECT_ROOT
from pipeline.alerts import Alert, raise_alerts

log = logging.getLogger(__name__)
WARNINGS_CONFIG = PROJECT_ROOT / "config" / "warnings.yml"


def warnings_config() -> dict[str, Any]:
    return yaml.safe_load(WARNINGS_CONFIG.read_text(encoding="utf-8"))


def read_warnings(warehouse_db: Path, where: str = "true", params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Rows of fct_warnings (read-only; dbt has released the warehouse by now)."""
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        cursor = con.execute(f"select * from fct_warnings where {where} order by start_time, site_id", params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def warning_alert(row: dict[str, Any], alert_severity: dict[str, str]) -> Alert:
    """The alert of one warning episode; its key is the episode's stable id."""
    return Alert(
        key=f"warning:{row['warning_id']}",
        source="warning",
        severity=alert_severity[row["severity"]],
        site_id=row["site_id"],
        title_zh=f"预警：{row['kind_name_zh']}（{row['site_name_zh']}，{row['series_label_zh']}）",
        title_en=f"Early warning: {row['kind_name_en']} ({row['site_id']}, {row['series_key']})",
        details={
            "warning_id": row["warning_id"],
            "kind": row["kind"],
            "start_time": row["start_time"],
            "status": row["status"],
            "severity": row["severity"],
            "score": round(float(row["score"]), 2),
            "observed": row["observed_value"],
            "expected": row["expected_value"],
            "explanation_zh": row["explanation_zh"],
            "explanation_en": row["explanation_en"],
        },
    )


def early_warning(
    warehouse_db: Path | None = None, state_db: Path | None = None, hooks: list[str] | None = None
) -> dict[str, Any]:
    """Raise the alerts of recent warnings of the alerting severities; return what was sent.

    Recent = abnormal within `alerts.recent_days` of the newest warning data; older episodes
    (a backfill) are recorded on the dashboard only.
    """
    config = warnings_config()["alerts"]
    warehouse_db = warehouse_db or data_paths().warehouse_db
    severities = list(config["severities"])
    placeholders = ", ".join("?" for _ in severities)
    rows = read_warnings(
        warehouse_db,
        f"severity in ({placeholders}) and last_abnormal_until >= "
        "(select max(last_abnormal_until) from fct_warnings) - to_days(cast(? as integer))",
        [*severities, int(config["recent_days"])],
    )
    new = raise_alerts((warning_alert(row, config["alert_severity"]) for row in rows), state_db=state_db, hooks=hooks)
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        open_now, total = con.execute("select count(*) filter (where is_open), count(*) from fct_warnings").fetchone()
    log.info("early warning: %d warnings (%d open), %d alerting, %d new alerts", total, open_now, len(rows), len(new))
    return {"warnings": total, "open": open_now, "alerting": len(rows), "new_alerts": [a.key for a in new]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Raise the alerts of the built warehouse's warnings and list the open ones. "
        "Example: python -m pipeline.warnings --data-dir data"
    )
    parser.add_argument("--data-dir", default=None, help="data directory (default $SMARTCOMM_DATA_DIR or <repo>/data)")
    args = parser.parse_args(argv)
    paths = data_paths(args.data_dir)
    result = early_warning(paths.warehouse_db, paths.state_db)
    print(f"{result['warnings']} warnings, {result['open']} open, {len(result['new_alerts'])} new alerts")
    for row in read_warnings(paths.warehouse_db, "is_open"):
        print(f"  [{row['severity_zh']}] {row['explanation_zh']}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
