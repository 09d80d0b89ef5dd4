"""HTTP with a retry budget: timeouts on every call, exponential backoff, `Retry-After` honoured.

Vendors fail in ordinary ways (429, 5xx, slow replies, a connection reset mid-page, an
error code inside an HTTP 200). Transient failures are retried with exponential backoff and
jitter, waiting at least what `Retry-After` asks; when the budget is spent the caller gets a
FetchError naming the site, kind and the last cause, never a partial result.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

T = TypeVar("T")


class FetchError(RuntimeError):
    """A source could not be read within the retry budget (or answered with a permanent error)."""

    def __init__(self, site_id: str, kind: str, cause: str) -> None:
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
                raise FetchError(
                    self.site_id, self.kind, f"{what}: HTTP {exc.response.status_code} {exc.response.text[:200]}"
                ) from exc
            if attempt + 1 < self.policy.attempts:
                self.retries += 1
                self.policy.sleep(self.policy.delay(attempt, retry_after))
        raise FetchError(self.site_id, self.kind, f"{what}: gave up after {self.policy.attempts} attempts ({last})")


def new_client(base_url: str, policy: RetryPolicy) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(policy.timeout_s, connect=min(10.0, policy.timeout_s)),
        headers={"Accept": "application/json"},
    )
