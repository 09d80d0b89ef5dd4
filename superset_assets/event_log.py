"""Superset's action log as JSON lines in a file, instead of rows in its metadata database.

Superset's default `DBEventLogger` inserts and commits a row in the SQLite metadata for
every request (three per chart-data request); each commit is an fsync, and it expires the
session, so the user and roles are loaded again. That was most of a cached chart request
(bench/README.md). Who looked at what is still recorded: one JSON line per event in
`<superset home>/events.jsonl`, appended without a transaction.

Runs inside Superset's environment (.venv-superset); referenced from superset_config.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from superset.utils.log import AbstractEventLogger


class FileEventLogger(AbstractEventLogger):
    """Appends each event (user, action, dashboard, chart, duration) to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._logger = logging.getLogger(f"smartcomm.events.{self.path}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        if not self._logger.handlers:  # one handler per file, however often the config is loaded
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(self.path, encoding="utf-8", delay=True)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)

    def log(
        self,
        user_id: int | None,
        action: str,
        dashboard_id: int | None,
        duration_ms: int | None,
        slice_id: int | None,
        referrer: str | None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        for record in kwargs.get("records") or [kwargs.get("curated_payload") or {}]:
            event = {
                "ts_utc": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "user_id": user_id,
                "action": action,
                "dashboard_id": dashboard_id or record.get("dashboard_id"),
                "slice_id": slice_id or record.get("slice_id"),
                "duration_ms": duration_ms,
                "referrer": referrer,
                "path": record.get("path"),
            }
            self._logger.info(json.dumps(event, ensure_ascii=False, default=str))
