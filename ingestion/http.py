"""HTTP with a retry budget: timeouts on every call, exponential backoff, `Retry-After` honoured.

Vendors fail in ordinary ways (429, 5xx, slow replies, a connection reset mid-page, an
error code inside an HTTP 200). Transient failures are retried with exponential backoff and
jitter, waiting at least what `Retry-After` asks; when the budget is spent the caller gets a
FetchError naming the site, kind and the last cause, never a partial result.

What a failure records (load audit, alerts, logs) is the HTTP status and the vendor's error
code (`reply_status`), never the reply body: a vendor's free text can echo anything,
personal data included, and the load audit is shown to officials. Every FetchError cause is
redacted as well (ingestion.pii.redact). Vendor URLs must be https://, except on loopback
(the simulator): an app secret or client secret never crosses a network in clear.
"""

from __future__ import annotations

import email.utils
import ipaddress
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson

from ingestion.pii import redact

T = TypeVar("T")


class FetchError(RuntimeError):
    """A source could not be read within the retry budget (or answered with a permanent error)."""

    def __init__(self, site_id: str, kind: str, cause: str) -> None:
        cause = redact(cause)
        super().__init__(f"site {site_id}, kind {kind}: {cause}")
        self.site_id = site_id
        self.kind = kind
        self.cause = cause


class NotDeliveredError(FetchError):
    """A file-drop source has not delivered some days yet: not an error of the data, a wait."""


class Retryable(Exception):
    """A transient failure worth another attempt; `retry_after` in seconds when the server said."""

    def __init__(self, cause: str, retry_after: float | None = None) -> None:
        super().__init__(cause)
        self.retry_after = retry_after


@dataclass
class RetryPolicy:
    attempts: int = 6
    backoff_base_s: float = 0.2
    backoff_max_s: float = 20.0
    retry_after_max_s: float = 120.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.backoff_max_s, self.backoff_base_s * (2**attempt)) * (0.5 + random.random() / 2)
        if retry_after is not None:
            return max(backoff, min(retry_after, self.retry_after_max_s))
        return backoff


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# Where vendors put their error code, and what a code looks like (a short token, never prose).
_CODE_FIELDS = ("code", "errorCode", "error_code", "errcode", "error")
_CODE_SHAPE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def vendor_code(body: Any) -> str | None:
    """The vendor's error code in a reply body (bytes or parsed), never its free text."""
    if isinstance(body, bytes | str):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(body, dict):
        return None
    for name in _CODE_FIELDS:
        value = body.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and _CODE_SHAPE.fullmatch(str(value)):
            return str(value)
    return None


def json_type(value: Any) -> str:
    """What a JSON value is ("a list", "null"), for messages that must not quote the value."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def reply_status(response: httpx.Response) -> str:
    """`HTTP 401 code 0x02401004`: what a failed reply may leave in records."""
    code = vendor_code(response.content)
    return f"HTTP {response.status_code}" + (f" code {code}" if code else "")


def check_status(response: httpx.Response) -> None:
    """Raise Retryable for 429/5xx, FetchError-worthy HTTPStatusError for other 4xx."""
    if response.status_code == 429 or response.status_code >= 500:
        raise Retryable(
            f"HTTP {response.status_code} from {response.request.url.path}",
            parse_retry_after(response.headers.get("Retry-After")),
        )
    response.raise_for_status()


class RetryCounter:
    """Calls `operation` until it succeeds or the budget is spent; counts retries for the audit."""

    def __init__(self, policy: RetryPolicy, site_id: str, kind: str) -> None:
        self.policy = policy
        self.site_id = site_id
        self.kind = kind
        self.retries = 0

    def run(self, operation: Callable[[], T], what: str) -> T:
        last = "no attempt made"
        for attempt in range(self.policy.attempts):
            try:
                return operation()
            except Retryable as exc:
                last = str(exc)
                retry_after = exc.retry_after
            except (httpx.TransportError, httpx.DecodingError) as exc:  # reset, timeout, refused, bad body
                last = f"{type(exc).__name__}: {exc}"
                retry_after = None
            except httpx.HTTPStatusError as exc:
                raise FetchError(self.site_id, self.kind, f"{what}: {reply_status(exc.response)}") from exc
            if attempt + 1 < self.policy.attempts:
                self.retries += 1
                self.policy.sleep(self.policy.delay(attempt, retry_after))
        raise FetchError(self.site_id, self.kind, f"{what}: gave up after {self.policy.attempts} attempts ({last})")


def is_loopback(host: str) -> bool:
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_secure_url(base_url: str, site_id: str, kind: str) -> None:
    """https:// for every vendor host; http:// only on loopback (127.0.0.0/8, ::1, localhost)."""
    url = httpx.URL(base_url)
    if url.scheme == "https" or (url.scheme == "http" and is_loopback(url.host)):
        return
    raise FetchError(
        site_id,
        kind,
        f"{url.scheme}:// is refused for vendor host {url.host or '(none)'}: credentials would cross the "
        "network in clear; use https:// (http:// is for loopback only, e.g. the simulator)",
    )


def new_client(base_url: str, retry: RetryCounter) -> httpx.Client:
    """An HTTP client for one site's vendor (the URL checked first, see require_secure_url)."""
    require_secure_url(base_url, retry.site_id, retry.kind)
    policy = retry.policy
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(policy.timeout_s, connect=min(10.0, policy.timeout_s)),
        headers={"Accept": "application/json"},
    )
