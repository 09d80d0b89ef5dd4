"""Shape-independent pieces: time parsing, window splitting, signing, mappings, state."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools

import pytest

from ingestion import columnar
from ingestion.connectors.isc import sign_headers, string_to_sign
from ingestion.connectors.windows import add_months, split_days
from ingestion.http import FetchError, Retryable, RetryCounter, RetryPolicy, parse_retry_after
from ingestion.mapping import load_shape_mapping
from ingestion.state import LoadFigures, StateStore
from ingestion.timeutil import to_local_naive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05T07:31:12+08:00", dt.datetime(2026, 1, 5, 7, 31, 12)),
        ("2026-01-04T23:31:12Z", dt.datetime(2026, 1, 5, 7, 31, 12)),
        ("2026/1/5 9:05", dt.datetime(2026, 1, 5, 9, 5)),
        ("2026年1月5日", dt.datetime(2026, 1, 5)),
        ("2026.01.05", dt.datetime(2026, 1, 5)),
        ("20260105", dt.datetime(2026, 1, 5)),
        (1767571200000, dt.datetime(2026, 1, 5, 8, 0)),
        ("1767571200000", dt.datetime(2026, 1, 5, 8, 0)),
    ],
)
def test_vendor_times_become_local(text, expected):
    assert to_local_naive(text) == expected


def test_windows_split_at_three_calendar_months():
    windows = split_days(dt.date(2026, 1, 31), dt.date(2026, 9, 30), window_days=400, max_months=3)
    assert windows[0] == (dt.date(2026, 1, 31), dt.date(2026, 4, 30))
    assert all(end <= add_months(start, 3) for start, end in windows)
    assert windows[-1][1] == dt.date(2026, 10, 1)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))  # contiguous
    daily = split_days(dt.date(2026, 1, 1), dt.date(2026, 1, 3), window_days=1, max_days=31)
    assert [w[0].day for w in daily] == [1, 2, 3]


def test_isc_signature_matches_the_documented_string():
    body = b'{"pageNo":1}'
    headers = sign_headers(
        "POST", "/isc/s/artemis/api/x", body, "key", "secret", ["x-ca-key", "x-ca-nonce", "x-ca-timestamp"]
    )
    expected_string = "\n".join(
        [
            "POST",
            "application/json",
            base64.b64encode(hashlib.md5(body).digest()).decode(),
            "application/json;charset=UTF-8",
            "x-ca-key:key",
            f"x-ca-nonce:{headers['X-Ca-Nonce']}",
            f"x-ca-timestamp:{headers['X-Ca-Timestamp']}",
            "/isc/s/artemis/api/x",
        ]
    )
    signed = headers["X-Ca-Signature-Headers"].split(",")
    assert string_to_sign("POST", headers, signed, "/isc/s/artemis/api/x") == expected_string
    digest = hmac.new(b"secret", expected_string.encode(), hashlib.sha256).digest()
    assert headers["X-Ca-Signature"] == base64.b64encode(digest).decode()


def test_mapping_codes_synonyms_and_unknown_codes():
    passages = load_shape_mapping("isc_openapi").kind("passages")
    row = {
        "eventId": "P1",
        "happenTime": "2026-01-05T07:00:00+08:00",
        "inAndOutType": "1",
        "eventType": 196893,
        "personType": 1,
    }
    reasons: list[str | None] = [None, None]
    page = columnar.Page([row, {**row, "eventType": 999}])
    out = {
        k: c.as_list()
        for k, c in columnar.canonical_columns(passages, page, {"event_time", "tailgating"}, reasons).items()
    }
    assert out["event_time"][0] == row["happenTime"] and out["direction"][0] == "in" and out["method"][0] == "face"
    assert passages.record_id_of(row) == "P1" and out["tailgating"][0] is False
    assert reasons[0] is None and "unknown code 999" in (reasons[1] or "")


def test_retry_honours_retry_after_then_gives_up():
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, backoff_base_s=0.01, sleep=waits.append)
    counter = RetryCounter(policy, "s1", "passages")

    def always_busy():
        raise Retryable("HTTP 429", retry_after=2.0)

    with pytest.raises(FetchError, match=r"site s1, kind passages: .*gave up after 3 attempts"):
        counter.run(always_busy, "page 1")
    assert waits and all(w >= 2.0 for w in waits) and counter.retries == 2
    assert parse_retry_after("3") == 3.0


def test_state_watermark_and_audit(paths):
    store = StateStore(paths)
    day = dt.date(2026, 1, 5)
    store.start("r1", "s1", "passages", "isc_openapi", day, day)
    store.finish(
        "r1", "s1", "passages", day, day, LoadFigures(rows_fetched=5, rows_landed=5), outcome="success", duration_s=1.0
    )
    store.start("r2", "s1", "passages", "isc_openapi", day - dt.timedelta(days=3), day - dt.timedelta(days=3))
    store.finish(
        "r2",
        "s1",
        "passages",
        day - dt.timedelta(days=3),
        day - dt.timedelta(days=3),
        LoadFigures(),
        outcome="success",
        duration_s=1.0,
    )
    assert store.watermark("s1", "passages") == day  # never moves backward
    status = store.status()
    assert status[0]["last_run_id"] == "r2" and status[0]["landed_through"] == day
    assert {r["run_id"] for r in store.audit()} == {"r1", "r2"}


def test_interval_days_of_a_run_with_and_without_a_data_interval() -> None:
    """A scheduled run covers its local day; a manual run with no logical date (Airflow 3's
    REST trigger) has no interval and covers the last complete local day."""
    from ingestion.orchestration import interval_days
    from ingestion.timeutil import LOCAL_TZ

    start = dt.datetime(2026, 3, 1, tzinfo=LOCAL_TZ)
    assert interval_days(start, start + dt.timedelta(days=1)) == (dt.date(2026, 3, 1), dt.date(2026, 3, 1))
    yesterday = dt.datetime.now(LOCAL_TZ).date() - dt.timedelta(days=1)
    assert interval_days(None, None) == (yesterday, yesterday)
