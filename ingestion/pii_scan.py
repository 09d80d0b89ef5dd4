"""Scan every store for clear-text personal data: the bureau's evidence that none is kept.

    scan_all(paths=None) -> PiiScanReport       every store (`python -m ingestion scan-pii`)
    scan_landing(paths=None) -> PiiScanReport   the landed Parquet only (clean and quarantine)

Stores: `landing` (Parquet under landing/), `quarantine` (landing/_quarantine/), `warehouse`
(warehouse.duckdb), `serving` (serving.duckdb), `state` (state.duckdb: load audit, alerts,
evaluation runs), `alerts` (alerts/alerts.jsonl) and `logs` (data/logs/, Airflow's task logs
under data/airflow/). What counts is what redaction removes (ingestion.pii.personal_spans):
ID numbers of 15 or 18 characters whatever their checksum, mobiles with separators or +86,
plates with `·`, names after a marker word or in quotes. It is looked for in every text
column, in 64-bit integer and integral decimal columns (a mobile stored as BIGINT), in JSON
values field by field (a personal field name with a clear value is a hit), in a column named
like a name field (name, 姓名, ...) as any probable name, and in quarantined raw records as
every probable name. DuckDB files are opened read-only; one that cannot be opened (a writer
holds it) is reported as unreadable, so a scan that saw less never passes as clean.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.sql import identifier
from ingestion.paths import DataPaths, data_paths
from ingestion.pii import PROVINCES, personal_data_in, personal_data_policy, redact

STORES = ("landing", "quarantine", "warehouse", "serving", "state", "alerts", "logs")
# Integers that may be a mobile, a 15-digit or an 18-digit ID number (the exact test follows).
INTEGER_RANGES = ((13_000_000_000, 19_999_999_999), (10**14, 10**15 - 1), (10**17, 10**18 - 1))
# DuckDB types that cannot hold a hit: no 11 digits fit (32-bit integers, FLOAT), or not text.
_DUCK_SKIPPED = {
    *("BOOLEAN", "DATE", "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "INTERVAL", "BLOB", "UUID"),
    *("TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT", "UINTEGER", "FLOAT", "REAL"),
}
RAW_RECORD = "raw_record"


@cache
def candidate_pattern() -> str:
    """A RE2 pattern every hit in plain text matches (Arrow and DuckDB pick candidates with it;
    the exact Python patterns then run on those): 11 digits in a row, 3 + 4 digits around a
    separator, a province and a letter, a quoted Chinese run, or a name marker."""
    markers = personal_data_policy().names.markers
    parts = [
        r"\p{Nd}{11}",
        r"\p{Nd}{3}[- \t\x{a0}]\p{Nd}{4}",
        rf"[{PROVINCES}][A-Z]",
        r"['\"“‘「『][\p{Han}·•]{2,12}['\"”’」』]",
    ]
    return "|".join(parts + ([markers.pattern] if markers else []))


class PiiHit(NamedTuple):
    location: Path | str  # a file, `file:line`, or `database.duckdb:schema.table`
    column: str
    value: str  # in memory only: what is printed is `masked`
    store: str = "landing"
    kind: str = ""

    @property
    def masked(self) -> str:
        return masked(self.value)


def masked(value: str) -> str:
    """Enough of a hit to find it again, too little to use it: `138…(11 chars)`."""
    keep = max(1, min(3, len(value) // 3))
    return f"{value[:keep]}…({len(value)} chars)"


@dataclass
class PiiScanReport:
    files: int = 0
    values: int = 0
    hits: list[PiiHit] = field(default_factory=list)
    total_hits: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    scanned: Counter[str] = field(default_factory=Counter)
    limit: int = 100

    @property
    def clean(self) -> bool:
        return not self.total_hits

    @property
    def complete(self) -> bool:
        return not self.unreadable

    def check(
        self, store: str, location: Path | str, column: str, value: Any, *, record: bool = False, as_json: bool = False
    ) -> None:
        """Keep one value's hits (`record`: a raw record or a name column); the caller counts values."""
        if as_json and isinstance(value, str):
            with contextlib.suppress(ValueError):  # a raw line kept as text is checked as text
                value = json.loads(value)
        for kind, hit in personal_data_in(value, record=record):
            self.total_hits += 1
            if len(self.hits) < self.limit:
                self.hits.append(PiiHit(location, column, hit, store, kind))


def _candidates(values: pa.Array, pattern: str) -> list[Any]:
    matched = pc.fill_null(pc.match_substring_regex(values, pattern), False)
    return values.filter(matched).to_pylist()


def _integers_in_range(values: pa.Array) -> list[int]:
    """The integral values in INTEGER_RANGES (compared as float64, taken exactly from `values`)."""
    numbers = values.cast(pa.float64(), safe=False)  # approximate above 2**53: only the range test
    mask = pc.equal(pc.floor(numbers), numbers)
    inside = None
    for low, high in INTEGER_RANGES:
        this = pc.and_(pc.greater_equal(numbers, float(low)), pc.less_equal(numbers, float(high)))
        inside = this if inside is None else pc.or_(inside, this)
    picked = values.filter(pc.fill_null(pc.and_(mask, inside), False)).to_pylist()
    return [int(v) for v in picked]


