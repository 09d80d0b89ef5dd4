"""The token REST API over real HTTP: client credentials, cursor paging, epoch ms, expiry."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime, timedelta

import httpx
import pytest

from tests.simulator.helpers import CST, ms, rest_all, rest_token

SITE = "xihoulou"  # a token REST site
DAY = date(2026, 1, 7)


@pytest.fixture(scope="module")
def http() -> httpx.Client:
    with httpx.Client(timeout=60) as client:
        yield client


def test_cursor_paging_covers_exactly_the_truth(simulator, http):
    rows = rest_all(http, simulator.base_url, simulator.env, SITE, "passages", DAY, DAY, limit=2000)
    truth = simulator.control.truth(SITE, "passages", str(DAY), str(DAY))
    assert len(rows) == truth["rows"] == truth["served_rows"]
    assert len({r["id"] for r in rows}) == len(rows)
    methods = {"face_recognition": "face", "qr_code": "qr_visitor", "ic_card": "card", "remote_open": "manual"}
    assert dict(Counter(methods[r["auth_method"]] for r in rows)) == truth["by_method"]
    lo, hi = ms(DAY), ms(DAY + timedelta(days=1))
    assert all(lo <= r["occurred_at"] < hi for r in rows)
    first = datetime.fromtimestamp(rows[0]["occurred_at"] / 1000, CST)
    assert first.date() == DAY


def test_every_rest_kind_of_the_site_matches_the_truth(simulator, http):
    start, end = date(2026, 3, 1), date(2026, 3, 20)
    for kind in ("visitors", "vehicles", "alerts", "device_status", "register", "activities", "disclosures"):
        rows = rest_all(http, simulator.base_url, simulator.env, SITE, kind, start, end, limit=5000)
        truth = simulator.control.truth(SITE, kind, str(start), str(end))
        assert len(rows) == truth["served_rows"], kind
    alerts = rest_all(http, simulator.base_url, simulator.env, SITE, "alerts", start, end)
    truth = simulator.control.truth(SITE, "alerts", str(start), str(end))
    assert sum(1 for a in alerts if a["closed_at"] is not None) == truth["closed"]


def test_bad_credentials_and_missing_token_are_refused(simulator, http):
    bad = http.post(
        f"{simulator.base_url}/rest/{SITE}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    no_token = http.get(
        f"{simulator.base_url}/rest/{SITE}/api/v1/passages", params={"start_time": ms(DAY), "end_time": ms(DAY) + 1000}
    )
    assert no_token.status_code == 401 and no_token.json()["error"] == "invalid_token"


def test_http_basic_client_credentials_work(simulator, http):
    env = simulator.env
    reply = http.post(
        f"{simulator.base_url}/rest/{SITE}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(env["SMARTCOMM_REST_CLIENT_ID"], env["SMARTCOMM_REST_CLIENT_SECRET"]),
    )
    assert reply.status_code == 200 and reply.json()["token_type"] == "Bearer"


def test_window_limits(simulator, http):
    token = rest_token(http, simulator.base_url, simulator.env, SITE)
    url = f"{simulator.base_url}/rest/{SITE}/api/v1/passages"
    headers = {"Authorization": f"Bearer {token}"}
    too_long = http.get(url, params={"start_time": ms(DAY), "end_time": ms(DAY + timedelta(days=32))}, headers=headers)
    assert too_long.status_code == 400
    too_big = http.get(url, params={"start_time": ms(DAY), "end_time": ms(DAY) + 1, "limit": 5001}, headers=headers)
    assert too_big.status_code == 400
    # a kind this site does not serve over REST (service cases come as gov exports)
    assert (
        http.get(
            f"{simulator.base_url}/rest/{SITE}/api/v1/service_cases",
            params={"start_time": 0, "end_time": 1},
            headers=headers,
        ).status_code
        == 404
    )


def test_token_expires(simulator_factory, http):
    sim = simulator_factory(token_ttl=1, quiet=True)
    token = rest_token(http, sim.base_url, sim.env, SITE)
    url = f"{sim.base_url}/rest/{SITE}/api/v1/alerts"
    params = {"start_time": ms(DAY), "end_time": ms(DAY + timedelta(days=1))}
    assert http.get(url, params=params, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    time.sleep(1.2)
    expired = http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and expired.json()["error_description"] == "token expired"
