"""Issue 19, item 7: no vendor reply body in the load audit, alerts or logs.

A failed reply leaves its HTTP status and the vendor's error code (the ISC `code`, the OAuth
`error`), never the body's text; whatever text still reaches an alert or a log line is redacted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import yaml

from ingestion.hardening import install_log_redaction
from ingestion.http import FetchError
from ingestion.paths import DataPaths
from ingestion.pull import pull
from ingestion.registry import DEFAULT_REGISTRY, parse_registry
from ingestion.state import LoadFigures, StateStore
from pipeline.alerts import on_task_failure, recorded_alerts
from tests.ingestion.test_against_simulator import DAY, FAST, ISC_SITE, REST_SITE, use


def failed_audit(paths) -> str:
    return StateStore(paths).audit()[-1]["error"]


@pytest.mark.parametrize(
    ("site", "variable", "expected", "body_text"),
    [
        (ISC_SITE, "SMARTCOMM_ISC_APP_KEY", "authentication refused: HTTP 401 code 0x02401004", "unknown app key"),
        (REST_SITE, "SMARTCOMM_REST_CLIENT_SECRET", "token refused: HTTP 401 code invalid_client", '"error"'),
    ],
)
def test_refused_credentials_leave_status_and_code_only(
    simulator, monkeypatch, tmp_path, site, variable, expected, body_text
):
    paths = use(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv(variable, "wrong-credential")
    with pytest.raises(FetchError) as failure:
        pull(site, "passages", DAY, DAY, policy=FAST)
    for text in (str(failure.value), failed_audit(paths)):
        assert expected in text and body_text not in text, text


def test_an_unknown_path_leaves_the_code_not_the_message(simulator, monkeypatch, tmp_path):
    paths = use(simulator, monkeypatch, tmp_path)
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text(encoding="utf-8"))
    site = next(s for s in raw["sites"] if s["site_id"] == ISC_SITE)
    site["sources"]["passages"]["base_url"] = simulator.base_url + "/isc/nowhere"
    with pytest.raises(FetchError):
        pull(ISC_SITE, "passages", DAY, DAY, registry=parse_registry(raw), policy=FAST)
    error = failed_audit(paths)
    assert "HTTP 404 code 0x00000404" in error and "api not found" not in error, error


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from tests.fixtures.simulator import start_simulator

    with start_simulator(
        tmp_path_factory.mktemp("sim_busy"), seed=7, start="2026-01-05", end="2026-01-07", quiet=True
    ) as sim:
        yield sim


@pytest.mark.parametrize(
    ("site", "code", "body_text"), [(ISC_SITE, "0x00052000", "system busy"), (REST_SITE, "internal_error", "None")]
)
def test_error_codes_in_a_200_reply_are_kept_without_the_message(busy, monkeypatch, tmp_path, site, code, body_text):
    paths = use(busy, monkeypatch, tmp_path)
    busy.control.set_faults([{"fault": "error_code", "site": site, "kind": "passages"}])
    try:
        with pytest.raises(FetchError, match="gave up"):
            pull(site, "passages", DAY, DAY, policy=FAST)
    finally:
        busy.control.clear_faults()
    error = failed_audit(paths)
    assert code in error and body_text not in error, error


def test_the_load_audit_keeps_no_personal_data_whoever_reports_it(tmp_path):
    store = StateStore(DataPaths(tmp_path))
    store.start("r1", "s9", "register", "manual_xlsx", DAY, DAY)
    error = "site s9, kind register: ValueError: 姓名：张三 +86 138 1234 5678"
    store.finish("r1", "s9", "register", DAY, DAY, LoadFigures(), outcome="failed", duration_s=0.1, error=error)
    kept = store.audit("r1")[0]["error"]
    assert "张三" not in kept and "138 1234" not in kept and kept.startswith("site s9, kind register: ValueError")


def test_alerts_and_their_records_are_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path))

    class TaskInstance:
        dag_id, task_id, run_id, try_number = "ingest_s9", "register", "manual__1", 1

    error = RuntimeError("row of 姓名：张三, phone +86 138 1234 5678, ID 110105194912310021, car 鲁B·12345")
    on_task_failure({"ti": TaskInstance(), "exception": error})
    (record,) = recorded_alerts()
    line = (tmp_path / "alerts" / "alerts.jsonl").read_text(encoding="utf-8")
    for kept in (json.dumps(record, ensure_ascii=False, default=str), line):
        for clear in ("张三", "+86 138 1234 5678", "110105194912310021", "鲁B·12345"):
            assert clear not in kept, kept
    assert "<mobile>" in record["details"] and "RuntimeError" in record["details"]


def test_log_records_are_redacted_message_and_traceback(caplog):
    previous = logging.getLogRecordFactory()
    install_log_redaction()
    try:
        log = logging.getLogger("tests.security.vendor_bodies")
        with caplog.at_level(logging.INFO, logger=log.name):
            log.info("caller %s at %s", "138-1234-5678", "鲁B·12345")
            try:
                raise ValueError("bad id 110105491231002 for 联系人李四")
            except ValueError:
                log.exception("landing failed")
        text = caplog.text
        assert "<mobile>" in text and "<plate>" in text and "<id_card>" in text
        for clear in ("138-1234-5678", "鲁B·12345", "110105491231002", "李四"):
            assert clear not in text, text
    finally:
        logging.setLogRecordFactory(previous)
