"""Validate landed partitions: `landing/<kind>/site=<site_id>/date=<YYYY-MM-DD>/*.parquet`.

Per kind, for every site and day of the call: facts per partition from the Parquet footers
(present? readable? rows, schema; rows quarantined), then the partitions of all sites that
share a schema are read in one DuckDB scan into one pandas frame, each row tagged with its
partition's site and day, and checked with one GX run (schema suite once per distinct
schema, the content suite's batch variant once per batch). Every content check is row by
row, so a check that holds on the batch holds on each partition; a check that fails is
narrowed down by halving to the partitions that fail it, and re-run on each of those with
the content suite to report which site and day, how many rows and which values. One
profile row per partition (file present and readable, quarantine share, row counts against
the registry and the previous days) goes through the partition suite once per call.
Outcomes stay per partition, as before.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from expectations.engine import BOOLEAN_ONLY, GxEngine
from expectations.results import Outcome, ValidationReport, examples_json
from expectations.rules import PANDAS_TYPES, KindRules, kind_rules, load_rules
from expectations.suites import (
    PARTITION_DAY,
    PARTITION_SITE,
    PARTITION_SUITE,
    ROW_COUNT_RULES,
    ROW_DAY,
    batch_suite_name,
    build_content_suite,
    build_partition_suite,
    build_schema_suite,
    content_suite_name,
    schema_suite_name,
)
from ingestion.paths import DataPaths, data_paths
from ingestion.registry import Registry, Site, load_registry

LAYER = "landing"
FILE_COLUMN = "_dq_file"  # the source file of each row, added by the scan
PROFILE_ROW = "_profile_row"
# The partition profile's failing rows, by position (the frame has one row per partition).
PROFILE_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [PROFILE_ROW],
    "return_unexpected_index_query": False,
}


@dataclass
class PartitionFacts:
    """What the footers say about one partition, before any row is read."""

    kind: str
    site_id: str
    day: dt.date
    files: list[Path]
    rows: int  # from the Parquet footers
    quarantined_rows: int
    schema: tuple[tuple[tuple[str, str], ...], ...]  # (name, type) per column, per file
    error: str | None = None  # why the partition cannot be read

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
            total += pq.read_metadata(file).num_rows
        elif file.suffix in {".jsonl", ".ndjson"}:
            with file.open("rb") as fh:
                total += sum(1 for line in fh if line.strip())
    return total


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def partition_facts(paths: DataPaths, kind: str, site_id: str, day: dt.date) -> PartitionFacts:
    """Files, footer row counts and schemas of one partition; a footer that cannot be read makes it unreadable."""
    files = partition_files(paths, kind, site_id, day)
    facts = PartitionFacts(kind, site_id, day, files, 0, count_quarantined(paths, kind, site_id, day), ())
    schemas = []
    for file in files:
        try:
            meta = pq.read_metadata(file)
            schemas.append(tuple((f.name, str(f.type)) for f in meta.schema.to_arrow_schema()))
            facts.rows += meta.num_rows
        except (OSError, ValueError, pa.ArrowException) as exc:
            facts.error = _error_text(exc)
            break
    facts.schema = tuple(sorted(set(schemas)))
    return facts


def _pandas_type(arrow_type: pa.DataType) -> Any:
    """Arrow-backed strings (no Python objects), nullable booleans and integers as DuckDB hands them to pandas."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return pd.ArrowDtype(arrow_type)
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if pa.types.is_integer(arrow_type):
        return pd.api.types.pandas_dtype(str(arrow_type).capitalize())  # int32 -> Int32
    return None


@dataclass
class RowBatch:
    """The rows of some day partitions of one (site, kind), read in one scan."""

    table: pa.Table  # every column found, plus FILE_COLUMN
    dtypes: dict[str, str]  # the pandas dtype of each column as DuckDB reads it (what the schema suite checks)