def scan_table(report: PiiScanReport, table: pa.Table, store: str, location: Path | str) -> None:
    """Every column of an Arrow table: text by pattern, integers by range, raw records and
    name columns value by value."""
    policy = personal_data_policy()
    pattern = candidate_pattern()
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        kind = column.type
        distinct = pc.unique(column.combine_chunks()) if column.num_chunks != 1 else pc.unique(column.chunk(0))
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            report.values += len(distinct) - distinct.null_count
            if name == RAW_RECORD or policy.is_name_field(name):
                for value in distinct.drop_null().to_pylist():
                    report.check(store, location, name, value, record=True, as_json=name == RAW_RECORD)
                continue
            for value in _candidates(distinct, pattern):
                report.check(store, location, name, value)
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            report.values += len(distinct) - distinct.null_count
            for value in _integers_in_range(distinct):
                report.check(store, location, name, value)


def _parquet_files(paths: DataPaths) -> Iterator[tuple[str, Path]]:
    if not paths.landing.is_dir():
        return
    for path in sorted(paths.landing.rglob("*.parquet")):
        yield ("quarantine" if paths.quarantine in path.parents else "landing"), path


def _scan_parquet(report: PiiScanReport, paths: DataPaths) -> None:
    for store, path in _parquet_files(paths):
        report.files += 1
        report.scanned[store] += 1
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            report.unreadable.append((str(path), redact(str(exc))))
            continue
        scan_table(report, table, store, path)


def _duck_select(column: str, data_type: str, whole: bool = False) -> tuple[str, list[Any]] | None:
    """The query for the candidate values of one column (None: the type cannot hold a hit).

    Every other type is read as text: a BIGINT mobile is `13812345678`, a DOUBLE one
    `13812345678.0`, a STRUCT or LIST shows its values. `whole`: every distinct value (JSON,
    raw records, name columns), for the checks by field name."""
    q = identifier(column)
    if data_type.split("(")[0].strip().upper() in _DUCK_SKIPPED:
        return None
    if whole:
        return f"select distinct {q}::varchar from {{table}} where {q} is not null", []
    sql = f"select distinct v from (select {q}::varchar as v from {{table}}) where regexp_matches(v, ?)"
    return sql, [candidate_pattern()]


def _scan_duckdb(report: PiiScanReport, path: Path, store: str) -> None:
    if not path.exists():
        return
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        report.unreadable.append((str(path), redact(str(exc))))
        return
    policy = personal_data_policy()
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database() order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            report.files += 1
            report.scanned[store] += 1
            qualified = f"{identifier(schema)}.{identifier(table)}"
            columns = con.execute(
                "select column_name, data_type from duckdb_columns() where database_name = current_database()"
                " and schema_name = ? and table_name = ? order by column_index",
                [schema, table],
            ).fetchall()
            location = f"{path}:{schema}.{table}"
            for column, data_type in columns:
                as_json = data_type.upper() == "JSON" or column == RAW_RECORD
                record = column == RAW_RECORD or policy.is_name_field(column)
                query = _duck_select(column, data_type, whole=as_json or record)
                if query is None:
                    continue
                sql, params = query
                rows = con.execute(sql.format(table=qualified), params).fetchall()
                report.values += len(rows)
                for (value,) in rows:
                    report.check(store, location, column, value, record=record, as_json=as_json)
    except duckdb.Error as exc:
        report.unreadable.append((str(path), redact(str(exc))))
    finally:
        con.close()


def _log_files(paths: DataPaths) -> Iterator[Path]:
    if paths.logs.is_dir():
        yield from sorted(p for p in paths.logs.rglob("*") if p.is_file())
    if paths.airflow_home.is_dir():
        yield from sorted(
            p
            for p in paths.airflow_home.rglob("*")
            if p.is_file() and "logs" in p.relative_to(paths.airflow_home).parts[:-1]
        )


def _scan_text_files(report: PiiScanReport, files: Iterator[Path], store: str, as_json: bool) -> None:
    for path in files:
        report.files += 1
        report.scanned[store] += 1
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                for line_no, line in enumerate(handle, start=1):
                    if line.strip():
                        report.values += 1
                        report.check(store, f"{path}:{line_no}", "line", line.rstrip("\n"), as_json=as_json)
        except OSError as exc:
            report.unreadable.append((str(path), redact(str(exc))))


def scan_landing(paths: DataPaths | None = None, limit: int = 100) -> PiiScanReport:
    """Every landed Parquet file (clean partitions, quarantine, reference); at most `limit` hits kept."""
    report = PiiScanReport(limit=limit)
    _scan_parquet(report, paths or data_paths())
    return report


def scan_all(paths: DataPaths | None = None, limit: int = 100) -> PiiScanReport:
    """Every store of the data directory (see the module docstring)."""
    paths = paths or data_paths()
    report = PiiScanReport(limit=limit)
    _scan_parquet(report, paths)
    _scan_duckdb(report, paths.warehouse_db, "warehouse")
    _scan_duckdb(report, paths.serving_db, "serving")
    _scan_duckdb(report, paths.state_db, "state")
    if paths.alerts_jsonl.is_file():
        _scan_text_files(report, iter([paths.alerts_jsonl]), "alerts", as_json=True)
    _scan_text_files(report, _log_files(paths), "logs", as_json=False)
    return report
