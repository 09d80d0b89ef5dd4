"""Validate landed partitions: `landing/<kind>/site=<site_id>/date=<YYYY-MM-DD>/*.parquet`.

For one (kind, site, day): profile the partition (readable? rows landed and quarantined),
check its schema on a (column, dtype) frame, then its rows conformed to the contract's
columns. Parameters that depend on the partition (its site and day, row bounds from the
registry and from the previous days) are computed here and passed to the static suites.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from expectations.engine import GxEngine
from expectations.results import Outcome, ValidationReport, examples_json
from expectations.rules import PANDAS_TYPES, KindRules, kind_rules, load_rules
from expectations.suites import (
    PARTITION_SUITE,
    build_content_suite,
    build_partition_suite,
    build_schema_suite,
    content_suite_name,
    schema_suite_name,
)
from ingestion.paths import DataPaths, data_paths
from ingestion.registry import Registry, Site, load_registry

LAYER = "landing"


@dataclass
class PartitionRead:
    """What was found on disk for one partition."""

    files: list[Path]
    frame: pd.DataFrame | None  # None when missing or unreadable
    error: str | None  # why it could not be read
    quarantined_rows: int

    @property
    def exists(self) -> bool:
        return bool(self.files)


def partition_files(paths: DataPaths, kind: str, site_id: str, day: dt.date) -> list[Path]:
    folder = paths.partition(kind, site_id, day.isoformat())
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def count_quarantined(paths: DataPaths, kind: str, site_id: str, day: dt.date) -> int:
    """Rows ingestion rejected for this partition (Parquet or JSON-lines files, any name)."""
    folder = paths.quarantine_partition(kind, site_id, day.isoformat())
    if not folder.is_dir():
        return 0
    total = 0
    for file in folder.iterdir():
        if file.suffix == ".parquet":
            total += pq.ParquetFile(file).metadata.num_rows
        elif file.suffix in {".jsonl", ".ndjson"}:
            with file.open("rb") as fh:
                total += sum(1 for line in fh if line.strip())
    return total


def read_partition(paths: DataPaths, kind: str, site_id: str, day: dt.date) -> PartitionRead:
    """Read one partition's files through DuckDB into pandas (union by name: drift stays visible)."""
    files = partition_files(paths, kind, site_id, day)
    quarantined = count_quarantined(paths, kind, site_id, day)
    if not files:
        return PartitionRead(files, None, None, quarantined)
    con = duckdb.connect()
    try:
        relation = con.read_parquet([str(f) for f in files], union_by_name=True, hive_partitioning=False)
        frame = relation.df()
    except duckdb.Error as exc:
        return PartitionRead(files, None, f"{type(exc).__name__}: {exc}".splitlines()[0], quarantined)
    finally:
        con.close()
    return PartitionRead(files, frame, None, quarantined)


def _empty_series(col_type: str, length: int) -> pd.Series:
    if col_type in {"timestamp", "date"}:
        return pd.Series(pd.NaT, index=range(length), dtype="datetime64[us]")
    if col_type in {"double", "integer"}:
        return pd.Series(float("nan"), index=range(length), dtype="float64")
    return pd.Series(None, index=range(length), dtype="object")


def _coerce(series: pd.Series, col_type: str) -> pd.Series:
    """A wrongly typed column in the contract's type; what cannot be read becomes null."""
    if col_type in {"timestamp", "date"}:
        return pd.to_datetime(series, errors="coerce").astype("datetime64[us]")
    if col_type in {"double", "integer"}:
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if col_type == "boolean":
        mapping = {"true": True, "false": False, "1": True, "0": False}
        return series.map(lambda v: mapping.get(str(v).strip().lower()) if pd.notna(v) else None).astype("object")
    return series.map(lambda v: str(v) if pd.notna(v) else None).astype("object")


def conform(frame: pd.DataFrame, rules: KindRules) -> pd.DataFrame:
    """The contract's columns only, each in its type: missing ones all-null, retyped ones coerced.

    The schema suite reports the drift itself; conforming lets the row checks still say
    what the drift did to the data (e.g. a renamed required column shows as all-null).
    """
    out: dict[str, pd.Series] = {}
    length = len(frame)
    for col in rules.columns:
        if col.name not in frame.columns:
            out[col.name] = _empty_series(col.type, length)
        elif str(frame[col.name].dtype) not in PANDAS_TYPES[col.type]:
            out[col.name] = _coerce(frame[col.name], col.type)
        else:
            out[col.name] = frame[col.name]
        if col.type in {"timestamp", "date"}:
            # GX 1.24 compares datetime64[ns] vectorized but maps other units value by value (10x slower).
            out[col.name] = out[col.name].astype("datetime64[ns]")
    return pd.DataFrame(out, index=frame.index)


