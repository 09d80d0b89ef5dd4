"""Alerts: one record per problem, sent once to pluggable hooks (no mail server needed).

Anything that notices a problem (freshness SLA checks, Airflow failure callbacks, data
quality, early warnings) builds `Alert`s and calls `raise_alerts`. An alert's `key` is its
identity: the same key is recorded and sent once, ever, so a check that runs every hour
does not repeat itself. The record is written to the `alerts` table of the state database
*before* any hook runs, so a failing hook never loses an alert (its error is stored on the
record). Hooks are 'module:function' strings in config/pipeline.yml `alerts.hooks`; each is
called as `hook(alert)`. Only modules under HOOK_MODULE_PREFIXES may be named: configuration
chooses among the platform's hooks, it cannot make a process import arbitrary code (a new
hook goes into pipeline/alert_hooks.py, reviewed like any code).

Alerts are redacted (ingestion.pii.redact) before they are recorded or sent: a title or an
error text in the details never carries an ID number, mobile, plate or marked name, and a
vendor's reply body never reaches an alert (ingestion.http keeps status and code only).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ingestion.paths import data_paths, make_private_dir, private_file
from ingestion.pii import redact
from ingestion.state import open_state_db

log = logging.getLogger(__name__)

SOURCES = ("freshness", "task_failure", "quality", "warning")
SEVERITIES = ("info", "warning", "critical")
DEFAULT_HOOKS = ("pipeline.alerts:log_hook", "pipeline.alerts:jsonl_hook")
# The modules a configured hook may live in (the module itself or a submodule). In code, not
# configuration, on purpose: see the module docstring.
HOOK_MODULE_PREFIXES = ("pipeline.alerts", "pipeline.alert_hooks")

_SCHEMA = """
create table if not exists alerts (
    key varchar primary key,           -- dedup key: recorded and sent once, ever
    source varchar not null,           -- freshness | task_failure | quality | warning
    severity varchar not null,         -- info | warning | critical
    site_id varchar,
    title_zh varchar not null,
    title_en varchar not null,
    details json,
    raised_at_utc timestamp not null,
    hook_errors varchar                -- 'hook: error' lines of hooks that failed
);
"""

Hook = Callable[["Alert"], None]
_data_root: ContextVar[Path | None] = ContextVar("alerts_data_root", default=None)


@dataclass(frozen=True)
class Alert:
    key: str
    source: str
    severity: str
    site_id: str | None
    title_zh: str
    title_en: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("an alert needs a non-empty dedup key")
        if self.source not in SOURCES:
            raise ValueError(f"alert {self.key!r}: source {self.source!r} is not one of {SOURCES}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"alert {self.key!r}: severity {self.severity!r} is not one of {SEVERITIES}")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def configured_hooks() -> list[str]:
    """The hook specs of config/pipeline.yml `alerts.hooks` (the log and JSON-lines hooks by default)."""
    from pipeline.steps import pipeline_config

    hooks = (pipeline_config().get("alerts") or {}).get("hooks")
    return list(DEFAULT_HOOKS if hooks is None else hooks)


def load_hook(spec: str) -> Hook:
    """Resolve 'package.module:function' to the callable, with a clear error if it does not exist."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"alert hook {spec!r} must be 'module:function'")
    if not any(module_name == p or module_name.startswith(p + ".") for p in HOOK_MODULE_PREFIXES):
        raise ValueError(
            f"alert hook {spec!r}: module {module_name} is not under an allowed prefix "
            f"({', '.join(HOOK_MODULE_PREFIXES)}; pipeline/alerts.py HOOK_MODULE_PREFIXES)"
        )
    hook = getattr(importlib.import_module(module_name), attr, None)
    if not callable(hook):
        raise ValueError(f"alert hook {spec!r}: {module_name} has no callable {attr!r}")
    return hook


def raise_alerts(
    alerts: Iterable[Alert], state_db: Path | None = None, hooks: Sequence[str] | None = None
) -> list[Alert]:
    """Record the alerts not seen before, call every hook once per new alert, return the new ones.

    `hooks` overrides config/pipeline.yml (tests); the state database defaults to the data dir's.
    """
    batch: dict[str, Alert] = {}
    for alert in map(redacted, alerts):
        batch.setdefault(alert.key, alert)
    if not batch:
        return []
    path = state_db or data_paths().state_db
    now = _utc_now()
    with open_state_db(path) as con:
        con.execute(_SCHEMA)
        con.execute("begin")
        placeholders = ", ".join("?" for _ in batch)
        seen = {
            row[0]
            for row in con.execute(f"select key from alerts where key in ({placeholders})", list(batch)).fetchall()
        }
        new = [alert for key, alert in batch.items() if key not in seen]
        if not new:
            con.execute("rollback")
            return []
        con.executemany(
            "insert into alerts (key, source, severity, site_id, title_zh, title_en, details, raised_at_utc)"
            " values (?, ?, ?, ?, ?, ?, ?, ?)",
            [[a.key, a.source, a.severity, a.site_id, a.title_zh, a.title_en, _json(a.details), now] for a in new],
        )
        con.execute("commit")
    specs = configured_hooks() if hooks is None else list(hooks)
    errors: dict[str, list[str]] = {}
    token = _data_root.set(path.parent.parent)  # hooks write beside this state database
    try:
        _call_hooks(specs, new, errors)
    finally:
        _data_root.reset(token)
    if errors:
        with open_state_db(path) as con:
            con.executemany(
                "update alerts set hook_errors = ? where key = ?",
                [[redact("\n".join(lines)), key] for key, lines in errors.items()],
            )
    return new


