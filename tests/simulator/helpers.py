"""Small clients for the simulator's vendor APIs, written from simulator/README.md."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx

CST = timezone(timedelta(hours=8))


def isc_headers(
    env: dict[str, str],
    full_path: str,
    body: bytes,
    signed_path: str | None = None,
    secret: str | None = None,
    md5: bool = False,
) -> dict[str, str]:
    """Signed headers for an ISC POST, the way README "Signing" says."""
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json;charset=UTF-8",
        "X-Ca-Key": env["SMARTCOMM_ISC_APP_KEY"],
        "X-Ca-Nonce": str(uuid.uuid4()),
        "X-Ca-Timestamp": str(int(time.time() * 1000)),
    }
    if md5:
        headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
    signed = {
        "x-ca-key": headers["X-Ca-Key"],
        "x-ca-nonce": headers["X-Ca-Nonce"],
        "x-ca-timestamp": headers["X-Ca-Timestamp"],
    }
    lines = ["POST", headers["Accept"]]
    if md5:
        lines.append(headers["Content-MD5"])
    lines.append(headers["Content-Type"])
    lines += [f"{k}:{v}" for k, v in sorted(signed.items())]
    lines.append(signed_path or full_path)
    key = (secret or env["SMARTCOMM_ISC_APP_SECRET"]).encode()
    headers["X-Ca-Signature"] = base64.b64encode(
        hmac.new(key, "\n".join(lines).encode(), hashlib.sha256).digest()
    ).decode()
    headers["X-Ca-Signature-Headers"] = ",".join(sorted(signed))
    return headers


def day_window(start: date, end: date) -> dict[str, str]:
    """ISC body times for local days start..end inclusive."""
    return {
        "startTime": datetime.combine(start, datetime.min.time(), CST).isoformat(),
        "endTime": datetime.combine(end + timedelta(days=1), datetime.min.time(), CST).isoformat(),
    }


def isc_post(
    http: httpx.Client, base_url: str, env: dict[str, str], site: str, path: str, body: dict[str, Any], **sign: Any
) -> httpx.Response:
    full_path = f"/isc/{site}{path}"
    data = json.dumps(body).encode()
    return http.post(base_url + full_path, content=data, headers=isc_headers(env, full_path, data, **sign))


def isc_all(
    http: httpx.Client,
    base_url: str,
    env: dict[str, str],
    site: str,
    path: str,
    start: date,
    end: date,
    page_size: int = 1000,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        reply = isc_post(
            http, base_url, env, site, path, {**day_window(start, end), "pageNo": page, "pageSize": page_size}
        ).json()
        assert reply["code"] == "0", reply
        rows += reply["data"]["list"]
        if len(reply["data"]["list"]) < page_size:
            return rows
        page += 1


def rest_token(http: httpx.Client, base_url: str, env: dict[str, str], site: str) -> str:
    reply = http.post(
        f"{base_url}/rest/{site}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env["SMARTCOMM_REST_CLIENT_ID"],
            "client_secret": env["SMARTCOMM_REST_CLIENT_SECRET"],
        },
    )
    reply.raise_for_status()
    return reply.json()["access_token"]


def ms(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), CST).timestamp() * 1000)


def rest_all(
    http: httpx.Client,
    base_url: str,
    env: dict[str, str],
    site: str,
    kind: str,
    start: date,
    end: date,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    token = rest_token(http, base_url, env, site)
    url = f"{base_url}/rest/{site}/api/v1/{kind}"
    params: dict[str, Any] = {"start_time": ms(start), "end_time": ms(end + timedelta(days=1)), "limit": limit}
    rows: list[dict[str, Any]] = []
    while True:
        reply = http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        rows += body["data"]
        if not body["has_more"]:
            return rows
        params = {"cursor": body["next_cursor"]}
