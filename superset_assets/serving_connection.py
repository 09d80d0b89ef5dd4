"""One open serving database per Superset worker and serving file, instead of one per query.

Superset builds a new SQLAlchemy engine (NullPool) for every query; duckdb-engine then opens
the DuckDB file, reads its catalog, lists DuckDB's settings and reserved words, and closes it
all again: most of an uncached chart request (bench/README.md). Here every query gets a
cursor (a cheap connection to the same in-process database) of one connection per worker.

That connection is an in-memory DuckDB that ATTACHes the serving file read-only. A first try
opened the file itself (`duckdb.connect(path)`) and was withdrawn: DuckDB caches open
databases by path within a process, so after a publish the "new" connection was the old
file. An in-memory database is never shared that way, and ATTACH opens the file that is at
the path now. Before each query the worker compares the file's inode and mtime with the
attached one; after a publish (a new file renamed into place) the next query attaches the
new file, and the old database is freed when its last cursor closes.

The connection is a sandbox (issue 19: SQL Lab read the secret key, /etc/passwd and the
quarantine Parquet through DuckDB's file functions, and one analyst's `SET memory_limit`
broke every other user's charts). Once the serving file is attached, external access is
switched off (no file functions, COPY, ATTACH of files, INSTALL or LOAD of extensions; the
attached file stays readable) and the configuration is locked (no SET, RESET or PRAGMA that
changes a setting, for this database and every cursor of it). Extensions are never
auto-installed or auto-loaded. Both apply per DuckDB database, so every cursor inherits
them; a publish attaches the new file in a new database, sandboxed the same way.

Runs inside Superset's environment (.venv-superset); referenced from superset_config.py as
DB_CONNECTION_MUTATOR.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import duckdb

from core.sql import literal

# Per worker: a few threads share it; DuckDB bounds memory and threads per database.
DUCKDB_CONFIG = {
    "memory_limit": os.environ.get("SMARTCOMM_SERVING_MEMORY", "1GB"),
    "threads": int(os.environ.get("SMARTCOMM_SERVING_THREADS", "2")),
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}
# Set after the ATTACH (it needs file access), in this order: the lock comes last.
SANDBOX = {"enable_external_access": "false", "lock_configuration": "true"}
CATALOG = "serving"

_lock = threading.Lock()
_open: dict[str, tuple[tuple[int, int], duckdb.DuckDBPyConnection]] = {}


def _identity(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns


def _attach(path: str) -> duckdb.DuckDBPyConnection:
    """A new in-memory database with the file at `path` attached read-only, then sandboxed."""
    con = duckdb.connect(":memory:", config=DUCKDB_CONFIG)
    con.execute(f"attach {literal(path)} as {CATALOG} (read_only)")
    for name, value in SANDBOX.items():
        con.execute(f"set {name} = {value}")
    return con


# Scalar functions that reach files or change the database's state; DuckDB's table functions
# (read_text, read_csv, glob, query, parquet_metadata, ...) are added from the running
# DuckDB's own catalogue, except these harmless generators.
STATE_FUNCTIONS = frozenset(
    {
        "json_execute_serialized_sql",
        "copy_database",
        "import_database",
        "add_parquet_key",
        "force_checkpoint",
        "enable_checkpoint_on_shutdown",
        "disable_checkpoint_on_shutdown",
        "enable_profile",
        "disable_profile",
        "getenv",
    }
)
HARMLESS_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})


def sql_lab_disallowed_functions() -> set[str]:
    """Superset's DISALLOWED_SQL_FUNCTIONS for DuckDB: every table function this DuckDB has
    that is not also a scalar or aggregate (`repeat`, `histogram` stay usable), and
    STATE_FUNCTIONS."""
    with duckdb.connect(config={"autoload_known_extensions": False}) as con:
        kinds: dict[str, set[str]] = {}
        for name, kind in con.execute("select function_name, function_type from duckdb_functions()").fetchall():
            kinds.setdefault(name, set()).add(kind)
    table_only = {name for name, kind in kinds.items() if kind <= {"table", "table_macro"}}
    return (table_only - HARMLESS_TABLE_FUNCTIONS) | STATE_FUNCTIONS


def serving_cursor(path: str) -> duckdb.DuckDBPyConnection:
    """A new cursor, on the serving catalog, of the worker's connection to the file now at `path`."""
    identity = _identity(path)
    with _lock:
        held = _open.get(path)
        if held is None or held[0] != identity:
            held = (identity, _attach(path))
            _open[path] = held  # the old database lives on in its open cursors, then is freed
        cursor = held[1].cursor()
    cursor.execute(f"use {CATALOG}")
    return cursor


def _reuse_reserved_words() -> None:
    """duckdb-engine queries duckdb_keywords() for every dialect instance (several per request).
    Once per worker, under the lock and on a connection of its own: a fresh worker's first
    requests arrive together, and DuckDB's module-level default connection refuses a second
    thread ("connection is busy with another call")."""
    from duckdb_engine import DuckDBIdentifierPreparer, PGIdentifierPreparer

    with _lock:
        if getattr(DuckDBIdentifierPreparer, "_smartcomm_cached", False):
            return
        with duckdb.connect() as con:
            sql = "select keyword_name from duckdb_keywords() where keyword_category == 'reserved'"
            reserved = {name for (name,) in con.execute(sql).fetchall()}

        def __init__(self: Any, dialect: Any, **kwargs: Any) -> None:
            PGIdentifierPreparer.__init__(self, dialect, **kwargs)
            self.reserved_words.update(reserved)

        DuckDBIdentifierPreparer.__init__ = __init__
        DuckDBIdentifierPreparer._smartcomm_cached = True


def connection_mutator(
    url: Any, params: dict[str, Any], username: str | None, security_manager: Any, source: Any
) -> tuple[Any, dict[str, Any]]:
    """Superset's DB_CONNECTION_MUTATOR: DuckDB file URLs get a creator handing out cursors."""
    if url.drivername == "duckdb" and url.database and url.database != ":memory:":
        from duckdb_engine import ConnectionWrapper

        _reuse_reserved_words()
        path = url.database
        params = {**params, "creator": lambda: ConnectionWrapper(serving_cursor(path))}
    return url, params