def read_rows(files: list[Path], columns: Iterable[str] | None = None) -> RowBatch:
    """One DuckDB scan of the files (union by name, so drift stays visible); duckdb.Error if unreadable.

    `columns`: only these of the columns found are read (the ones the content suite checks);
    `dtypes` always describes every column found. FILE_COLUMN is each row's file, as its
    1-based position in `files`.
    """
    source = f"read_parquet($files, union_by_name = true, hive_partitioning = false, filename = '{FILE_COLUMN}')"
    params = {"files": [str(f) for f in files]}
    con = duckdb.connect()
    try:
        empty = con.sql(f"select * from {source} limit 0", params=params).df()
        found = [c for c in empty.columns if c != FILE_COLUMN]
        wanted = found if columns is None else [c for c in found if c in set(columns)]
        select = "".join('"' + c.replace('"', '""') + '", ' for c in wanted)
        sql = f'select {select}list_position($files, "{FILE_COLUMN}")::integer as "{FILE_COLUMN}" from {source}'
        table = con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()
    return RowBatch(table, {c: str(empty.dtypes[c]) for c in found})


def _compact_strings(table: pa.Table) -> pa.Table:
    """Dictionary-encode string columns with few distinct values (codes, gates, site): they become
    pandas categoricals, far smaller and faster to check than Python strings; keys stay Arrow strings."""
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            continue
        encoded = pc.dictionary_encode(column.combine_chunks())
        if len(encoded.dictionary) * 20 <= len(encoded):
            table = table.set_column(i, name, encoded)
    return table


def _empty_series(col_type: str, length: int) -> pd.Series:
    if col_type in {"timestamp", "date"}:
        return pd.Series(pd.NaT, index=range(length), dtype="datetime64[ns]")
    if col_type in {"double", "integer"}:
        return pd.Series(float("nan"), index=range(length), dtype="float64")
    return pd.Series(None, index=range(length), dtype="object")


def _coerce(series: pd.Series, col_type: str) -> pd.Series:
    """A wrongly typed column in the contract's type; what cannot be read becomes null."""
    if isinstance(series.dtype, (pd.ArrowDtype, pd.CategoricalDtype)):
        series = series.astype(object)
    if col_type in {"timestamp", "date"}:
        return pd.to_datetime(series, errors="coerce").astype("datetime64[ns]")
    if col_type in {"double", "integer"}:
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if col_type == "boolean":
        mapping = {"true": True, "false": False, "1": True, "0": False}
        return series.map(lambda v: mapping.get(str(v).strip().lower()) if pd.notna(v) else None).astype("object")
    return series.map(lambda v: str(v) if pd.notna(v) else None).astype("object")