def schema_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"column_name": list(frame.columns), "dtype": [str(t) for t in frame.dtypes]})


def _basis(site: Site, basis: str | list[str]) -> float:
    names = [basis] if isinstance(basis, str) else basis
    return float(sum(getattr(site, name) for name in names))


def history_row_counts(paths: DataPaths, kind: str, site_id: str, day: dt.date, days: int) -> list[int]:
    """Row counts of the previous `days` partitions that exist (from Parquet footers, no data read)."""
    counts = []
    for back in range(1, days + 1):
        files = partition_files(paths, kind, site_id, day - dt.timedelta(days=back))
        if not files:
            continue
        try:
            counts.append(sum(pq.ParquetFile(f).metadata.num_rows for f in files))
        except (OSError, ValueError):
            continue  # an unreadable earlier partition was reported on its own day
    return counts


def partition_parameters(paths: DataPaths, site: Site, kind: str, day: dt.date, rules: KindRules) -> dict[str, Any]:
    """The $PARAMETER values of the content suite for this partition."""
    counts = rules.row_counts
    expected = counts["rate"] * _basis(site, counts["basis"])
    history_rules = load_rules()["history"]
    history = history_row_counts(paths, kind, site.site_id, day, history_rules["days"])
    history_min = history_max = None
    if counts["cadence"] != "snapshot" and len(history) >= history_rules["min_days"]:
        median = statistics.median(history)
        if median >= history_rules["min_median_rows"]:
            history_max = int(median * history_rules["max_factor"]) + 1
            if counts["cadence"] == "daily":
                history_min = int(median * history_rules["min_factor"])
    start = dt.datetime.combine(day, dt.time())
    return {
        "site_ids": [site.site_id],
        "day_start": start,
        "day_end": start + dt.timedelta(days=1),
        "rows_registry_min": int(expected * counts["min_factor"]),
        "rows_registry_max": int(expected * counts["max_factor"]) + 1,
        "rows_history_min": history_min,
        "rows_history_max": history_max,
    }


def _render(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)[:500]
    return str(value)[:500]


