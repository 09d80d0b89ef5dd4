"""The ISC-style OpenAPI over real HTTP: signing, paging against the truth, errors, determinism."""

from __future__ import annotations

from collections import Counter
from datetime import date

import httpx
import pytest

from tests.simulator.helpers import day_window, isc_all, isc_post

PASSAGES = "/artemis/api/acs/v1/door/events"
SITE = "lt_harbour"  # an ISC site
DAY = date(2026, 1, 6)


@pytest.fixture(scope="module")
def http() -> httpx.Client:
    with httpx.Client(timeout=60) as client:
        yield client


def test_paging_covers_exactly_the_truth(simulator, http):
    rows = isc_all(http, simulator.base_url, simulator.env, SITE, PASSAGES, DAY, DAY)
    truth = simulator.control.truth(SITE, "passages", str(DAY), str(DAY))
    assert len(rows) == truth["served_rows"] == truth["rows"]  # no faults: nothing late or malformed
    assert len({r["eventId"] for r in rows}) == len(rows)
    codes = {196893: "face", 198914: "card", 200514: "qr_visitor", 198657: "manual"}
    assert dict(Counter(codes[r["eventType"]] for r in rows)) == truth["by_method"]
    assert sum(r["tailgateFlag"] for r in rows) == truth["tailgating"]
    assert all(r["eventTime"].startswith("2026-01-06T") and r["eventTime"].endswith("+08:00") for r in rows)


def test_a_wrong_signature_is_refused(simulator, http):
    body = {**day_window(DAY, DAY), "pageNo": 1, "pageSize": 10}
    wrong = isc_post(http, simulator.base_url, simulator.env, SITE, PASSAGES, body, secret="not-the-secret")
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "0x02401003"
    right = isc_post(http, simulator.base_url, simulator.env, SITE, PASSAGES, body)
    assert right.status_code == 200 and right.json()["code"] == "0"


def test_signature_over_the_bare_artemis_path_and_with_content_md5(simulator, http):
    body = {**day_window(DAY, DAY), "pageNo": 1, "pageSize": 10}
    reply = isc_post(http, simulator.base_url, simulator.env, SITE, PASSAGES, body, signed_path=PASSAGES, md5=True)
    assert reply.json()["code"] == "0"


def test_missing_signature_and_unknown_key_are_refused(simulator, http):
    url = f"{simulator.base_url}/isc/{SITE}{PASSAGES}"
    bare = http.post(
        url,
        json={**day_window(DAY, DAY), "pageNo": 1, "pageSize": 10},
        headers={"X-Ca-Key": simulator.env["SMARTCOMM_ISC_APP_KEY"]},
    )
    assert bare.status_code == 401 and bare.json()["code"] == "0x02401003"
    stranger = http.post(url, json={}, headers={"X-Ca-Key": "someone-else"})
    assert stranger.status_code == 401 and stranger.json()["code"] == "0x02401004"


def test_parameter_errors_keep_http_200_with_a_code(simulator, http):
    too_long = {
        "startTime": "2026-01-01T00:00:00+08:00",
        "endTime": "2026-04-02T00:00:00+08:00",
        "pageNo": 1,
        "pageSize": 10,
    }
    reply = isc_post(http, simulator.base_url, simulator.env, SITE, PASSAGES, too_long)
    assert reply.status_code == 200 and reply.json()["code"] == "0x00072002"
    naive = {"startTime": "2026-01-01T00:00:00", "endTime": "2026-01-02T00:00:00+08:00", "pageNo": 1, "pageSize": 10}
    assert isc_post(http, simulator.base_url, simulator.env, SITE, PASSAGES, naive).json()["code"] == "0x00072001"
    big_page = {**day_window(DAY, DAY), "pageNo": 1, "pageSize": 1001}
    assert isc_post(http, simulator.base_url, simulator.env, SITE, PASSAGES, big_page).json()["code"] == "0x00072001"


def test_kinds_not_assigned_to_the_shape_are_not_served(simulator, http):
    body = {**day_window(DAY, DAY), "pageNo": 1, "pageSize": 10}
    # xihoulou's passages come over token REST, not ISC
    reply = isc_post(http, simulator.base_url, simulator.env, "xihoulou", PASSAGES, body)
    assert reply.status_code == 404


def test_every_isc_kind_answers_with_its_documented_fields(simulator, http):
    expected = {
        "/artemis/api/visitor/v1/appointment/records": (
            "visitors",
            {"appointRecordId", "visitStartTime", "arriveTime", "certificateNo", "visitorStatus"},
        ),
        "/artemis/api/pms/v1/crossRecords/page": (
            "vehicles",
            {"crossRecordSyscode", "crossTime", "plateNo", "vehicleOut", "carCategory"},
        ),
        "/artemis/api/els/v1/events/search": (
            "alerts",
            {"eventId", "eventType", "happenTime", "ackTime", "closeTime", "status"},
        ),
        "/artemis/api/nms/v1/online/history": (
            "device_status",
            {"indexCode", "resourceType", "regionIndexCode", "collectTime", "online"},
        ),
    }
    for path, (kind, fields) in expected.items():
        reply = isc_post(
            http, simulator.base_url, simulator.env, SITE, path, {**day_window(DAY, DAY), "pageNo": 1, "pageSize": 5}
        ).json()
        truth = simulator.control.truth(SITE, kind, str(DAY), str(DAY))
        assert reply["data"]["total"] == truth["served_rows"], kind
        assert fields <= set(reply["data"]["list"][0]), kind


def test_same_seed_gives_byte_identical_pages(simulator, simulator_factory, http):
    other = simulator_factory(seed=simulator.seed, quiet=True)
    body = {**day_window(DAY, DAY), "pageNo": 3, "pageSize": 500}
    first = isc_post(http, simulator.base_url, simulator.env, SITE, PASSAGES, body).content
    second = isc_post(http, other.base_url, other.env, SITE, PASSAGES, body).content
    assert first == second
    different = simulator_factory(seed=simulator.seed + 1, quiet=True)
    assert isc_post(http, different.base_url, different.env, SITE, PASSAGES, body).content != first


def test_each_request_is_logged_on_one_line(simulator_factory, http):
    sim = simulator_factory()  # not quiet
    isc_post(http, sim.base_url, sim.env, SITE, PASSAGES, {**day_window(DAY, DAY), "pageNo": 1, "pageSize": 3})
    http.get(f"{sim.base_url}/_control/health")
    import time

    time.sleep(0.2)
    lines = sim.log_path.read_text(encoding="utf-8").splitlines()
    assert any(f"POST /isc/{SITE}{PASSAGES} 200" in line for line in lines)
    assert any("GET /_control/health 200" in line for line in lines)