def conform(
    frame: pd.DataFrame,
    rules: KindRules,
    dtypes: dict[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The contract's columns only, each in its type: missing ones all-null, retyped ones coerced.

    `dtypes`: the columns' types as the schema suite sees them (default: the frame's own);
    `only`: keep just these contract columns.
    The schema suite reports the drift itself; conforming lets the row checks still say
    what the drift did to the data (e.g. a renamed required column shows as all-null).
    """
    out: dict[str, pd.Series] = {}
    length = len(frame)
    for col in rules.columns:
        if only is not None and col.name not in only:
            continue
        if col.name not in frame.columns:
            out[col.name] = _empty_series(col.type, length)
            continue
        dtype = dtypes[col.name] if dtypes and col.name in dtypes else str(frame[col.name].dtype)
        series = frame[col.name] if dtype in PANDAS_TYPES[col.type] else _coerce(frame[col.name], col.type)
        if col.type in {"timestamp", "date"} and str(series.dtype) != "datetime64[ns]":
            # GX 1.24 compares datetime64[ns] vectorized but maps other units value by value (10x slower).
            series = series.astype("datetime64[ns]")
        out[col.name] = series
    return pd.DataFrame(out, index=frame.index)


@cache
def content_configs(kind: str) -> tuple[Any, ...]:
    """The content suite's expectation configurations in order (read only: outcomes are built from them)."""
    return tuple(e.configuration for e in build_content_suite(kind).expectations)


def content_expectations(kind: str, keys: set[str], across_sites: bool = False) -> list[Any]:
    """Fresh expectation objects (GX binds them to the suite they are run in) of the content suite
    (or its batch variant) whose `rule[:column]` is in `keys`."""
    suite = build_content_suite(kind, across_sites=across_sites)
    return [e for e in suite.expectations if expectation_key(e.configuration) in keys]


@cache
def checked_columns(kind: str) -> frozenset[str]:
    """The contract columns the content suite of `kind` looks at (the others are not read)."""
    rules = kind_rules(kind)
    names: set[str] = {rules.day_column}
    for config in content_configs(kind):
        kwargs = config.kwargs
        names.update(kwargs.get(k) for k in ("column", "column_A", "column_B") if kwargs.get(k))
        names.update(kwargs.get("column_list") or ())
    return frozenset(names & set(rules.column_names))


def file_positions(batch: RowBatch) -> np.ndarray:
    """Each row's file, as its 0-based position in the files scanned."""
    return batch.table.column(FILE_COLUMN).to_numpy().astype(np.intp) - 1


def content_frame(batch: RowBatch, rules: KindRules, file_partitions: list[tuple[str, dt.date]]) -> pd.DataFrame:
    """The batch's checked columns conformed to the contract, with each row's partition (site and
    day, from its file's folder: `file_partitions` in scan order) and own local day."""
    checked = checked_columns(rules.kind)
    frame = _compact_strings(batch.table.drop_columns([FILE_COLUMN])).to_pandas(
        types_mapper=_pandas_type, coerce_temporal_nanoseconds=True, date_as_object=False
    )
    frame = conform(frame, rules, batch.dtypes, only=checked)
    positions = file_positions(batch)
    # object, not categorical: GX compares it with site_id, and two categoricals compare only with equal categories
    frame[PARTITION_SITE] = np.array([site for site, _ in file_partitions], dtype=object)[positions]
    days = np.array([np.datetime64(day, "ns") for _, day in file_partitions], dtype="datetime64[ns]")
    frame[PARTITION_DAY] = days[positions]
    frame[ROW_DAY] = frame[rules.day_column].dt.floor("D")
    return frame


def empty_content_frame(rules: KindRules) -> pd.DataFrame:
    """The content frame of partitions with no rows (missing days)."""
    frame = conform(pd.DataFrame(), rules, only=checked_columns(rules.kind))
    frame[PARTITION_SITE] = pd.Series(dtype=object)
    frame[PARTITION_DAY] = pd.Series(dtype="datetime64[ns]")
    frame[ROW_DAY] = pd.Series(dtype="datetime64[ns]")
    return frame


def group_positions(owner: np.ndarray, groups: int) -> list[np.ndarray]:
    """The row positions of each group 0..groups-1, given each row's group, in row order."""
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(groups + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(groups)]


def schema_frame(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"column_name": list(dtypes), "dtype": list(dtypes.values())})


def _basis(site: Site, basis: str | list[str]) -> float:
    names = [basis] if isinstance(basis, str) else basis
    return float(sum(getattr(site, name) for name in names))


def _footer_rows(paths: DataPaths, kind: str, site_id: str, day: dt.date) -> int | None:
    """Rows of a partition from its footers; None when it is missing or unreadable."""
    files = partition_files(paths, kind, site_id, day)
    if not files:
        return None
    try:
        return sum(pq.read_metadata(f).num_rows for f in files)
    except (OSError, ValueError, pa.ArrowException):
        return None  # an unreadable earlier partition was reported on its own day


def history_row_counts(
    paths: DataPaths, kind: str, site_id: str, day: dt.date, days: int, known: dict[dt.date, int | None] | None = None
) -> list[int]:
    """Row counts of the previous `days` partitions that exist (from Parquet footers, no data read).

    `known`: row counts already looked up (None: missing or unreadable), filled in as read.
    """
    known = {} if known is None else known
    counts = []
    for back in range(1, days + 1):
        earlier = day - dt.timedelta(days=back)
        if earlier not in known:
            known[earlier] = _footer_rows(paths, kind, site_id, earlier)
        if known[earlier] is not None:
            counts.append(known[earlier])
    return counts


