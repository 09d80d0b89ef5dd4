"""Quoting for the few SQL strings that take a name or a path from configuration or the
environment: DuckDB cannot bind identifiers, nor file paths in DDL, so they are quoted here,
never pasted (a data directory named `x'; drop table y; --` stays a file name)."""

from __future__ import annotations


def identifier(name: str) -> str:
    """A double-quoted SQL identifier (table, schema, column, catalogue)."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(text: str) -> str:
    """A single-quoted SQL string literal (a path in `read_parquet(...)` of a view)."""
    return "'" + str(text).replace("'", "''") + "'"
