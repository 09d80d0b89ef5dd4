"""What every platform process does first: private files and redacted log records.

    harden_process()

Called at process start by the entry points: `python -m ingestion`, the DAG tasks'
`ingestion.orchestration.ingest_interval` and `python -m pipeline.demo` (whose children,
the simulator, Airflow and dbt, inherit the umask).

- umask 077: whatever a library writes under the data directory (DuckDB files and their
  WAL, dbt's warehouse, Airflow's logs) is private to the service user. The landing writer
  and the state store set the modes explicitly too (ingestion.paths), umask or not.
- Every log record is redacted (ingestion.pii.redact) as it is created, message and
  traceback alike, so no handler (console, file, Airflow's task log) sees an ID number, a
  mobile, a plate or a marked name, whoever logged it.
"""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any

from ingestion.pii import redact

PRIVATE_UMASK = 0o077


def install_log_redaction() -> None:
    """Wrap the log record factory once per process (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed format call is logging's business, not ours
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def harden_process() -> None:
    os.umask(PRIVATE_UMASK)
    install_log_redaction()
