"""Publish the marts to the serving database that the dashboards read.

DuckDB allows one writer per file, and dbt is that writer on the warehouse. Superset
must never open the warehouse: it reads `serving.duckdb`, which this step rebuilds as
a *new* file next to it and renames into place (`os.replace`, atomic on one file
system). A reader that already opened the old file keeps reading it; the next
connection (Superset uses no pool) opens the new one. A failed publish leaves the
current serving file untouched.

Pipeline side only: imports duckdb and yaml, never superset.

    python -m superset_assets.publish            # warehouse -> serving under $SMARTCOMM_DATA_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from ingestion.paths import data_paths

PUBLISH_CONFIG = Path(__file__).resolve().parent / "publish.yml"
INFO_TABLE = "_publish_info"


class PublishError(RuntimeError):
    """The publish could not complete; the current serving file was left as it was."""


@dataclass
class PublishResult:
    serving_db: Path
    tables: dict[str, int] = field(default_factory=dict)  # table -> row count
    skipped: list[str] = field(default_factory=list)  # optional tables not found
    seconds: float = 0.0


def load_publish_config(path: Path = PUBLISH_CONFIG) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _find_tables(con: duckdb.DuckDBPyConnection, alias: str, schemas: list[str]) -> dict[str, str]:
    """Map table name -> qualified name in the attached database, first schema wins."""
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = ?",
        [alias],
    ).fetchall()
    found: dict[str, str] = {}
    rank = {schema: i for i, schema in enumerate(schemas)}
    for schema, name in sorted(rows, key=lambda r: rank.get(r[0], len(rank))):
        if schema in rank and name not in found:
            found[name] = f"{_quote(alias)}.{_quote(schema)}.{_quote(name)}"
    return found


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"describe {_quote(table)}").fetchall()]


def _first_present(columns: list[str], candidates: list[str]) -> str | None:
    return next((c for c in candidates if c in columns), None)


def _site_labels(con: duckdb.DuckDBPyConnection, labels: dict[str, Any]) -> None:
    """_site_labels(site_id, street_id, site_name_zh, street_name_zh) from the copied dim_site."""
    dimension = labels["dimension"]
    dim_columns = _columns(con, dimension)
    site_name = _first_present(dim_columns, ["site_name_zh", "name_zh"])
    if "street_id" not in dim_columns or site_name is None:
        raise PublishError(f"{dimension} needs site_id, street_id and a Chinese name column; has {dim_columns}")
    street_name_sql = "null"
    if "street_name_zh" in dim_columns:
        street_name_sql = "d.street_name_zh"
    elif "dim_street" in _tables(con):
        street_name = _first_present(_columns(con, "dim_street"), ["street_name_zh", "name_zh"])
        if street_name:
            street_name_sql = f"(select {_quote(street_name)} from dim_street st where st.street_id = d.street_id)"
    con.execute(
        f"""create temp table _site_labels as
            select site_id, street_id, {_quote(site_name)} as site_name_zh, {street_name_sql} as street_name_zh
            from {_quote(dimension)} d
            where site_id <> $1
            union all
            select $1, null, $2, $3""",
        [labels["district_site_id"], labels["district_label_zh"], labels["district_label_zh"]],
    )


def _label_tables(con: duckdb.DuckDBPyConnection, labels: dict[str, Any]) -> dict[str, str]:
    """Temp tables of Chinese labels, keyed by the column they join on."""
    present = _tables(con)
    joins: dict[str, str] = {}
    if labels["dimension"] in present:
        _site_labels(con, labels)
        joins["site_id"] = "_site_labels"
    if "dim_indicator" in present:
        columns = _columns(con, "dim_indicator")
        name = _first_present(columns, ["indicator_name_zh", "name_zh"])
        if name:
            con.execute(
                f"create temp table _indicator_labels as select indicator_id, {_quote(name)} as indicator_name_zh"
                " from dim_indicator"
            )
            joins["indicator_id"] = "_indicator_labels"
        if "dimension_name_zh" in columns:
            con.execute(
                "create temp table _dimension_labels as"
                " select dimension_id, any_value(dimension_name_zh) as dimension_name_zh from dim_indicator group by 1"
            )
            joins["dimension_id"] = "_dimension_labels"
    if "dim_framework" in present:
        name = _first_present(_columns(con, "dim_framework"), ["framework_name_zh", "name_zh"])
        if name:
            con.execute(
                f"create temp table _framework_labels as"
                f" select framework_id, any_value({_quote(name)}) as framework_name_zh from dim_framework group by 1"
            )
            joins["framework_id"] = "_framework_labels"
    return joins


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
    }


def _copy_labelled(con: duckdb.DuckDBPyConnection, table: str, source: str, joins: dict[str, str]) -> None:
    """Copy one table in one pass, adding the Chinese labels of its keys and is_latest_month.

    Labels make the dashboards read in Chinese with no joins in Superset, and street_id on
    every site-level table is what row-level security filters on. District rows keep
    street_id NULL. Tables with a `month` get is_latest_month, so "this month" charts need
    no sub-query (Superset forbids sub-queries in ad-hoc filters).
    """
    columns = [row[0] for row in con.execute(f"describe select * from {source}").fetchall()]
    extra, clauses = [], []
    for i, (key, label_table) in enumerate(joins.items()):
        if key not in columns:
            continue
        label_columns = [c for c in _columns(con, label_table) if c != key and c not in columns]
        if key == "site_id" and "street_id" in columns:
            label_columns = [c for c in label_columns if c != "street_id"]
        if not label_columns:
            continue
        extra += [f"l{i}.{_quote(c)}" for c in label_columns]
        clauses.append(f"left join {label_table} l{i} on l{i}.{_quote(key)} = s.{_quote(key)}")
        columns += label_columns
    if "month" in columns and "is_latest_month" not in columns:
        extra.append("s.month = max(s.month) over () as is_latest_month")
    select_extra = "".join(f", {e}" for e in extra)
    con.execute(f"create table {_quote(table)} as select s.*{select_extra} from {source} s {' '.join(clauses)}")


def _quarantine_summary(con: duckdb.DuckDBPyConnection, quarantine_dir: Path) -> bool:
    """Quarantined rows counted by site, kind, day and reason class (no raw rows are served)."""
    files = sorted(quarantine_dir.glob("*/site=*/date=*/*.parquet")) if quarantine_dir.exists() else []
    if not files:  # an empty table, so the data-quality dashboard says "nothing quarantined"
        con.execute(
            "create table quarantine_summary (site_id varchar, kind varchar, day date,"
            " reason_class varchar, rows_quarantined bigint)"
        )
        return True
    con.execute(
        """create table quarantine_summary as
           select site_id, kind, cast(day as date) as day,
                  trim(split_part(reason, ':', 1)) as reason_class, count(*) as rows_quarantined
           from read_parquet(?, union_by_name = true)
           group by all""",
        [[str(f) for f in files]],
    )
    return True


def publish(
    warehouse_db: Path | str,
    serving_db: Path | str | None = None,
    *,
    state_db: Path | str | None = None,
    quarantine_dir: Path | str | None = None,
    config: dict[str, Any] | None = None,
) -> PublishResult:
    """Copy the marts (and data-quality and audit tables when present) into a new serving file.

    The new file is built beside `serving_db` and renamed over it only when complete.
    """
    started = time.perf_counter()
    config = config or load_publish_config()
    paths = data_paths()
    warehouse_db = Path(warehouse_db)
    serving_db = Path(serving_db) if serving_db else paths.serving_db
    state_db = Path(state_db) if state_db else paths.state_db
    quarantine_dir = Path(quarantine_dir) if quarantine_dir else paths.quarantine
    if not warehouse_db.exists():
        raise PublishError(f"warehouse {warehouse_db} does not exist: run dbt build first")
    serving_db.parent.mkdir(parents=True, exist_ok=True)
    temp_db = serving_db.with_name(f".{serving_db.name}.{uuid.uuid4().hex}.tmp")
    result = PublishResult(serving_db=serving_db)
    try:
        con = duckdb.connect(str(temp_db))
        try:
            con.execute(f"attach {_sql_string(warehouse_db)} as wh (read_only)")
            sources = [("wh", config["warehouse"])]
            if state_db.exists() and config.get("state"):
                con.execute(f"attach {_sql_string(state_db)} as st (read_only)")
                sources.append(("st", config["state"]))
            copied: list[str] = []
            plan: list[tuple[str, str]] = []  # (table, qualified source), dimensions first
            for alias, source in sources:
                found = _find_tables(con, alias, source.get("search_schemas", ["main"]))
                missing = [t for t in source.get("required", []) if t not in found]
                if missing:
                    raise PublishError(f"{alias}: required tables missing from {warehouse_db}: {', '.join(missing)}")
                for table in [*source.get("required", []), *source.get("optional", [])]:
                    if table in copied or table in (t for t, _ in plan):
                        continue
                    if table not in found:
                        result.skipped.append(table)
                        continue
                    plan.append((table, found[table]))
            plan.sort(key=lambda item: not item[0].startswith("dim_"))
            joins: dict[str, str] = {}
            for table, source in plan:
                if table.startswith("dim_"):
                    con.execute(f"create table {_quote(table)} as select * from {source}")
                else:
                    joins = joins or _label_tables(con, config["site_labels"])
                    _copy_labelled(con, table, source, joins)
                copied.append(table)
            result.skipped = [t for t in result.skipped if t not in copied]
            if _quarantine_summary(con, quarantine_dir):
                joins = joins or _label_tables(con, config["site_labels"])
                con.execute("alter table quarantine_summary rename to _quarantine_raw")
                _copy_labelled(con, "quarantine_summary", "_quarantine_raw", joins)
                con.execute("drop table _quarantine_raw")
                copied.append("quarantine_summary")
            for table in copied:
                result.tables[table] = con.execute(f"select count(*) from {_quote(table)}").fetchone()[0]
            con.execute(
                f"create table {INFO_TABLE} as select ?::timestamptz as published_at_utc, ? as warehouse_db, ?::json as row_counts",
                [datetime.now(UTC), str(warehouse_db), json.dumps(result.tables, sort_keys=True)],
            )
            con.execute("detach wh")
            if len(sources) > 1:
                con.execute("detach st")
            con.execute("checkpoint")
        finally:
            con.close()
        with open(temp_db, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp_db, serving_db)
    except BaseException:
        temp_db.unlink(missing_ok=True)
        Path(str(temp_db) + ".wal").unlink(missing_ok=True)
        raise
    result.seconds = time.perf_counter() - started
    return result


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Publish the marts to serving.duckdb (atomic rename). "
        "Example: python -m superset_assets.publish --data-dir data"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default $SMARTCOMM_DATA_DIR or data/)"
    )
    parser.add_argument("--warehouse", type=Path, default=None, help="dbt's DuckDB file (default <data>/warehouse/)")
    parser.add_argument(
        "--serving", type=Path, default=None, help="file the dashboards read (default <data>/warehouse/)"
    )
    parser.add_argument(
        "--state", type=Path, default=None, help="ingestion state with the load audit (default <data>/state/)"
    )
    args = parser.parse_args(argv)
    paths = data_paths(args.data_dir)
    try:
        result = publish(
            args.warehouse or paths.warehouse_db,
            args.serving or paths.serving_db,
            state_db=args.state or paths.state_db,
            quarantine_dir=paths.quarantine,
        )
    except PublishError as exc:
        print(f"publish failed, serving file unchanged: {exc}")
        return 1
    total = sum(result.tables.values())
    print(f"published {len(result.tables)} tables ({total} rows) to {result.serving_db} in {result.seconds:.2f}s")
    if result.skipped:
        print(f"  optional tables not present: {', '.join(result.skipped)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
