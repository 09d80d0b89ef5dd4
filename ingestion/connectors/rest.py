"""Token-based REST platform: client-credentials token, cursor paging, 429 with Retry-After.

A 401 `invalid_token` (the token expired or was revoked mid-run) fetches a new token and
retries the same cursor, so no page is skipped or read twice; it counts as a retry.
A reply of the wrong shape (not an object, `data` not a list, a `next_cursor` that is not
text or repeats an earlier one, `has_more: true` without a cursor) fails naming endpoint,
window, page and field: paging on would skip pages or never end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

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
from ingestion.registry import RestConnection, Site


class TokenExpired(Retryable):
    pass


class RestConnector:
    def __init__(self, site: Site, kind: str, source: RestConnection, mapping: ShapeMapping, retry: RetryCounter):
        self.site = site
        self.kind = kind
        self.settings = mapping.settings
        self.page_size = min(source.page_size, int(self.settings.get("page_size", 1000)))
        self.retry = retry
        self.client_id = credential(site.site_id, kind, source.client_id_env)
        self.client_secret = credential(site.site_id, kind, source.client_secret_env)
        self.client = new_client(site.resolve(source.base_url).rstrip("/") + "/", retry)
        self.list_path = str(self.settings.get("list_path", "/api/v1/{kind}")).format(kind=kind).lstrip("/")
        self.token_path = str(self.settings.get("token_path", "/oauth/token")).lstrip("/")
        self._token: str | None = None

    def units(self, first_day: dt.date, last_day: dt.date) -> list[Unit]:
        windows = split_days(
            first_day,
            last_day,
            window_days=int(self.settings.get("window_days", 1)),
            max_days=int(self.settings.get("max_window_days", 31)),
        )
        return window_units(windows)

    def _fetch_token(self) -> str:
        response = self.client.post(
            self.token_path,
            data={"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret},
        )
        if response.status_code in (400, 401):
            raise FetchError(self.site.site_id, self.kind, f"token refused: {reply_status(response)}")
        check_status(response)
        try:
            token = orjson.loads(response.content)["access_token"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise Retryable(f"unreadable token reply ({exc})") from None
        return str(token)

    def _get(self, params: dict[str, Any], where: str) -> dict[str, Any]:
        if self._token is None:
            self._token = self._fetch_token()
        response = self.client.get(self.list_path, params=params, headers={"Authorization": f"Bearer {self._token}"})
        if response.status_code == 401:
            self._token = None  # expired or revoked: a new one on the next attempt, same cursor
            raise TokenExpired(reply_status(response), retry_after=0.0)
        if response.status_code in (400, 404):
            raise FetchError(self.site.site_id, self.kind, f"{where}: {reply_status(response)}")
        check_status(response)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise Retryable(f"unreadable JSON body ({exc})") from None
        if not isinstance(body, dict):  # the same request gets the same shape: no retry
            raise FetchError(self.site.site_id, self.kind, f"{where}: reply is {json_type(body)}, not an object")
        if body.get("error"):
            raise Retryable(f"error reply: code {vendor_code(body) or '(none)'}")
        if not isinstance(body.get("data"), list):
            raise Retryable(f"`data` is {json_type(body.get('data'))}, not a list")
        return body

    def pages(self, unit: Unit) -> Iterator[list[dict[str, Any]]]:
        assert unit.start is not None and unit.end is not None
        params: dict[str, Any] = {
            "start_time": int(unit.start.timestamp() * 1000),
            "end_time": int(unit.end.timestamp() * 1000),
            "limit": self.page_size,
        }
        page = 1
        seen: set[str] = set()
        while True:
            where = f"GET /{self.list_path} window {unit.label} page {page}"
            body = self.retry.run(lambda p=params, w=where: self._get(p, w), where)
            if body["data"]:
                yield body["data"]
            cursor = body.get("next_cursor")
            has_more = body.get("has_more")
            if cursor is not None and not isinstance(cursor, str):
                raise FetchError(self.site.site_id, self.kind, f"{where}: `next_cursor` is {json_type(cursor)}")
            if not cursor:
                if has_more is True:
                    raise FetchError(self.site.site_id, self.kind, f"{where}: `has_more` is true without `next_cursor`")
                break
            if has_more is False:
                break
            if cursor in seen:
                raise FetchError(
                    self.site.site_id,
                    self.kind,
                    f"{where}: `next_cursor` repeats an earlier one (paging would not end)",
                )
            seen.add(cursor)
            params = {"cursor": cursor}
            page += 1

    def close(self) -> None:
        self.client.close()

    def after_landing(self) -> None:
        pass
