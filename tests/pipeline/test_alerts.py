"""The alert hook: dedup by key, a record per alert, hooks called once, failing hooks lose nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import pytest

from pipeline import alerts
from pipeline.alerts import Alert, configured_hooks, raise_alerts, recorded_alerts

CALLS: list[str] = []


def recording_hook(alert: Alert) -> None:
    CALLS.append(alert.key)


def failing_hook(alert: Alert) -> None:
    raise ConnectionError("webhook unreachable")


def _alert(key: str, severity: str = "warning", site: str | None = "cy-01") -> Alert:
    return Alert(
        key=key,
        source="freshness",
        severity=severity,
        site_id=site,
        title_zh="通行记录数据迟到",
        title_en="passages feed late",
        details={"lateness_h": 30.5},
    )


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path))
    # this module's hooks are allowed, as a module of the platform would be (issue 19)
    monkeypatch.setattr(alerts, "HOOK_MODULE_PREFIXES", (*alerts.HOOK_MODULE_PREFIXES, "tests.pipeline"))
    CALLS.clear()
    return tmp_path


def test_new_alerts_are_recorded_and_sent_once(data_dir: Path) -> None:
    hooks = ["tests.pipeline.test_alerts:recording_hook"]
    first = raise_alerts([_alert("a"), _alert("b"), _alert("a")], hooks=hooks)
    assert [a.key for a in first] == ["a", "b"]
    again = raise_alerts([_alert("b"), _alert("c")], hooks=hooks)
    assert [a.key for a in again] == ["c"]
    assert CALLS == ["a", "b", "c"]
    with duckdb.connect(str(data_dir / "state" / "state.duckdb"), read_only=True) as con:
        rows = con.execute("select key, source, severity, site_id, details->>'lateness_h' from alerts order by key")
        assert rows.fetchall() == [(k, "freshness", "warning", "cy-01", "30.5") for k in "abc"]


def test_default_hooks_log_and_write_json_lines(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert configured_hooks() == ["pipeline.alerts:log_hook", "pipeline.alerts:jsonl_hook"]
    with caplog.at_level(logging.WARNING, logger="pipeline.alerts"):
        raise_alerts([_alert("late:cy-01:passages", site="cy-01"), _alert("x", severity="critical", site=None)])
    lines = [json.loads(line) for line in (data_dir / "alerts" / "alerts.jsonl").read_text("utf-8").splitlines()]
    assert [(line["key"], line["title_zh"]) for line in lines] == [
        ("late:cy-01:passages", "通行记录数据迟到"),
        ("x", "通行记录数据迟到"),
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert any("ALERT WARNING [freshness] site=cy-01: passages feed late" in m for m in messages)
    assert any(r.levelno == logging.ERROR and "site=-" in r.getMessage() for r in caplog.records)


def test_a_failing_hook_loses_no_alert_and_does_not_stop_the_others(data_dir: Path) -> None:
    hooks = [
        "tests.pipeline.test_alerts:failing_hook",
        "tests.pipeline.no_such_module:hook",
        "tests.pipeline.test_alerts:recording_hook",
    ]
    new = raise_alerts([_alert("k")], hooks=hooks)
    assert [a.key for a in new] == ["k"] and CALLS == ["k"]
    (record,) = recorded_alerts()
    assert record["key"] == "k"
    assert "failing_hook: ConnectionError: webhook unreachable" in record["hook_errors"]
    assert "no_such_module" in record["hook_errors"]


def test_bad_alerts_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="severity 'urgent'"):
        _alert("k", severity="urgent")
    with pytest.raises(ValueError, match="source"):
        Alert("k", "email", "info", None, "标题", "title", {})