def redacted(alert: Alert) -> Alert:
    """The alert with its key, titles and details redacted (fields and free text)."""
    return replace(
        alert,
        key=redact(alert.key),
        title_zh=redact(alert.title_zh),
        title_en=redact(alert.title_en),
        details=redact(alert.details),
    )


def _call_hooks(specs: list[str], new: list[Alert], errors: dict[str, list[str]]) -> None:
    for spec in specs:
        try:
            hook = load_hook(spec)
        except Exception as exc:  # a misconfigured hook must not stop the others
            log.exception("alert hook %s cannot be loaded", spec)
            for alert in new:
                errors.setdefault(alert.key, []).append(f"{spec}: {exc}")
            continue
        for alert in new:
            try:
                hook(alert)
            except Exception as exc:
                log.exception("alert hook %s failed on alert %s", spec, alert.key)
                errors.setdefault(alert.key, []).append(f"{spec}: {type(exc).__name__}: {exc}")


def recorded_alerts(state_db: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded alert, newest first (for dashboards and tests)."""
    path = state_db or data_paths().state_db
    if not path.exists():
        return []
    with open_state_db(path) as con:
        con.execute(_SCHEMA)
        cursor = con.execute("select * from alerts order by raised_at_utc desc, key")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _json(details: dict[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)


_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


def log_hook(alert: Alert) -> None:
    """One clear log line per alert (redacted: a hook may be called directly)."""
    alert = redacted(alert)
    log.log(
        _LOG_LEVELS[alert.severity],
        "ALERT %s [%s] site=%s: %s / %s (key=%s) %s",
        alert.severity.upper(),
        alert.source,
        alert.site_id or "-",
        alert.title_en,
        alert.title_zh,
        alert.key,
        _json(alert.details),
    )


def alerts_file() -> Path:
    """<data dir>/alerts/alerts.jsonl, the data dir being that of the state database being written."""
    return (_data_root.get() or data_paths().root) / "alerts" / "alerts.jsonl"


def jsonl_hook(alert: Alert) -> None:
    """Append the alert as one JSON line to <data dir>/alerts/alerts.jsonl (for any log shipper)."""
    path = alerts_file()
    make_private_dir(path.parent)
    line = json.dumps(
        {**asdict(redacted(alert)), "raised_at_utc": _utc_now().isoformat()}, ensure_ascii=False, default=str
    )
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    private_file(path)


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Airflow `on_failure_callback` (default_args of every DAG): one Alert(source='task_failure').

    Called once a task has failed for good (retries exhausted). A critical data-quality
    stop is reported as source 'quality'. Never raises: a broken alert must not hide the failure.
    """
    try:
        ti = context.get("ti") or context.get("task_instance")
        dag_id = str(getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?"))
        task_id = str(getattr(ti, "task_id", "?"))
        run_id = str(getattr(ti, "run_id", None) or context.get("run_id") or "?")
        error = context.get("exception")
        quality = type(error).__name__ in ("DataQualityBlocked", "CriticalDataQualityError")
        site_id = dag_id.removeprefix("ingest_") if dag_id.startswith("ingest_") else None
        what_zh = "数据质量严重问题，未发布" if quality else "任务失败"
        raise_alerts(
            [
                Alert(
                    key=f"task_failure:{dag_id}:{run_id}:{task_id}",
                    source="quality" if quality else "task_failure",
                    severity="critical",
                    site_id=site_id,
                    title_zh=f"{what_zh}：{dag_id}.{task_id}",
                    title_en=f"{'data quality blocked' if quality else 'task failed'}: {dag_id}.{task_id}",
                    details={
                        "dag_id": dag_id,
                        "task_id": task_id,
                        "run_id": run_id,
                        "try_number": getattr(ti, "try_number", None),
                        "error": f"{type(error).__name__}: {error}"[:2000] if error else None,
                    },
                )
            ]
        )
    except Exception:
        log.exception("could not record the task failure alert")