def partition_parameters(
    paths: DataPaths,
    site: Site,
    kind: str,
    day: dt.date,
    rules: KindRules,
    known: dict[dt.date, int | None] | None = None,
) -> dict[str, Any]:
    """The site of the partition and its row-count bounds (None: no bound)."""
    counts = rules.row_counts
    expected = counts["rate"] * _basis(site, counts["basis"])
    history_rules = load_rules()["history"]
    history = history_row_counts(paths, kind, site.site_id, day, history_rules["days"], known)
    history_min = history_max = None
    if counts["cadence"] != "snapshot" and len(history) >= history_rules["min_days"]:
        median = statistics.median(history)
        if median >= history_rules["min_median_rows"]:
            history_max = int(median * history_rules["max_factor"]) + 1
            if counts["cadence"] == "daily":
                history_min = int(median * history_rules["min_factor"])
    return {
        "site_ids": [site.site_id],
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


def expectation_key(config: Any) -> str:
    """`rule[:column]`: the stable name of an expectation in dq_results."""
    meta = config.meta or {}
    rule = meta.get("rule", config.type)
    column = meta.get("column") or config.kwargs.get("column")
    return f"{rule}:{column}" if column else rule


def _outcome(config: Any, common: dict[str, Any], **values: Any) -> Outcome:
    """One dq_results row for one expectation's configuration and what was found."""
    meta = config.meta or {}
    return Outcome(
        **common,
        expectation=expectation_key(config),
        expectation_type=config.type,
        column_name=meta.get("column") or config.kwargs.get("column"),
        severity=str(getattr(config.severity, "value", config.severity)),
        description=meta.get("description") or None,
        **values,
    )


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
    common = {
        "run_id": run_id,
        "validated_at_utc": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "layer": layer,
        "site_id": site_id,
        "kind": kind,
        "partition_date": partition_date,
        "suite": suite,
    }
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
        outcomes.append(
            _outcome(
                config,
                common,
                success=bool(r.success),
                observed_value=_render(observed),
                unexpected_count=res.get("unexpected_count"),
                unexpected_percent=res.get("unexpected_percent"),
                unexpected_examples=None if touches_pii else examples_json(res.get("partial_unexpected_list")),
            )
        )
    return outcomes


@dataclass
class _Profile:
    """The partition profile of one validate() call: one row per (site, kind, day) partition."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    observed: list[dict[str, str]] = field(default_factory=list)

    def add(self, facts: PartitionFacts, bounds: dict[str, Any]) -> None:
        landed = facts.rows if facts.error is None else 0
        total = landed + facts.quarantined_rows
        share = facts.quarantined_rows / total if total else 0.0
        critical_min_rows = int(load_rules()["quarantine_share"].get("critical_min_rows", 1))
        readable = facts.error is None
        self.rows.append(
            {
                "present": facts.exists,
                "readable": readable,
                "landed_rows": landed,
                "quarantined_rows": facts.quarantined_rows,
                "quarantined_share": share,
                # the share the critical check sees: only once enough rows are quarantined
                "quarantined_share_counted": share if facts.quarantined_rows >= critical_min_rows else 0.0,
                # row-count bounds (None: no bound); an unreadable partition's rows are not counted
                **{k: (v if readable else None) for k, v in bounds.items() if k.startswith("rows_")},
            }
        )
        quarantined = f"{facts.quarantined_rows} of {total} rows quarantined"
        self.observed.append(
            {
                "_facts": facts,  # type: ignore[dict-item]
                "partition_present": ", ".join(f.name for f in facts.files) if facts.exists else "no partition",
                "partition_readable": facts.error or ("readable" if facts.exists else "no partition"),
                "quarantine_share_warning": quarantined,
                "quarantine_share_critical": quarantined,
                **{rule: str(landed) for rule in ROW_COUNT_RULES},
            }
        )

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows)
        for column in ("rows_registry_min", "rows_registry_max", "rows_history_min", "rows_history_max"):
            frame[column] = frame[column].astype("Int64")
        frame[PROFILE_ROW] = range(len(frame))
        return frame


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
        self._schema_results: dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]] = {}

    def _ensure(self, kind: str) -> None:
        if not self.engine.is_registered(PARTITION_SUITE):
            self.engine.register(build_partition_suite())
        if not self.engine.is_registered(batch_suite_name(kind)):
            self.engine.register(build_schema_suite(kind))
            self.engine.register(build_content_suite(kind))
            self.engine.register(build_content_suite(kind, across_sites=True))

    def validate_partition(self, kind: str, site_id: str, day: dt.date | str, run_id: str) -> ValidationReport:
        """Validate one partition. A missing one fails `partition_present` and its rows are checked as
        an empty frame; snapshot kinds are skipped on days that hold no snapshot."""
        return self._validate({kind: [(self.registry.site(site_id), [_as_date(day)])]}, run_id)

    def validate(
        self,
        site_ids: Iterable[str] | None = None,
        days: Iterable[dt.date | str] = (),
        kinds: Iterable[str] | None = None,
        run_id: str | None = None,
    ) -> ValidationReport:
        """Validate every (site, day, kind) given; kinds default to those the site delivers."""
        sites = list(site_ids) if site_ids is not None else [s.site_id for s in self.registry.sites]
        days = list(days)
        kinds = list(kinds) if kinds is not None else None
        plan = {
            site_id: dict.fromkeys(kinds if kinds is not None else self.registry.site(site_id).sources, days)
            for site_id in sites
        }
        return self.validate_plan(plan, run_id)

    def validate_plan(
        self, plan: Mapping[str, Mapping[str, Iterable[dt.date | str]]], run_id: str | None = None
    ) -> ValidationReport:
        """Validate the given days of each site and kind: `{site_id: {kind: days}}` (the evaluation
        run's plan). The partitions of a kind are checked together for every site: the content
        runs are per kind and schema, not per site. Kinds a site does not deliver are skipped."""
        by_kind: dict[str, list[tuple[Site, list[dt.date]]]] = defaultdict(list)
        skipped: list[str] = []
        for site_id, kinds in plan.items():
            site = self.registry.site(site_id)
            for kind, days in kinds.items():
                if kind in site.sources:
                    by_kind[kind].append((site, sorted({_as_date(d) for d in days})))
                else:
                    skipped.append(f"{kind} {site_id}: the site has no {kind} source")
        report = self._validate(by_kind, run_id or new_run_id())
        report.skipped[:0] = skipped
        return report

    def _validate(self, by_kind: Mapping[str, list[tuple[Site, list[dt.date]]]], run_id: str) -> ValidationReport:
        report = ValidationReport(run_id)
        profile = _Profile()
        for kind, members in by_kind.items():
            self._ensure(kind)
            self._validate_kind(kind, members, run_id, report, profile)
        if profile.rows:
            report.outcomes.extend(self._check_profile(profile, run_id))
        rank = {PARTITION_SUITE: 0}
        report.outcomes.sort(
            key=lambda o: (
                o.site_id or "",
                o.kind,
                o.partition_date,
                rank.get(o.suite, 1 if "schema" in o.suite else 2),
            )
        )
        return report

    def _validate_kind(
        self,
        kind: str,
        members: list[tuple[Site, list[dt.date]]],
        run_id: str,
        report: ValidationReport,
        profile: _Profile,
    ) -> None:
        """Facts of every site's partitions, then their rows in batches of partitions that share a schema."""
        rules = kind_rules(kind)
        snapshot = rules.row_counts["cadence"] == "snapshot"
        by_site: list[tuple[Site, list[PartitionFacts]]] = []
        for site, days in members:
            facts: list[PartitionFacts] = []
            for day in days:
                found = partition_facts(self.paths, kind, site.site_id, day)
                no_snapshot = not found.exists or (
                    found.error is None and found.rows == 0 and not found.quarantined_rows
                )
                if snapshot and no_snapshot:
                    report.skipped.append(f"{kind} {site.site_id} {day}: no snapshot on this day")
                    continue
                facts.append(found)
            by_site.append((site, facts))
        every = [f for _, facts in by_site for f in facts]
        readable = [f for f in every if f.exists and f.error is None]
        missing = [f for f in every if not f.exists]
        batches = list(self._batches(readable))
        if missing:  # no rows to check: they pass the row checks with the first batch (an empty one if none)
            if batches:
                batches[0] = batches[0] + missing
            else:
                batches = [missing]
        for batch in batches:
            self._check_batch(kind, rules, batch, run_id, report)
        for site, facts in by_site:  # after the reads: a scan that failed made its partition unreadable
            known = {f.day: (f.rows if f.exists and f.error is None else None) for f in facts}
            for f in facts:
                profile.add(f, partition_parameters(self.paths, site, kind, f.day, rules, known))

    @staticmethod
    def _batches(facts: list[PartitionFacts]) -> Iterator[list[PartitionFacts]]:
        """Partitions with the same file schemas, at most `batch.max_rows` rows per batch (memory stays bounded)."""
        max_rows = int(load_rules().get("batch", {}).get("max_rows", 2_000_000))
        by_schema: dict[tuple, list[PartitionFacts]] = defaultdict(list)
        for f in facts:
            by_schema[f.schema].append(f)
        for members in by_schema.values():
            batch: list[PartitionFacts] = []
            rows = 0
            for f in members:
                if batch and rows + f.rows > max_rows:
                    yield batch
                    batch, rows = [], 0
                batch.append(f)
                rows += f.rows
            yield batch

    def _read(self, batch: list[PartitionFacts]) -> list[tuple[list[PartitionFacts], RowBatch | None]]:
        """Read a batch in one scan; if that fails, each partition alone, so only the broken ones are unreadable."""
        files = [f for facts in batch for f in facts.files]
        if not files:
            return [(batch, None)]
        try:
            return [(batch, read_rows(files, checked_columns(batch[0].kind)))]
        except duckdb.Error as exc:
            if len(batch) == 1:
                batch[0].error = _error_text(exc)
                return []
        return [part for facts in batch for part in self._read([facts])]

    def _check_batch(
        self, kind: str, rules: KindRules, batch: list[PartitionFacts], run_id: str, report: ValidationReport
    ) -> None:
        for parts, rows in self._read(batch):
            if rows is None:  # only missing days: their (no) rows as an empty frame
                frame = empty_content_frame(rules)
                owner = np.empty(0, dtype=np.intp)
            else:
                present = [f for f in parts if f.exists]
                report.outcomes.extend(self._check_schema(kind, rules, rows.dtypes, present, run_id))
                frame = content_frame(rows, rules, [(f.site_id, f.day) for f in present for _ in f.files])
                # each row's partition, as its position in `parts` (the scan's file order)
                owner = np.array([i for i, f in enumerate(parts) for _ in f.files], dtype=np.intp)[file_positions(rows)]
                del rows
            report.outcomes.extend(self._check_rows(kind, rules, frame, parts, owner, run_id))

    def _check_schema(
        self, kind: str, rules: KindRules, dtypes: dict[str, str], days: list[PartitionFacts], run_id: str
    ) -> list[Outcome]:
        """The schema suite once per distinct schema (in this process); its result holds for each day."""
        key = (kind, tuple(dtypes.items()))
        if key not in self._schema_results:
            self._schema_results[key] = self.engine.run(schema_suite_name(kind), schema_frame(dtypes), None, run_id)
        found, expected = set(dtypes), set(rules.column_names)
        drift = {"missing": sorted(expected - found), "unexpected": sorted(found - expected)}
        outcomes = []
        for f in days:
            outcomes.extend(
                to_outcomes(
                    self._schema_results[key],
                    run_id=run_id,
                    layer=LAYER,
                    site_id=f.site_id,
                    kind=kind,
                    partition_date=f.day,
                    suite=schema_suite_name(kind),
                    observed_by_rule={"schema_columns": _render(drift)},
                )
            )
        return outcomes

    def _check_rows(
        self,
        kind: str,
        rules: KindRules,
        frame: pd.DataFrame,
        parts: list[PartitionFacts],
        owner: np.ndarray,
        run_id: str,
    ) -> list[Outcome]:
        """The batch suite on the rows of every partition (pass/fail only). A check that fails is
        narrowed down to the partitions that fail it, and re-run on each of those alone with the
        content suite (counts and failing values, as dq_results reports them); every other
        partition passes it with its own row count."""
        results = self.engine.run(batch_suite_name(kind), frame, None, run_id, result_format=BOOLEAN_ONLY)
        failed = {expectation_key(r.expectation_config) for r in results if not r.success}
        rows_of = group_positions(owner, len(parts)) if failed else []
        failing = self._narrow(kind, frame, rows_of, list(range(len(parts))), failed) if failed else {}
        suite = content_suite_name(kind)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        outcomes = []
        for i, f in enumerate(parts):
            common = {
                "run_id": run_id,
                "layer": LAYER,
                "site_id": f.site_id,
                "kind": kind,
                "partition_date": f.day,
                "suite": suite,
            }
            checked: dict[str, Outcome] = {}
            if i in failing:  # details from the content suite on this partition's rows alone
                day_results = self.engine.recheck(
                    suite,
                    content_expectations(kind, failing[i]),
                    frame.iloc[rows_of[i]],
                    {"site_ids": [f.site_id]},
                )
                checked = {o.expectation: o for o in to_outcomes(day_results, pii_columns=rules.pii_columns, **common)}
            rows = f.rows if f.exists else 0
            for config in content_configs(kind):
                outcome = checked.get(expectation_key(config))
                if outcome is None:  # no failing row in this partition
                    outcome = _outcome(
                        config,
                        {**common, "validated_at_utc": now},
                        success=True,
                        observed_value=f"0 of {rows} rows unexpected",
                        unexpected_count=0,
                        unexpected_percent=0.0 if rows else None,
                        unexpected_examples=None,
                    )
                outcomes.append(outcome)
        return outcomes

    def _narrow(
        self, kind: str, frame: pd.DataFrame, rows_of: list[np.ndarray], members: list[int], failed: set[str]
    ) -> dict[int, set[str]]:
        """The partitions among `members` (whose rows together fail the checks `failed`) that fail
        them, each with the checks it fails: halve and re-run the batch variant of those checks
        (pass/fail only) until single partitions, so a few bad partitions among many cost a few
        runs each, not one per partition."""
        if len(members) == 1:
            return {members[0]: failed}
        found: dict[int, set[str]] = {}
        middle = len(members) // 2
        for half in (members[:middle], members[middle:]):
            rows = np.concatenate([rows_of[i] for i in half])
            results = self.engine.recheck(
                batch_suite_name(kind),
                content_expectations(kind, failed, across_sites=True),
                frame.iloc[np.sort(rows)],
                None,
                result_format=BOOLEAN_ONLY,
            )
            half_failed = {expectation_key(r.expectation_config) for r in results if not r.success}
            if half_failed:
                found.update(self._narrow(kind, frame, rows_of, half, half_failed))
        return found

    def _check_profile(self, profile: _Profile, run_id: str) -> list[Outcome]:
        """The partition suite once over every partition's profile row; one outcome per rule and partition."""
        results = self.engine.run(PARTITION_SUITE, profile.frame(), None, run_id, result_format=PROFILE_FORMAT)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        outcomes: dict[tuple[int, str], Outcome] = {}
        for r in results:
            config = r.expectation_config
            rule = (config.meta or {}).get("rule", config.type)
            failing = {entry[PROFILE_ROW] for entry in (r.result or {}).get("unexpected_index_list") or []}
            for position, observed in enumerate(profile.observed):
                facts: PartitionFacts = observed["_facts"]  # type: ignore[assignment]
                if rule in ROW_COUNT_RULES and facts.error is not None:
                    continue  # the rows of an unreadable partition were not checked
                success = position not in failing
                key = (position, expectation_key(config))
                if key in outcomes:  # rows_vs_history: two bounds, one outcome
                    success = success and outcomes[key].success
                counted = rule not in ROW_COUNT_RULES
                common = {
                    "run_id": run_id,
                    "validated_at_utc": now,
                    "layer": LAYER,
                    "site_id": facts.site_id,
                    "kind": facts.kind,
                    "partition_date": facts.day,
                    "suite": PARTITION_SUITE,
                }
                outcomes[key] = _outcome(
                    config,
                    common,
                    success=success,
                    observed_value=observed.get(rule),
                    unexpected_count=(0 if success else 1) if counted else None,
                    unexpected_percent=(0.0 if success else 100.0) if counted else None,
                    unexpected_examples=None,
                )
        return list(outcomes.values())


def _as_date(day: dt.date | str) -> dt.date:
    return dt.date.fromisoformat(day) if isinstance(day, str) else day


def new_run_id() -> str:
    return f"dq_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
