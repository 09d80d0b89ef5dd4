"""Ingestion state: watermarks and the load audit, in a small DuckDB file (data/state/state.duckdb).

Kept apart from the warehouse so that ingestion never waits on dbt and the audit survives a
warehouse rebuild. DuckDB allows one writing process per file, and several ingest tasks may
finish at once, so every call opens the file briefly and retries while another holds it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ingestion.paths import DataPaths, data_paths, make_private_dir, private_file
from ingestion.pii import redact
from ingestion.timeutil import utc_now

_SCHEMA = """
create table if not exists load_audit (
    run_id varchar not null,
    site_id varchar not null,
    kind varchar not null,
    source_shape varchar,
    interval_start date not null,
    interval_end date not null,
    rows_fetched bigint,
    rows_landed bigint,
    rows_deduplicated bigint,
    rows_quarantined bigint,
    rows_outside_window bigint,        -- fetched for days this run does not land (read ahead, not delivered)
    retries integer,
    duration_s double,
    outcome varchar not null,          -- running | success | failed
    error varchar,
    started_at_utc timestamp not null,
    finished_at_utc timestamp,
    allow_shrink boolean,              -- the run was allowed to replace partitions with fewer rows
    shrunk_days varchar,               -- which it did: "2026-06-01: 4499 -> 0; ..."
    notes varchar,                     -- what the connector noticed: extra columns, optional fields absent
    primary key (run_id, site_id, kind, interval_start)
);
-- audit files written before these columns existed; vendor: the vendor file
-- (config/vendors/<vendor>.yml) the run read, source_shape being its protocol
alter table load_audit add column if not exists rows_outside_window bigint;
alter table load_audit add column if not exists allow_shrink boolean;
alter table load_audit add column if not exists shrunk_days varchar;
alter table load_audit add column if not exists notes varchar;
alter table load_audit add column if not exists vendor varchar;
create table if not exists watermarks (
    site_id varchar not null,
    kind varchar not null,
    landed_through date not null,      -- latest local day landed successfully
    last_run_id varchar not null,
    updated_at_utc timestamp not null,
    primary key (site_id, kind)
);
"""

LOCK_WAIT_S = 120.0


@contextmanager
def open_state_db(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a small state DuckDB file briefly, retrying while another process holds its lock.
    The file and its WAL are private to the service user (they hold the audit and alerts)."""
    make_private_dir(path.parent)
    if not read_only and not path.exists():
        _create_whole(path)
    deadline = time.monotonic() + LOCK_WAIT_S
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:  # another process holds the file
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        if not read_only:
            for written in (path, path.with_name(path.name + ".wal")):
                if written.exists() and written.stat().st_mode & 0o077:
                    private_file(written)
        yield con
    finally:
        con.close()


def _create_whole(path: Path) -> None:
    """Create an empty state file under a lock on its folder and move it into place whole.

    DuckDB writes a new file's header after creating it, so a second process opening the
    path in between reads a file that "is not a valid DuckDB database" (seen in CI with 4
    writers). Here a process either finds no file and waits for the folder lock, or finds a
    complete one."""
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # released when the descriptor closes
        if path.exists():
            return
        new = path.with_name(f".{path.name}.{os.getpid()}.new")
        duckdb.connect(str(new)).close()
        os.replace(private_file(new), path)
    finally:
        os.close(folder)


@dataclass(frozen=True)
class LoadFigures:
    rows_fetched: int = 0
    rows_landed: int = 0
    rows_deduplicated: int = 0
    rows_quarantined: int = 0
    rows_outside_window: int = 0
    retries: int = 0

    @property
    def balanced(self) -> bool:
        """fetched = landed + deduplicated + quarantined + outside the window: every row accounted for."""
        return self.rows_fetched == (
            self.rows_landed + self.rows_deduplicated + self.rows_quarantined + self.rows_outside_window
        )


