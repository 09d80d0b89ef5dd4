"""Validation outcomes, the report a pipeline step acts on, and the `dq_results` table.

The table lives in the warehouse so the data-quality dashboard can read it (via the
published serving copy). The file is opened only for the write: dbt and the publish
step use the same file one after the other, and DuckDB allows one writer per file.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

DQ_RESULTS_DDL = """
create table if not exists dq_results (
    run_id              varchar   not null,  -- the pipeline run (Airflow run id or CLI run id)
    validated_at_utc    timestamp not null,
    layer               varchar   not null,  -- landing | marts
    site_id             varchar,             -- null for checks over all sites
    kind                varchar   not null,  -- landed source kind, or mart name
    partition_date      date      not null,  -- the local day (landing) or first day of the month (marts)
    suite               varchar   not null,
    expectation         varchar   not null,  -- rule[:column], stable across runs
    expectation_type    varchar   not null,  -- the GX expectation class
    column_name         varchar,
    severity            varchar   not null,  -- critical | warning | info
    success             boolean   not null,
    observed_value      varchar,
    unexpected_count    bigint,
    unexpected_percent  double,
    unexpected_examples varchar,             -- JSON list, never values of PII-derived columns
    description         varchar
)
"""

DQ_RESULTS_COLUMNS = (
    "run_id",
    "validated_at_utc",
    "layer",
    "site_id",
    "kind",
    "partition_date",
    "suite",
    "expectation",
    "expectation_type",
    "column_name",
    "severity",
    "success",
    "observed_value",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_examples",
    "description",
)


# The rows as Arrow, typed as the table (a column of nulls would otherwise have no type); the rest are varchar.
_ARROW_TYPES = {
    "validated_at_utc": pa.timestamp("us"),
    "partition_date": pa.date32(),
    "success": pa.bool_(),
    "unexpected_count": pa.int64(),
    "unexpected_percent": pa.float64(),
}
DQ_RESULTS_ARROW = pa.schema([(c, _ARROW_TYPES.get(c, pa.string())) for c in DQ_RESULTS_COLUMNS])


class DataQualityPipelineError(RuntimeError):
    """An expectation raised inside GX: the check itself broke, so nothing is known about the data."""


class CriticalDataQualityError(RuntimeError):
    """At least one critical expectation failed: the run must stop before publishing."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        lines = [f"{len(report.critical_failures)} critical data-quality failure(s):"]
        for o in report.critical_failures[:20]:
            lines.append(
                f"  {o.layer} {o.site_id or '*'} {o.kind} {o.partition_date}: {o.expectation} ({o.observed_value})"
            )
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Outcome:
    """One expectation's result for one partition: one row of dq_results."""

    run_id: str
    validated_at_utc: dt.datetime
    layer: str
    site_id: str | None
    kind: str
    partition_date: dt.date
    suite: str
    expectation: str
    expectation_type: str
    column_name: str | None
    severity: str
    success: bool
    observed_value: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    unexpected_examples: str | None
    description: str | None


@dataclass
class ValidationReport:
    """All outcomes of one validation call; `raise_for_critical()` is what a pipeline task calls."""

    run_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.failures if o.severity == "critical"]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.failures if o.severity != "critical"]

    @property
    def ok(self) -> bool:
        """True when no critical expectation failed (warnings do not block)."""
        return not self.critical_failures

    def extend(self, other: ValidationReport) -> None:
        self.outcomes.extend(other.outcomes)
        self.skipped.extend(other.skipped)

    def raise_for_critical(self) -> None:
        if not self.ok:
            raise CriticalDataQualityError(self)

    def summary(self) -> dict[str, int]:
        return {
            "expectations": len(self.outcomes),
            "failed": len(self.failures),
            "critical": len(self.critical_failures),
            "warning": len(self.warnings),
        }

    def as_dicts(self) -> list[dict]:
        return [asdict(o) for o in self.outcomes]


def write_results(outcomes: Iterable[Outcome], db_path: Path | str, *, lock_timeout_s: float = 120.0) -> int:
    """Write outcomes into `dq_results`; a re-run of the same run and partition replaces its rows.

    Waits for the file while another process (dbt, the publish step) holds it, up to
    `lock_timeout_s`, and holds it only for this write.
    """
    outcomes = list(outcomes)
    if not outcomes:
        return 0
    # One Arrow table, not executemany: DuckDB runs executemany row by row (seconds for the few
    # thousand outcomes of a daily run over ten sites).
    new_rows = pa.table({c: [getattr(o, c) for o in outcomes] for c in DQ_RESULTS_COLUMNS}, schema=DQ_RESULTS_ARROW)
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.1
    while True:
        try:
            con = duckdb.connect(str(db_path))
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        con.execute(DQ_RESULTS_DDL)
        con.register("new_rows", new_rows)
        columns = ", ".join(DQ_RESULTS_COLUMNS)
        con.execute("begin transaction")
        con.execute(
            """
            delete from dq_results d using (
                select distinct run_id, layer, site_id, kind, partition_date from new_rows
            ) k
            where d.run_id = k.run_id and d.layer = k.layer and d.site_id is not distinct from k.site_id
              and d.kind = k.kind and d.partition_date = k.partition_date
            """
        )
        con.execute(f"insert into dq_results ({columns}) select {columns} from new_rows")
        con.execute("commit")
    finally:
        con.close()
    return len(outcomes)


def examples_json(values: list | None, limit: int = 5) -> str | None:
    if not values:
        return None
    return json.dumps(values[:limit], ensure_ascii=False, default=str)
