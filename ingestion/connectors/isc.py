"""ISC-style security platform OpenAPI (artemis gateway): signed POST requests, pageNo paging.

Signing follows the gateway's documented scheme: method, the Accept / Content-MD5 /
Content-Type / Date values present, each signed `x-ca-*` header as `name:value` sorted by
name, then the request path; base64(HMAC-SHA256(secret, that string)) in X-Ca-Signature.
Paging stops on a short or empty page (a drifting `total` is not trusted), and a window
whose distinct rows fall short of the first page's `total` fails loudly: a lost page is
never landed as a complete day.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from ingestion.connectors import Unit, credential
from ingestion.connectors.windows import split_days, window_units
from ingestion.http import FetchError, Retryable, RetryCounter, check_status, new_client, reply_status, vendor_code
from ingestion.mapping import ShapeMapping
from ingestion.registry import IscConnection, Site


def string_to_sign(method: str, headers: dict[str, str], signed: list[str], path: str) -> str:
    """The gateway's string to sign (headers as sent; `signed` lower-case x-ca-* names)."""
    lower = {k.lower(): v for k, v in headers.items()}
    lines = [method.upper()]
    lines += [lower[name] for name in ("accept", "content-md5", "content-type", "date") if name in lower]
    lines += [f"{name}:{lower[name]}" for name in sorted(signed)]
    lines.append(path)
    return "\n".join(lines)


def sign_headers(
    method: str, path: str, body: bytes, app_key: str, app_secret: str, signed: list[str]
) -> dict[str, str]:
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json;charset=UTF-8",
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
        "X-Ca-Key": app_key,
        "X-Ca-Nonce": str(uuid.uuid4()),
        "X-Ca-Timestamp": str(int(time.time() * 1000)),
    }
    present = [name for name in signed if name in {k.lower() for k in headers}]
    headers["X-Ca-Signature-Headers"] = ",".join(present)
    digest = hmac.new(
        app_secret.encode(), string_to_sign(method, headers, present, path).encode(), hashlib.sha256
    ).digest()
    headers["X-Ca-Signature"] = base64.b64encode(digest).decode()
    return headers


class IscConnector:
    def __init__(self, site: Site, kind: str, source: IscConnection, mapping: ShapeMapping, retry: RetryCounter):
        self.site = site
        self.kind = kind
        self.settings = mapping.settings
        self.endpoint = mapping.kind(kind).settings["endpoint"]
        self.id_fields = list(mapping.kind(kind).record_id)
        self.page_size = min(source.page_size, int(self.settings.get("page_size", 1000)))
        self.retry = retry
        base_url = site.resolve(source.base_url).rstrip("/")
        self.base_path = httpx.URL(base_url).path.rstrip("/")
        self.app_key = credential(site.site_id, kind, source.app_key_env)
        self.app_secret = credential(site.site_id, kind, source.app_secret_env)
        self.client = new_client(base_url, retry)
        self.signed = list(self.settings.get("signed_headers", ["x-ca-key", "x-ca-nonce", "x-ca-timestamp"]))
        self.retryable_codes = set(self.settings.get("retryable_codes", []))

    def units(self, first_day: dt.date, last_day: dt.date) -> list[Unit]:
        windows = split_days(
            first_day,
            last_day,
            window_days=int(self.settings.get("window_days", 1)),
            max_months=int(self.settings.get("max_window_months", 3)),
        )
        return window_units(windows)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = orjson.dumps(body)
        path = self.base_path + self.endpoint
        headers = sign_headers("POST", path, payload, self.app_key, self.app_secret, self.signed)
        response = self.client.post(self.endpoint, content=payload, headers=headers)
        if response.status_code == 401:
            code = vendor_code(response.content)
            if code in self.retryable_codes:
                raise Retryable(f"HTTP 401 code {code} (nonce/timestamp refused)")
            raise FetchError(self.site.site_id, self.kind, f"authentication refused: {reply_status(response)}")
        check_status(response)
        try:
            envelope = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise Retryable(f"unreadable JSON body ({exc})") from None
        code = str(envelope.get("code"))
        if code != str(self.settings.get("success_code", "0")):
            # the code only: the gateway's `msg` is the vendor's free text (docs/security.md)
            message = f"gateway code {vendor_code(envelope) or '(not a code)'}"
            if code in self.retryable_codes:
                raise Retryable(message)
            raise FetchError(self.site.site_id, self.kind, message)
        data = envelope.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("list"), list):
            raise Retryable("reply without data.list")
        return data

    def pages(self, unit: Unit) -> Iterator[list[dict[str, Any]]]:
        assert unit.start is not None and unit.end is not None
        body = {"startTime": unit.start.isoformat(), "endTime": unit.end.isoformat(), "pageSize": self.page_size}
        first_total: int | None = None
        previous: list[Any] = []
        distinct = 0
        page_no = 1
        while True:
            data = self.retry.run(
                lambda p=page_no: self._post({**body, "pageNo": p}), f"{self.endpoint} page {page_no}"
            )
            rows = data["list"]
            if first_total is None:
                first_total = int(data.get("total") or 0)
            # A page that starts by repeating the previous page's tail (offset paging on a
            # moving listing) adds only its new rows. Content identity elsewhere proves
            # nothing: two broken rows of one device can look the same on the wire.
            distinct += len(rows) - _overlap(previous, rows)
            previous = rows
            if rows:
                yield rows
            if len(rows) < self.page_size:
                break
            page_no += 1
        if first_total is not None and distinct < first_total:
            raise FetchError(
                self.site.site_id,
                self.kind,
                f"window {unit.label}: {distinct} distinct rows but the gateway's total is {first_total} (lost page?)",
            )

    def close(self) -> None:
        self.client.close()

    def after_landing(self) -> None:
        pass


def _same_row(a: Any, b: Any) -> bool:
    """The same row as sent (key order included: a repeated row is repeated verbatim)."""
    return a == b and (type(a) is not dict or list(a) == list(b))


def _overlap(previous: list[Any], current: list[Any]) -> int:
    """The longest k such that current starts with the last k rows of previous.

    Rows are compared only where the first row of `current` matches (no hashing of every
    row: a page costs one comparison per row of the previous page)."""
    if not previous or not current:
        return 0
    first = current[0]
    for k in range(min(len(previous), len(current)), 0, -1):
        if _same_row(previous[-k], first) and all(
            _same_row(a, b) for a, b in zip(previous[-k:], current[:k], strict=True)
        ):
            return k
    return 0
