"""Landed Parquet exposed to DuckDB as raw views: `raw.<kind>` over every site and day.

    create_raw_views(con, paths=None, schema="raw") -> list[str]

One view per kind of config/kinds.yml, reading `landing/<kind>/site=*/date=*/data.parquet`
with the partition columns dropped (site_id and the day column are in the rows). A kind
with no partition yet gets an empty view with the contract's columns, so dbt sources and
queries never fail on a glob that matches nothing. `raw.quarantine` lists rejected rows.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from core.sql import identifier, literal
from ingestion.contract import all_kinds, contract
from ingestion.landing import DATA_FILE, QUARANTINE_FILE, QUARANTINE_SCHEMA
from ingestion.paths import DataPaths, data_paths

_DUCK_TYPES = {
    pa.string(): "varchar",
    pa.timestamp("us"): "timestamp",
    pa.date32(): "date",
    pa.float64(): "double",
    pa.int64(): "bigint",
    pa.bool_(): "boolean",
}


def _empty_select(schema: pa.Schema) -> str:
    columns = ", ".join(f"cast(null as {_DUCK_TYPES[f.type]}) as {identifier(f.name)}" for f in schema)
    return f"select {columns} where false"


def create_raw_views(con: duckdb.DuckDBPyConnection, paths: DataPaths | None = None, schema: str = "raw") -> list[str]:
    """Create or replace the raw views in `schema`; returns their qualified names."""
    paths = paths or data_paths()
    catalog = con.execute("select current_database()").fetchone()[0]
    qualified = f"{identifier(catalog)}.{identifier(schema)}"  # a file named like the schema (raw.duckdb) is otherwise ambiguous
    con.execute(f"create schema if not exists {qualified}")
    created = []
    for kind in all_kinds():
        files = paths.landing / kind / "site=*" / "date=*" / DATA_FILE
        has_files = any((paths.landing / kind).glob(f"site=*/date=*/{DATA_FILE}"))
        columns = ", ".join(map(identifier, contract(kind).schema.names))
        body = (
            f"select {columns} from read_parquet({literal(str(files))}, hive_partitioning = false, union_by_name = true)"
            if has_files
            else _empty_select(contract(kind).schema)
        )
        con.execute(f"create or replace view {qualified}.{identifier(kind)} as {body}")
        created.append(f"{schema}.{kind}")
    qfiles = paths.quarantine / "*" / "site=*" / "date=*" / QUARANTINE_FILE
    has_q = any(paths.quarantine.glob(f"*/site=*/date=*/{QUARANTINE_FILE}")) if paths.quarantine.exists() else False
    qbody = (
        f"select * from read_parquet({literal(str(qfiles))}, hive_partitioning = false)"
        if has_q
        else _empty_select(QUARANTINE_SCHEMA)
    )
    con.execute(f"create or replace view {qualified}.quarantine as {qbody}")
    created.append(f"{schema}.quarantine")
    return created
