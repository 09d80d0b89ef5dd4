"""One real Superset per test session: SQLite metadata in a temp dir, gunicorn on a free port.

The serving database is built the way the pipeline builds it, from simulator data through
ingestion, dbt, Great Expectations and the publish step (bench/dashboards_data.py).

A pytest plugin, not a conftest: tests/superset and tests/security register it (their
conftest.py), so both use the same session fixtures and one Superset in a run of both.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from bench.dashboards_data import PipelineData, build_serving, month_range
from superset_assets import server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "superset"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Two local months of all ten sites (registry scaled x0.1, as the dbt tests do): enough
# for a trend and a "latest month", quick enough for `make test`.
FIRST_MONTH = dt.date(2026, 1, 1)
MONTHS = 2


@dataclass
class ServingData:
    pipeline: PipelineData

    @property
    def data_dir(self) -> Path:
        return self.pipeline.paths.root

    @property
    def warehouse(self) -> Path:
        return self.pipeline.paths.warehouse_db

    @property
    def serving(self) -> Path:
        return self.pipeline.serving

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.serving), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def republish(self) -> None:
        self.pipeline.republish()


@dataclass
class PreparingSuperset:
    """A Superset instance whose metadata (db upgrade, init) is set up in the background."""

    instance: server.SupersetInstance
    thread: threading.Thread
    errors: list[BaseException]

    def wait(self) -> server.SupersetInstance:
        self.thread.join()
        if self.errors:
            raise self.errors[0]
        return self.instance


@pytest.fixture(scope="session")
def superset_metadata(tmp_path_factory: pytest.TempPathFactory) -> PreparingSuperset:
    """Start `superset db upgrade` + `init` now, in parallel with building the serving data."""
    os.environ.pop("SUPERSET_SECRET_KEY", None)
    inst = server.instance(
        data_dir=tmp_path_factory.mktemp("superset_unused"),
        home=tmp_path_factory.mktemp("superset_home"),
        port=free_port(),
        secrets_path=tmp_path_factory.mktemp("superset_secrets"),
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.prepare_metadata(inst)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="superset-metadata", daemon=True)
    thread.start()
    return PreparingSuperset(inst, thread, errors)


@pytest.fixture(scope="session")
def serving_data(tmp_path_factory: pytest.TempPathFactory, superset_metadata: PreparingSuperset) -> ServingData:
    """Simulator -> landing (+ a real HTTP pull for the audit) -> dbt build -> GX -> publish."""
    first, last = month_range(FIRST_MONTH, MONTHS)
    return ServingData(build_serving(tmp_path_factory.mktemp("superset_data"), first, last))


def login(http: httpx.Client, username: str, password: str, tries: int = 5) -> httpx.Response:
    """POST /api/v1/security/login; waits out the login rate limit (429: several logins a second
    from one address, superset_config.py AUTH_RATE_LIMIT) as a client would."""
    body = {"username": username, "password": password, "provider": "db", "refresh": False}
    for _ in range(tries - 1):
        reply = http.post("/api/v1/security/login", json=body)
        if reply.status_code != 429:
            return reply
        time.sleep(1.1)
    return http.post("/api/v1/security/login", json=body)


class Client:
    """A logged-in REST client (JWT from /api/v1/security/login plus the CSRF token)."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=120)
        reply = login(self.http, username, password)
        reply.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
        csrf = self.http.get("/api/v1/security/csrf_token/")
        csrf.raise_for_status()
        self.http.headers["X-CSRFToken"] = csrf.json()["result"]
        self.http.headers["Referer"] = base_url

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.http.post(path, **kwargs)

    def charts(self) -> list[dict]:
        reply = self.get("/api/v1/chart/", params={"q": "(page_size:100)"})
        reply.raise_for_status()
        return reply.json()["result"]

    def dashboards(self) -> list[dict]:
        reply = self.get("/api/v1/dashboard/", params={"q": "(page_size:100)"})
        reply.raise_for_status()
        return reply.json()["result"]

    def chart_data(self, chart_id: int, force: bool = False) -> httpx.Response:
        return self.get(f"/api/v1/chart/{chart_id}/data/", params={"force": "true"} if force else None)


@dataclass
class RunningSuperset:
    instance: server.SupersetInstance
    serving: ServingData

    @property
    def url(self) -> str:
        return self.instance.url

    def client(self, username: str) -> Client:
        return Client(self.url, username, self.instance.logins()[username])

    def usernames(self, prefix: str = "") -> list[str]:
        """The demo users (one per role, and one per street: street_<id>)."""
        return sorted(name for name in self.instance.logins() if name.startswith(prefix))

    def database_id(self, client: Client, name: str = "serving") -> int:
        reply = client.get("/api/v1/database/")
        reply.raise_for_status()
        return next(d["id"] for d in reply.json()["result"] if d["database_name"] == name)

    def run_superset(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """A command of Superset's environment (`superset ...` or `python ...`) with this instance's
        configuration, as `make serve` runs it."""
        return subprocess.run(
            [str(server.SUPERSET_VENV / "bin" / args[0]), *args[1:]],
            env={**self.instance.env, **(env or {})},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="session")
def superset(serving_data: ServingData, superset_metadata: PreparingSuperset) -> Iterator[RunningSuperset]:
    inst = superset_metadata.wait()
    inst.data_dir = serving_data.data_dir
    inst.env["SMARTCOMM_DATA_DIR"] = str(serving_data.data_dir)
    inst.env["SMARTCOMM_SERVING_DB"] = str(serving_data.serving)
    server.import_assets(inst)
    server.start(inst)
    try:
        yield RunningSuperset(inst, serving_data)
    finally:
        server.stop(inst)


@pytest.fixture(scope="session")
def admin(superset: RunningSuperset) -> Client:
    return superset.client("admin")
