"""Each fault of README "Faults", switched on through the control API and observed over HTTP."""

from __future__ import annotations

import time
from datetime import date, timedelta

import httpx
import pytest

from tests.fixtures.simulator import start_simulator
from tests.simulator.helpers import day_window, isc_all, isc_post, ms, rest_all, rest_token

ISC_SITE, REST_SITE = "lt_harbour", "lt_jiayuan"
PASSAGES = "/artemis/api/acs/v1/door/events"
DAY = date(2026, 1, 8)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with start_simulator(tmp_path_factory.mktemp("faults"), seed=21, quiet=True) as handle:
        yield handle


@pytest.fixture(autouse=True)
def no_faults_left(sim):
    sim.control.clear_faults()
    yield
    sim.control.clear_faults()


@pytest.fixture(scope="module")
def http():
    with httpx.Client(timeout=60) as client:
        yield client


def isc_page(sim, http, page=1, size=100, site=ISC_SITE, path=PASSAGES):
    return isc_post(http, sim.base_url, sim.env, site, path, {**day_window(DAY, DAY), "pageNo": page, "pageSize": size})


def rest_get(sim, http, token, kind="passages", **params):
    params = params or {"start_time": ms(DAY), "end_time": ms(DAY + timedelta(days=1)), "limit": 100}
    return http.get(
        f"{sim.base_url}/rest/{REST_SITE}/api/v1/{kind}", params=params, headers={"Authorization": f"Bearer {token}"}
    )


def test_rate_limit_with_retry_after_then_recovers(sim, http):
    sim.control.add_faults(
        {"fault": "rate_limit", "site": REST_SITE, "kind": "passages", "count": 2, "params": {"retry_after": 3}}
    )
    token = rest_token(http, sim.base_url, sim.env, REST_SITE)
    for _ in range(2):
        reply = rest_get(sim, http, token)
        assert reply.status_code == 429 and reply.headers["Retry-After"] == "3"
    assert rest_get(sim, http, token).status_code == 200
    sim.control.add_faults({"fault": "rate_limit", "site": ISC_SITE, "count": 1})
    assert isc_page(sim, http).status_code == 429


def test_server_error_and_error_code(sim, http):
    sim.control.add_faults(
        [
            {"fault": "server_error", "site": ISC_SITE, "count": 1, "params": {"status": 502}},
            {"fault": "error_code", "site": ISC_SITE, "count": 1},
        ]
    )
    assert isc_page(sim, http).status_code == 502
    busy = isc_page(sim, http)
    assert busy.status_code == 200 and busy.json()["code"] == "0x00052000"
    assert isc_page(sim, http).json()["code"] == "0"


def test_slow_reply(sim, http):
    sim.control.add_faults({"fault": "slow", "site": ISC_SITE, "count": 1, "params": {"delay_s": 1.0}})
    started = time.perf_counter()
    assert isc_page(sim, http).json()["code"] == "0"
    assert time.perf_counter() - started >= 1.0


def test_connection_reset_mid_body(sim, http):
    sim.control.add_faults({"fault": "reset_mid_body", "site": ISC_SITE, "count": 1})
    with pytest.raises(httpx.HTTPError):
        isc_page(sim, http, size=1000)
    assert isc_page(sim, http).json()["code"] == "0"


def test_token_expired_mid_run(sim, http):
    token = rest_token(http, sim.base_url, sim.env, REST_SITE)
    first = rest_get(sim, http, token).json()
    sim.control.add_faults({"fault": "token_expired", "site": REST_SITE, "count": 1})
    cursor = first["next_cursor"]
    expired = rest_get(sim, http, token, cursor=cursor)
    assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"
    assert rest_get(sim, http, token, cursor=cursor).status_code == 401  # that token stays dead
    fresh = rest_token(http, sim.base_url, sim.env, REST_SITE)
    assert rest_get(sim, http, fresh, cursor=cursor).status_code == 200  # same cursor, new token


def test_duplicate_rows_repeat_the_previous_page(sim, http):
    first = isc_page(sim, http, page=1).json()["data"]["list"]
    sim.control.add_faults({"fault": "duplicate_rows", "site": ISC_SITE, "count": 1, "params": {"rows": 4}})
    second = isc_page(sim, http, page=2).json()["data"]["list"]
    assert len(second) == 104
    assert [r["eventId"] for r in second[:4]] == [r["eventId"] for r in first[-4:]]


def test_total_drift_on_later_pages(sim, http):
    true_total = isc_page(sim, http, page=1).json()["data"]["total"]
    sim.control.add_faults({"fault": "total_drift", "site": ISC_SITE, "params": {"delta": 9}})
    assert isc_page(sim, http, page=1).json()["data"]["total"] == true_total
    assert isc_page(sim, http, page=2).json()["data"]["total"] == true_total + 9


def test_schema_drift_variants(sim, http):
    sim.control.add_faults(
        {"fault": "schema_drift", "site": ISC_SITE, "kind": "passages", "params": {"variant": "renamed_field"}}
    )
    row = isc_page(sim, http).json()["data"]["list"][0]
    assert "happenTime" in row and "eventTime" not in row
    sim.control.set_faults([{"fault": "schema_drift", "site": ISC_SITE, "params": {"variant": "number_as_string"}}])
    row = isc_page(sim, http).json()["data"]["list"][0]
    assert isinstance(row["inAndOutType"], str) and isinstance(row["eventType"], str)
    sim.control.set_faults([{"fault": "schema_drift", "site": REST_SITE, "params": {"variant": "new_field"}}])
    token = rest_token(http, sim.base_url, sim.env, REST_SITE)
    assert rest_get(sim, http, token).json()["data"][0]["ext_flag"] == 1


