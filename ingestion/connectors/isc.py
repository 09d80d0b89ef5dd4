"""ISC-style security platform OpenAPI (artemis gateway): signed POST requests, pageNo paging.

Signing follows the gateway's documented scheme: method, the Accept / Content-MD5 /
Content-Type / Date values present, each signed `x-ca-*` header as `name:value` sorted by
name, then the request path; base64(HMAC-SHA256(secret, that string)) in X-Ca-Signature.
Paging stops on a short or empty page (a drifting `total` is not trusted), and a window
whose distinct rows fall short of the first page's `total` fails loudly: a lost page is
never landed as a complete day. That check needs a `total`: a reply with rows but without
one (or with 0) fails too, unless the shape's settings say `total_reliable: false`.
A reply of the wrong shape (not an object, `data` or `data.list` missing, a `total` that is
no whole number) fails naming endpoint, window, page and field, never the reply's text.
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
from ingestion.http import (
    FetchError,
    Retryable,
    RetryCounter,
    check_status,
    json_type,
    new_client,
    reply_status,
    vendor_code,
)
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

    def _post(self, body: dict[str, Any], where: str) -> dict[str, Any]:
        """One page's `data` (FetchError / Retryable causes start with `where`: endpoint, window, page)."""
        payload = orjson.dumps(body)
        path = self.base_path + self.endpoint
        headers = sign_headers("POST", path, payload, self.app_key, self.app_secret, self.signed)
        response = self.client.post(self.endpoint, content=payload, headers=headers)
        if response.status_code == 401:
            code = vendor_code(response.content)
            if code in self.retryable_codes:
                raise Retryable(f"HTTP 401 code {code} (nonce/timestamp refused)")
            raise FetchError(self.site.site_id, self.kind, f"{where}: authentication refused: {reply_status(response)}")
        check_status(response)
        try:
            envelope = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise Retryable(f"unreadable JSON body ({exc})") from None
        if not isinstance(envelope, dict):  # the same request gets the same shape: no retry
            raise FetchError(self.site.site_id, self.kind, f"{where}: reply is {json_type(envelope)}, not an object")
        code = str(envelope.get("code"))
        if code != str(self.settings.get("success_code", "0")):
            # the code only: the gateway's `msg` is the vendor's free text (docs/security.md)
            message = f"gateway code {vendor_code(envelope) or '(not a code)'}"
            if code in self.retryable_codes:
                raise Retryable(message)
            raise FetchError(self.site.site_id, self.kind, f"{where}: {message}")
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise Retryable(f"`data` is {json_type(data)}, not an object")
        if not isinstance(data.get("list"), list):
            raise Retryable(f"`data.list` is {json_type(data.get('list'))}, not a list")
        return data

    def _total(self, data: dict[str, Any], rows: int, where: str, first: bool) -> int | None:
        """The page's `total` as a count (required on the first page when it has rows); None when
        absent elsewhere or when the vendor's settings say it is not to be trusted."""
        raw = data.get("total")
        reliable = bool(self.settings.get("total_reliable", True))
        if raw is None or raw == "":
            if rows and reliable and first:
                raise FetchError(
                    self.site.site_id,
                    self.kind,
                    f"{where}: `total` is missing with {rows} rows, so a lost page could not be seen "
                    "(total_reliable: false in config/vendors/isc_openapi.yml if the gateway never sends it)",
                )
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise FetchError(self.site.site_id, self.kind, f"{where}: `total` is {json_type(raw)}, not a number")
        try:
            number = float(raw)
        except ValueError:
            raise FetchError(self.site.site_id, self.kind, f"{where}: `total` is not a number") from None
        if not number.is_integer() or number < 0:
            raise FetchError(self.site.site_id, self.kind, f"{where}: `total` is not a whole number >= 0")
        if not reliable:
            return None
        if number == 0 and rows:
            raise FetchError(
                self.site.site_id, self.kind, f"{where}: `total` is 0 with {rows} rows (lost-page check impossible)"
            )
        return int(number)

    def pages(self, unit: Unit) -> Iterator[list[dict[str, Any]]]:
        assert unit.start is not None and unit.end is not None
        body = {"startTime": unit.start.isoformat(), "endTime": unit.end.isoformat(), "pageSize": self.page_size}
        first_total: int | None = None
        previous: list[Any] = []
        distinct = 0
        page_no = 1
        while True:
            where = f"POST {self.base_path}{self.endpoint} window {unit.label} page {page_no}"
            data = self.retry.run(lambda p=page_no, w=where: self._post({**body, "pageNo": p}, w), where)
            rows = data["list"]
            total = self._total(data, len(rows), where, first=page_no == 1)  # each is checked, the first counts
            if page_no == 1:
                first_total = total
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
                f"POST {self.base_path}{self.endpoint} window {unit.label}: {distinct} distinct rows but the "
                f"gateway's total is {first_total} (lost page?)",
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
