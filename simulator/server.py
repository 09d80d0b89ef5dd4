"""The HTTP server: every site's ISC-style and token-REST APIs on one loopback port, plus
the control API (`/_control/...`). Threaded, HTTP/1.1 keep-alive, one log line per request.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import math
import os
import secrets
import sys
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from simulator.encode import spec
from simulator.faults import REQUEST_FAULTS, FaultError, load_rules
from simulator.listing import Lister, local_seconds
from simulator.truth import truth
from simulator.world import World

CST = timezone(timedelta(hours=8))
ISC_AUTH_CODES = {"mismatch": "0x02401003", "key": "0x02401004", "replay": "0x02401005"}
NONCE_WINDOW_S = 900
ISC_MAX_PAGE = 1000
REST_MAX_LIMIT = 5000
REST_MAX_WINDOW_MS = 31 * 86400 * 1000


class Reply(Exception):
    """Raised inside a handler to answer at once."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    days_in_month = [
        31,
        29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ]
    return moment.replace(year=year, month=month, day=min(moment.day, days_in_month[month - 1]))


def isc_string_to_sign(method: str, headers: Any, signed: list[str], path: str, query: list[tuple[str, str]]) -> str:
    """The ISC gateway's string to sign (README "Signing")."""
    lines = [method.upper()]
    for name in ("Accept", "Content-MD5", "Content-Type", "Date"):
        value = headers.get(name)
        if value is not None:
            lines.append(value)
    for name in sorted(signed):
        lines.append(f"{name}:{headers.get(name) or ''}")
    resource = path
    if query:
        resource += "?" + "&".join(f"{k}={v}" if v != "" else k for k, v in sorted(query))
    lines.append(resource)
    return "\n".join(lines)


def isc_sign(secret: str, string_to_sign: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()).decode()