def test_late_events_show_up_the_next_day_and_truth_says_so(sim, http):
    sim.control.add_faults({"fault": "late_events", "site": ISC_SITE, "kind": "passages", "params": {"rate": 0.01}})
    truth = sim.control.truth(ISC_SITE, "passages", str(DAY), str(DAY))
    late_ids = {e["id"] for e in truth["late"] if e["day"] == str(DAY)}
    assert late_ids and all(e["listed_day"] == str(DAY + timedelta(days=1)) for e in truth["late"])
    listed = isc_all(http, sim.base_url, sim.env, ISC_SITE, PASSAGES, DAY, DAY)
    same_day = {r["eventId"] for r in listed if r["eventTime"].startswith(str(DAY))}
    yesterday_late = {r["eventId"] for r in listed if not r["eventTime"].startswith(str(DAY))}
    assert yesterday_late == {
        e["id"]
        for e in sim.control.truth(ISC_SITE, "passages", str(DAY - timedelta(days=1)), str(DAY - timedelta(days=1)))[
            "late"
        ]
    }
    next_day = isc_all(
        http, sim.base_url, sim.env, ISC_SITE, PASSAGES, DAY + timedelta(days=1), DAY + timedelta(days=1)
    )
    assert not late_ids & same_day
    shown_late = {r["eventId"] for r in next_day if r["eventTime"].startswith(str(DAY))}
    assert shown_late == late_ids
    assert len(same_day) + len(late_ids) == truth["rows"]  # nothing lost, nothing malformed here


def test_malformed_rows_are_broken_on_the_wire_and_listed_in_truth(sim, http):
    sim.control.add_faults(
        {"fault": "malformed_rows", "site": REST_SITE, "kind": "passages", "params": {"rate": 0.005}}
    )
    truth = sim.control.truth(REST_SITE, "passages", str(DAY), str(DAY))
    bad = {e["id"]: e["reason"] for e in truth["malformed"]}
    assert bad and truth["rows"] == truth["served_rows"] - len(bad)
    rows = {r["id"]: r for r in rest_all(http, sim.base_url, sim.env, REST_SITE, "passages", DAY, DAY)}
    for event_id, reason in bad.items():
        row = rows[event_id]
        if reason == "bad_timestamp":
            assert not isinstance(row["occurred_at"], int)
        elif reason == "missing_gate":
            assert row["gate_code"] == ""
        elif reason == "zero_temperature":
            assert row["body_temp"] == 0.0
    good = [r for i, r in rows.items() if i not in bad]
    assert all(isinstance(r["occurred_at"], int) and r["gate_code"] for r in good)


def test_invalid_id_checksum_in_the_register(sim, http):
    from simulator.world import id_card_valid

    sim.control.add_faults(
        {"fault": "invalid_id_checksum", "site": REST_SITE, "kind": "register", "params": {"rate": 0.01}}
    )
    first = date(2026, 2, 1)
    truth = sim.control.truth(REST_SITE, "register", str(first), str(first))
    flagged = {e["id"] for e in truth["malformed"] if e["reason"] == "invalid_id_checksum"}
    rows = rest_all(http, sim.base_url, sim.env, REST_SITE, "register", first, first, limit=5000)
    invalid = {r["resident_id"] for r in rows if not id_card_valid(r["id_number"])}
    assert flagged and invalid == flagged


def test_unknown_fault_is_refused(sim, http):
    reply = http.post(f"{sim.base_url}/_control/faults", json={"fault": "gremlins"})
    assert reply.status_code == 400 and "unknown fault" in reply.json()["error"]


def test_after_page_every_and_days_select_requests(sim, http):
    sim.control.add_faults({"fault": "error_code", "site": ISC_SITE, "after_page": 2})
    assert isc_page(sim, http, page=2).json()["code"] == "0"
    assert isc_page(sim, http, page=3).json()["code"] == "0x00052000"
    sim.control.set_faults([{"fault": "error_code", "site": ISC_SITE, "every": 3}])
    codes = [isc_page(sim, http).json()["code"] for _ in range(6)]
    assert codes == ["0", "0", "0x00052000", "0", "0", "0x00052000"]
    other_day = (DAY + timedelta(days=1)).isoformat()
    sim.control.set_faults(
        [
            {
                "fault": "malformed_rows",
                "site": ISC_SITE,
                "kind": "passages",
                "days": [other_day],
                "params": {"rate": 0.01},
            }
        ]
    )
    assert not sim.control.truth(ISC_SITE, "passages", str(DAY), str(DAY))["malformed"]
    assert sim.control.truth(ISC_SITE, "passages", other_day, other_day)["malformed"]


def test_duplicate_rows_count_is_not_spent_on_page_one(sim, http):
    sim.control.add_faults({"fault": "duplicate_rows", "site": ISC_SITE, "count": 1, "params": {"rows": 2}})
    assert len(isc_page(sim, http, page=1).json()["data"]["list"]) == 100
    assert len(isc_page(sim, http, page=2).json()["data"]["list"]) == 102
    assert len(isc_page(sim, http, page=3).json()["data"]["list"]) == 100