class StateStore:
    """Watermarks per (site, kind) and one audit row per (run, site, kind, interval)."""

    def __init__(self, paths: DataPaths | None = None) -> None:
        self.path = (paths or data_paths()).state_db
        make_private_dir(self.path.parent)
        with self._connect() as con:
            con.execute(_SCHEMA)

    def _connect(self, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return open_state_db(self.path, read_only=read_only)

    def start(
        self,
        run_id: str,
        site_id: str,
        kind: str,
        shape: str,
        start: dt.date,
        end: dt.date,
        vendor: str | None = None,
    ) -> None:
        with self._connect() as con:
            con.execute(
                "insert or replace into load_audit (run_id, site_id, kind, source_shape, vendor, interval_start,"
                " interval_end, outcome, started_at_utc) values (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                [run_id, site_id, kind, shape, vendor or shape, start, end, utc_now()],
            )

    def finish(
        self,
        run_id: str,
        site_id: str,
        kind: str,
        start: dt.date,
        end: dt.date,
        figures: LoadFigures,
        *,
        outcome: str,
        duration_s: float,
        error: str | None = None,
        allow_shrink: bool = False,
        shrunk_days: list[str] | None = None,
        notes: list[str] | None = None,
    ) -> None:
        """Close the audit row; on success move the watermark forward (never backward).

        The error is redacted: the audit is published (加载审计), so it keeps the site, kind,
        HTTP status and vendor code of a failure, never personal data."""
        now = utc_now()
        error = redact(error) if error else error
        with self._connect() as con:
            con.execute("begin")
            con.execute(
                "update load_audit set rows_fetched = ?, rows_landed = ?, rows_deduplicated = ?,"
                " rows_quarantined = ?, rows_outside_window = ?, retries = ?, duration_s = ?, outcome = ?,"
                " error = ?, finished_at_utc = ?, allow_shrink = ?, shrunk_days = ?, notes = ?"
                " where run_id = ? and site_id = ? and kind = ? and interval_start = ?",
                [
                    figures.rows_fetched,
                    figures.rows_landed,
                    figures.rows_deduplicated,
                    figures.rows_quarantined,
                    figures.rows_outside_window,
                    figures.retries,
                    duration_s,
                    outcome,
                    error,
                    now,
                    allow_shrink,
                    "; ".join(shrunk_days) if shrunk_days else None,
                    redact("\n".join(notes)) if notes else None,
                    run_id,
                    site_id,
                    kind,
                    start,
                ],
            )
            if outcome == "success":
                con.execute(
                    "insert into watermarks values (?, ?, ?, ?, ?) on conflict (site_id, kind) do update set"
                    " landed_through = greatest(watermarks.landed_through, excluded.landed_through),"
                    " last_run_id = excluded.last_run_id, updated_at_utc = excluded.updated_at_utc",
                    [site_id, kind, end, run_id, now],
                )
            con.execute("commit")

    def watermark(self, site_id: str, kind: str) -> dt.date | None:
        with self._connect() as con:
            row = con.execute(
                "select landed_through from watermarks where site_id = ? and kind = ?", [site_id, kind]
            ).fetchone()
        return row[0] if row else None

    def status(self) -> list[dict[str, Any]]:
        """Per (site, kind): watermark, last run's outcome and error, when it finished."""
        with self._connect() as con:
            cursor = con.execute(
                """
                with last as (
                    select *, row_number() over (partition by site_id, kind order by started_at_utc desc) as rn
                    from load_audit
                )
                select l.site_id, l.kind, w.landed_through, l.outcome as last_outcome, l.error as last_error,
                       l.run_id as last_run_id, l.finished_at_utc as last_finished_at_utc,
                       l.rows_landed as last_rows_landed, l.rows_quarantined as last_rows_quarantined
                from last l left join watermarks w using (site_id, kind)
                where l.rn = 1
                order by l.site_id, l.kind
                """
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def audit(self, run_id: str | None = None) -> list[dict[str, Any]]:
        with self._connect() as con:
            sql = "select * from load_audit"
            cursor = (
                con.execute(sql + " where run_id = ? order by site_id, kind", [run_id]) if run_id else con.execute(sql)
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
