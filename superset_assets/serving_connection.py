"""Reuse one open serving database per Superset worker instead of opening the file per query.

Superset builds a new SQLAlchemy engine (NullPool) for every query; duckdb-engine then
opens the DuckDB file, reads its catalog, opens a second in-memory database to list
DuckDB's settings, and closes it all again. That open/close was most of an uncached chart
request (bench/README.md). Here every query instead gets a cursor (a cheap connection to
the same in-process database) of one read-only connection per serving file, held by the
worker. When the pipeline publishes a new serving file (renamed into place: a new inode),
the next query opens the new file; the old one is released when its last cursor closes.
The reserved-word list duckdb-engine reads for every new engine is read once per process.

Runs inside Superset's environment (.venv-superset); referenced from superset_config.py
as DB_CONNECTION_MUTATOR.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import duckdb

# Per worker: a few threads share it; DuckDB itself bounds memory and threads per database.
DUCKDB_CONFIG = {
    "memory_limit": os.environ.get("SMARTCOMM_SERVING_MEMORY", "1GB"),
    "threads": int(os.environ.get("SMARTCOMM_SERVING_THREADS", "2")),
}

_lock = threading.Lock()
_open: dict[str, tuple[tuple[int, int], duckdb.DuckDBPyConnection]] = {}


def _identity(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns


def serving_cursor(path: str) -> duckdb.DuckDBPyConnection:
    """A new cursor on the worker's open connection to the current file at `path`."""
    identity = _identity(path)
    with _lock:
        held = _open.get(path)
        if held is None or held[0] != identity:
            config = {**DUCKDB_CONFIG, "access_mode": "READ_ONLY"}
            held = (identity, duckdb.connect(path, read_only=True, config=config))
            _open[path] = held  # the old connection lives on in its open cursors, then is freed
        return held[1].cursor()


def _reuse_reserved_words() -> None:
    """duckdb-engine queries duckdb_keywords() for every dialect instance (several per request)."""
    from duckdb_engine import DuckDBIdentifierPreparer, PGIdentifierPreparer

    if getattr(DuckDBIdentifierPreparer, "_smartcomm_cached", False):
        return
    reserved = {
        name
        for (name,) in duckdb.execute(
            "select keyword_name from duckdb_keywords() where keyword_category == 'reserved'"
        ).fetchall()
    }

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