class SimulatorState:
    """Everything the request handlers share."""

    def __init__(
        self,
        world: World,
        drop_dir: Path | None,
        token_ttl: int,
        environ: dict[str, str] | None = None,
        cache_rows: int = 1_000_000,
    ) -> None:
        self.world = world
        self.lister = Lister(world, max_rows=cache_rows)
        self.drop_dir = drop_dir
        self.token_ttl = token_ttl
        self.environ = dict(os.environ if environ is None else environ)
        self.tokens: dict[str, float] = {}
        self.nonces: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.isc_paths = {path: kind for kind, path in spec()["isc_openapi"]["paths"].items()}
        self.quiet = False

    def env(self, name: str) -> str | None:
        return self.environ.get(name)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "SmartcommSimulator/1.0"
    state: SimulatorState

    # ---- plumbing -------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _body(self) -> bytes:
        return self._request_body

    def _send(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        fault: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        if fault == "slow":
            time.sleep(float((params or {}).get("delay_s", 2)))
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if fault == "reset_mid_body":
            self.wfile.write(payload[: max(1, len(payload) // 2)])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            self._log(status, len(payload) // 2, "reset_mid_body")
            return
        self.wfile.write(payload)
        self._log(status, len(payload), fault)

    def _log(self, status: int, size: int, fault: str | None) -> None:
        self.state.stats[f"{self.command} {urlsplit(self.path).path} {status}"] += 1
        if self.state.quiet:
            return
        elapsed = (time.perf_counter() - self._started) * 1000
        extra = f" fault={fault}" if fault else ""
        sys.stderr.write(
            f"{datetime.now().isoformat(timespec='milliseconds')} {self.command} {self.path} {status} {size}B {elapsed:.1f}ms{extra}\n"
        )

    def _dispatch(self) -> None:
        self._started = time.perf_counter()
        self._request_body = self._read_body()  # always drain it: keep-alive must stay in step
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        try:
            if parts[0] == "_control":
                self._control(parts[1:], url.query)
            elif parts[0] == "isc" and len(parts) > 2:
                self._isc(parts[1], "/" + "/".join(parts[2:]), url)
            elif parts[0] == "rest" and len(parts) > 2:
                self._rest(parts[1], parts[2:], url)
            else:
                raise Reply(404, {"error": "not_found", "path": url.path})
        except Reply as reply:
            self._send(reply.status, reply.body, reply.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the simulator: say so, keep serving
            self._send(500, {"error": "simulator_error", "detail": f"{type(exc).__name__}: {exc}"})
            raise

    do_GET = do_POST = do_DELETE = _dispatch

    def _site(self, site_id: str, shape: str, kind: str | None, not_found: Any) -> Any:
        try:
            site = self.state.world.site(site_id)
        except KeyError:
            raise Reply(404, not_found) from None
        if kind is not None:
            source = site.sources.get(kind)
            if source is None or source.shape != shape:
                raise Reply(404, not_found)
        return site

    def _request_fault(self, site_id: str, kind: str, page: int, shape: str) -> Any:
        allowed = REQUEST_FAULTS - ({"token_expired"} if shape == "isc_openapi" else {"total_drift"})
        return self.state.world.faults.take_request_fault(site_id, kind, page, allowed)

    def _early_fault(self, rule: Any, shape: str) -> None:
        """Faults that replace the reply entirely."""
        if rule is None:
            return
        if rule.fault == "rate_limit":
            retry = str(rule.params.get("retry_after", 1))
            body = (
                {"code": "0x00052001", "msg": "too many requests"}
                if shape == "isc_openapi"
                else {"error": "rate_limited"}
            )
            raise Reply(429, body, {"Retry-After": retry})
        if rule.fault == "server_error":
            status = int(rule.params.get("status", 503))
            raise Reply(status, b"server error")
        if rule.fault == "error_code":
            body = (
                {"code": "0x00052000", "msg": "system busy"}
                if shape == "isc_openapi"
                else {"error": "internal_error", "data": None}
            )
            raise Reply(200, body)

    # ---- ISC ------------------------------------------------------------------------------
    def _isc_verify(self, site: Any, path: str, query: list[tuple[str, str]], body: bytes, full_path: str) -> None:
        source = next((s for s in site.sources.values() if s.shape == "isc_openapi"), None)
        key_env = source.app_key_env if source else "SMARTCOMM_ISC_APP_KEY"
        secret_env = source.app_secret_env if source else "SMARTCOMM_ISC_APP_SECRET"
        app_key, app_secret = self.state.env(key_env), self.state.env(secret_env)
        headers = self.headers

        def refuse(code: str, msg: str) -> Reply:
            return Reply(401, {"code": ISC_AUTH_CODES[code], "msg": msg})

        if not app_key or not app_secret:
            raise refuse("key", f"simulator has no credentials: set {key_env} and {secret_env}")
        if headers.get("X-Ca-Key") != app_key:
            raise refuse("key", "unknown app key")
        signature = headers.get("X-Ca-Signature")
        signed = [h.strip().lower() for h in (headers.get("X-Ca-Signature-Headers") or "").split(",") if h.strip()]
        if not signature or "x-ca-key" not in signed:
            raise refuse("mismatch", "missing X-Ca-Signature or X-Ca-Signature-Headers (must include x-ca-key)")
        md5 = headers.get("Content-MD5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
            raise refuse("replay", "Content-MD5 does not match the body")
        stamp = headers.get("X-Ca-Timestamp")
        if stamp is not None:
            try:
                skew = abs(time.time() * 1000 - int(stamp)) / 1000
            except ValueError:
                raise refuse("replay", "X-Ca-Timestamp is not epoch milliseconds") from None
            if skew > NONCE_WINDOW_S:
                raise refuse("replay", "X-Ca-Timestamp is more than 15 minutes from the server clock")
        expected = [
            isc_sign(app_secret, isc_string_to_sign("POST", headers, signed, candidate, query))
            for candidate in (full_path, path)
        ]
        if not any(hmac.compare_digest(signature, e) for e in expected):
            raise refuse("mismatch", "signature mismatch")
        nonce = headers.get("X-Ca-Nonce")
        if nonce is not None:
            now = time.time()
            with self.state.lock:
                if len(self.state.nonces) > 100_000:
                    self.state.nonces = {n: t for n, t in self.state.nonces.items() if now - t < NONCE_WINDOW_S}
                seen = self.state.nonces.get(nonce)
                if seen is not None and now - seen < NONCE_WINDOW_S:
                    raise refuse("replay", "nonce already used")
                self.state.nonces[nonce] = now

    def _isc(self, site_id: str, path: str, url: Any) -> None:
        not_found = {"code": "0x00000404", "msg": "api not found"}
        kind = self.state.isc_paths.get(path)
        if kind is None or self.command != "POST":
            raise Reply(404, not_found)
        site = self._site(site_id, "isc_openapi", kind, not_found)
        body = self._body()
        self._isc_verify(site, path, parse_qsl(url.query, keep_blank_values=True), body, url.path)
        try:
            request = orjson.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError
        except ValueError:
            raise Reply(200, {"code": "0x00072001", "msg": "body is not a JSON object"}) from None

        def bad(msg: str, code: str = "0x00072001") -> Reply:
            return Reply(200, {"code": code, "msg": msg})

        page_no, page_size = request.get("pageNo", 1), request.get("pageSize", 20)
        if not isinstance(page_no, int) or page_no < 1:
            raise bad("pageNo must be an integer >= 1")
        if not isinstance(page_size, int) or not 1 <= page_size <= ISC_MAX_PAGE:
            raise bad("pageSize must be an integer in 1..1000")
        bounds = []
        for name in ("startTime", "endTime"):
            value = request.get(name)
            try:
                moment = datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                moment = None
            if moment is None:
                raise bad(f"{name} must be ISO 8601 with an offset, e.g. 2026-01-05T00:00:00+08:00")
            if moment.tzinfo is None:
                raise bad(f"{name} has no UTC offset")
            bounds.append(moment.astimezone(CST).replace(tzinfo=None))
        start, end = bounds
        if end < start or end > add_months(start, 3):
            raise bad("time window must be non-negative and at most 3 months", "0x00072002")
        rule = self._request_fault(site_id, kind, page_no, "isc_openapi")
        self._early_fault(rule, "isc_openapi")
        window = self.state.lister.window("isc_openapi", site_id, kind, _local_s(start), _local_s(end))
        offset = (page_no - 1) * page_size
        rows = window.slice(offset, page_size)
        total = window.total
        if rule is not None and rule.fault == "duplicate_rows" and offset > 0:
            repeat = int(rule.params.get("rows", 5))
            rows = window.slice(max(0, offset - repeat), min(repeat, offset)) + rows
        if rule is not None and rule.fault == "total_drift" and page_no > 1:
            total += int(rule.params.get("delta", 7))
        payload = b'{"code":"0","msg":"success","data":{"total":%d,"pageNo":%d,"pageSize":%d,"list":[%s]}}' % (
            total,
            page_no,
            page_size,
            b",".join(rows),
        )
        fault = rule.fault if rule is not None else None
        self._send(200, payload, fault=fault, params=rule.params if rule else None)

    # ---- token REST ----------------------------------------------------------------------
    def _rest(self, site_id: str, parts: list[str], url: Any) -> None:
        if parts == ["oauth", "token"] and self.command == "POST":
            self._rest_token(site_id)
            return
        if len(parts) != 3 or parts[:2] != ["api", "v1"] or self.command != "GET":
            raise Reply(404, {"error": "not_found"})
        kind = parts[2]
        self._site(
            site_id, "token_rest", kind, {"error": "not_found", "error_description": f"{kind} is not served here"}
        )
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        with self.state.lock:
            expiry = self.state.tokens.get(token)
        if expiry is None or expiry < time.time():
            raise Reply(
                401,
                {
                    "error": "invalid_token",
                    "error_description": "token expired" if expiry else "unknown or missing token",
                },
            )
        query = dict(parse_qsl(url.query))
        cursor = query.get("cursor")
        if cursor:
            try:
                state = orjson.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
                start_ms, end_ms, offset, limit, page = (int(state[k]) for k in ("s", "e", "o", "l", "p"))
            except (ValueError, KeyError, TypeError):
                raise Reply(400, {"error": "invalid_request", "error_description": "bad cursor"}) from None
        else:
            try:
                start_ms, end_ms = int(query["start_time"]), int(query["end_time"])
                limit = int(query.get("limit", 1000))
            except (KeyError, ValueError):
                raise Reply(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "start_time and end_time (epoch ms) are required; limit is an integer",
                    },
                ) from None
            if not 1 <= limit <= REST_MAX_LIMIT:
                raise Reply(400, {"error": "invalid_request", "error_description": "limit must be in 1..5000"})
            if end_ms < start_ms or end_ms - start_ms > REST_MAX_WINDOW_MS:
                raise Reply(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "window must be non-negative and at most 31 days",
                    },
                )
            offset, page = 0, 1
        rule = self._request_fault(site_id, kind, page, "token_rest")
        if rule is not None and rule.fault == "token_expired":
            with self.state.lock:
                self.state.tokens[token] = 0.0
            raise Reply(401, {"error": "invalid_token", "error_description": "token expired"})
        self._early_fault(rule, "token_rest")
        start_s = math.ceil(start_ms / 1000) + 8 * 3600
        end_s = math.ceil(end_ms / 1000) + 8 * 3600
        window = self.state.lister.window("token_rest", site_id, kind, start_s, end_s)
        rows = window.slice(offset, limit)
        if rule is not None and rule.fault == "duplicate_rows" and offset > 0:
            repeat = int(rule.params.get("rows", 5))
            rows = window.slice(max(0, offset - repeat), min(repeat, offset)) + rows
        next_offset = offset + limit
        if next_offset < window.total:
            state = {"s": start_ms, "e": end_ms, "o": next_offset, "l": limit, "p": page + 1}
            next_cursor = base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")
            tail = b'"%s","has_more":true}' % next_cursor.encode()
        else:
            tail = b'null,"has_more":false}'
        payload = b'{"data":[' + b",".join(rows) + b'],"next_cursor":' + tail
        self._send(200, payload, fault=rule.fault if rule else None, params=rule.params if rule else None)

    def _rest_token(self, site_id: str) -> None:
        site = self._site(site_id, "token_rest", None, {"error": "not_found"})
        source = next((s for s in site.sources.values() if s.shape == "token_rest"), None)
        if source is None:
            raise Reply(404, {"error": "not_found"})
        form = dict(parse_qsl(self._body().decode("utf-8", "replace")))
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
                form.setdefault("client_id", client_id)
                form.setdefault("client_secret", client_secret)
            except ValueError:
                pass
        if form.get("grant_type") != "client_credentials":
            raise Reply(400, {"error": "unsupported_grant_type"})
        want_id, want_secret = self.state.env(source.client_id_env), self.state.env(source.client_secret_env)
        if not want_id or form.get("client_id") != want_id or form.get("client_secret") != want_secret:
            raise Reply(401, {"error": "invalid_client"})
        token = secrets.token_hex(20)
        with self.state.lock:
            now = time.time()
            self.state.tokens = {t: e for t, e in self.state.tokens.items() if e > now}
            self.state.tokens[token] = now + self.state.token_ttl
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.state.token_ttl})

    # ---- control -------------------------------------------------------------------------
    def _control(self, parts: list[str], query: str) -> None:
        world = self.state.world
        what = parts[0] if parts else ""
        if what == "health":
            self._send(200, {"status": "ok", "seed": world.seed, "sites": [s.site_id for s in world.registry.sites]})
        elif what == "faults":
            if self.command == "POST":
                try:
                    raw = orjson.loads(self._body() or b"{}")
                    world.faults.add(load_rules(raw))
                except (ValueError, FaultError) as exc:
                    raise Reply(400, {"error": str(exc)}) from None
            elif self.command == "DELETE":
                world.faults.clear()
            self._send(200, {"faults": world.faults.rules()})
        elif what == "truth":
            q = dict(parse_qsl(query))
            try:
                result = truth(
                    world, q["site"], q["kind"], date.fromisoformat(q["start"]), date.fromisoformat(q["end"])
                )
            except (KeyError, ValueError) as exc:
                raise Reply(400, {"error": f"truth needs site, kind, start, end: {exc}"}) from None
            self._send(200, result)
        elif what == "drop-files" and self.command == "POST":
            from simulator.files import drop_files

            body = orjson.loads(self._body() or b"{}")
            try:
                paths = drop_files(
                    world,
                    date.fromisoformat(body["start"]),
                    date.fromisoformat(body["end"]),
                    site=body.get("site", "*"),
                    kind=body.get("kind", "*"),
                    drop_dir=self.state.drop_dir,
                )
            except (KeyError, ValueError) as exc:
                raise Reply(400, {"error": f"drop-files needs start and end: {exc}"}) from None
            self._send(200, {"files": [str(p) for p in paths]})
        elif what == "stats":
            self._send(200, dict(self.state.stats))
        else:
            raise Reply(404, {"error": "unknown control endpoint"})


def _local_s(moment: datetime) -> int:
    """Local naive datetime to local seconds since 1970-01-01, rounded up to the second."""
    base = local_seconds(moment.date()) + moment.hour * 3600 + moment.minute * 60 + moment.second
    return base + (1 if moment.microsecond else 0)


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def make_server(state: SimulatorState, port: int = 0, host: str = "127.0.0.1") -> SimulatorServer:
    handler = type("BoundHandler", (Handler,), {"state": state})
    return SimulatorServer((host, port), handler)