def to_outcomes(
    results: Iterable[Any],
    *,
    run_id: str,
    layer: str,
    site_id: str | None,
    kind: str,
    partition_date: dt.date,
    suite: str,
    pii_columns: frozenset[str] = frozenset(),
    observed_by_rule: dict[str, str] | None = None,
) -> list[Outcome]:
    """GX results as dq_results rows; examples from PII-derived columns are left out."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    outcomes = []
    for r in results:
        config = r.expectation_config
        meta = config.meta or {}
        rule = meta.get("rule", config.type)
        column = meta.get("column") or config.kwargs.get("column")
        res = r.result or {}
        observed = res.get("observed_value")
        if observed_by_rule and rule in observed_by_rule:
            observed = observed_by_rule[rule]
        elif observed is None and "unexpected_count" in res:
            observed = f"{res['unexpected_count']} of {res.get('element_count')} rows unexpected"
        touches_pii = bool(set(str(column or "").split(",")) & pii_columns)
        examples = None if touches_pii else examples_json(res.get("partial_unexpected_list"))
        outcomes.append(
            Outcome(
                run_id=run_id,
                validated_at_utc=now,
                layer=layer,
                site_id=site_id,
                kind=kind,
                partition_date=partition_date,
                suite=suite,
                expectation=f"{rule}:{column}" if column else rule,
                expectation_type=config.type,
                column_name=column,
                severity=str(getattr(config.severity, "value", config.severity)),
                success=bool(r.success),
                observed_value=_render(observed),
                unexpected_count=res.get("unexpected_count"),
                unexpected_percent=res.get("unexpected_percent"),
                unexpected_examples=examples,
                description=meta.get("description") or None,
            )
        )
    return outcomes


class LandingValidator:
    """Validates landed partitions with one GX context (build once per process, reuse)."""

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

    def _ensure(self, kind: str) -> None:
        if not self.engine.is_registered(PARTITION_SUITE):
            self.engine.register(build_partition_suite())
        if not self.engine.is_registered(content_suite_name(kind)):
            self.engine.register(build_schema_suite(kind))
            self.engine.register(build_content_suite(kind))

    def validate_partition(self, kind: str, site_id: str, day: dt.date | str, run_id: str) -> ValidationReport:
        """Validate one partition. A missing one fails `partition_present` and its rows are checked as
        an empty frame; snapshot kinds are skipped on days that hold no snapshot."""
        day = dt.date.fromisoformat(day) if isinstance(day, str) else day
        site = self.registry.site(site_id)
        rules = kind_rules(kind)
        self._ensure(kind)
        report = ValidationReport(run_id)
        read = read_partition(self.paths, kind, site_id, day)
        if rules.row_counts["cadence"] == "snapshot" and (
            not read.exists or (read.frame is not None and read.frame.empty and not read.quarantined_rows)
        ):
            report.skipped.append(f"{kind} {site_id} {day}: no snapshot on this day")
            return report
        common = {"run_id": run_id, "layer": LAYER, "site_id": site_id, "kind": kind, "partition_date": day}
        landed = len(read.frame) if read.frame is not None else 0
        total = landed + read.quarantined_rows
        quarantined_share = read.quarantined_rows / total if total else 0.0
        critical_min_rows = int(load_rules()["quarantine_share"].get("critical_min_rows", 1))
        profile = pd.DataFrame(
            {
                "present": [read.exists],
                "readable": [read.error is None],
                "landed_rows": [landed],
                "quarantined_rows": [read.quarantined_rows],
                "quarantined_share": [quarantined_share],
                # the share the critical check sees: only once enough rows are quarantined
                "quarantined_share_counted": [quarantined_share if read.quarantined_rows >= critical_min_rows else 0.0],
            }
        )
        share = f"{read.quarantined_rows} of {total} rows quarantined"
        observed = {
            "partition_present": ", ".join(f.name for f in read.files) if read.exists else "no partition",
            "partition_readable": read.error or ("readable" if read.exists else "no partition"),
            "quarantine_share_warning": share,
            "quarantine_share_critical": share,
        }
        results = self.engine.run(PARTITION_SUITE, profile, None, run_id)
        report.outcomes.extend(to_outcomes(results, suite=PARTITION_SUITE, observed_by_rule=observed, **common))
        if read.error is not None:
            return report
        frame = read.frame if read.frame is not None else conform(pd.DataFrame(), rules)
        if read.exists:
            found, expected = set(frame.columns), set(rules.column_names)
            drift = {"missing": sorted(expected - found), "unexpected": sorted(found - expected)}
            results = self.engine.run(schema_suite_name(kind), schema_frame(frame), None, run_id)
            report.outcomes.extend(
                to_outcomes(
                    results,
                    suite=schema_suite_name(kind),
                    observed_by_rule={"schema_columns": _render(drift)},
                    **common,
                )
            )
        parameters = partition_parameters(self.paths, site, kind, day, rules)
        results = self.engine.run(content_suite_name(kind), conform(frame, rules), parameters, run_id)
        report.outcomes.extend(
            to_outcomes(results, suite=content_suite_name(kind), pii_columns=rules.pii_columns, **common)
        )
        return report

    def validate(
        self,
        site_ids: Iterable[str] | None = None,
        days: Iterable[dt.date | str] = (),
        kinds: Iterable[str] | None = None,
        run_id: str | None = None,
    ) -> ValidationReport:
        """Validate every (site, day, kind) given; kinds default to those the site delivers."""
        run_id = run_id or new_run_id()
        report = ValidationReport(run_id)
        sites = list(site_ids) if site_ids is not None else [s.site_id for s in self.registry.sites]
        days = list(days)
        kinds = list(kinds) if kinds is not None else None
        for site_id in sites:
            site = self.registry.site(site_id)
            wanted = list(kinds) if kinds is not None else list(site.sources)
            site_kinds = [k for k in wanted if k in site.sources]
            report.skipped.extend(f"{k} {site_id}: the site has no {k} source" for k in wanted if k not in site.sources)
            for day in days:
                for kind in site_kinds:
                    report.extend(self.validate_partition(kind, site_id, day, run_id))
        return report


def new_run_id() -> str:
    return f"dq_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
