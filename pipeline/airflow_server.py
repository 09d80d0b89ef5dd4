"""`make airflow`: a real Airflow 3 (`airflow standalone`: API server, scheduler, DAG processor,
triggerer) with the project's DAGs, SQLite metadata under <data>/airflow and LocalExecutor.

`[core] parallelism` is 4 (standalone starts one worker per slot; 2 cores here), the API
listens on 127.0.0.1 (port $SMARTCOMM_AIRFLOW_PORT or a free one), and the demo environment
applies: demo credentials, and a vendor simulator started on a free loopback port for the
DAGs to pull from. Login: `admin`, password generated once by Airflow's simple auth manager.

    python -m pipeline.airflow_server          # Ctrl-C stops Airflow and the simulator

`start_airflow()` is used by the slow end-to-end test (REST API, JWT auth).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from ingestion.registry import PROJECT_ROOT

ADMIN = "admin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def standalone_environment(env: dict[str, str], port: int) -> dict[str, str]:
    """The demo environment plus what a local standalone Airflow needs (stack.md)."""
    home = Path(env["AIRFLOW_HOME"])
    return {
        **env,
        # standalone starts its components as `airflow ...` subprocesses: the venv must be on PATH
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }


@dataclass
class RunningAirflow:
    url: str
    home: Path
    process: subprocess.Popen
    log_path: Path

    def password(self) -> str:
        generated = self.home / "simple_auth_manager_passwords.json.generated"
        return json.loads(generated.read_text(encoding="utf-8"))[ADMIN]

    def token(self) -> str:
        """A JWT for the public REST API (/api/v2)."""
        response = httpx.post(
            f"{self.url}/auth/token", json={"username": ADMIN, "password": self.password()}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v2", headers={"Authorization": f"Bearer {self.token()}"}, timeout=60
        )


@contextmanager
def start_airflow(env: dict[str, str], port: int | None = None, timeout_s: float = 600) -> Iterator[RunningAirflow]:
    """`airflow standalone` in its own process group; waits for /api/v2/monitor/health; stops the group on exit."""
    port = port or free_port()
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "standalone.log"
    airflow = str(Path(sys.executable).with_name("airflow"))
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [airflow, "standalone"],
            cwd=PROJECT_ROOT,
            env=standalone_environment(env, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # standalone ignores SIGINT: stop its whole group
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited ({process.returncode}), see {log_path}")
            try:
                health = httpx.get(f"{url}/api/v2/monitor/health", timeout=5).json()
                if (
                    health.get("scheduler", {}).get("status") == "healthy"
                    and (home / "simple_auth_manager_passwords.json.generated").exists()
                ):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"airflow did not become healthy in {timeout_s:.0f} s, see {log_path}")
            time.sleep(2)
        yield RunningAirflow(url, home, process, log_path)
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGTERM the process group we started, wait for all of it, then SIGKILL what is left."""
    pgid = process.pid  # start_new_session: the group id is the leader's pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(pgid, 0)  # anyone left in the group?
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()


def main() -> int:
    from ingestion.hardening import harden_process
    from ingestion.paths import data_paths

    harden_process()  # umask 077, inherited by every Airflow process and task it starts
    from pipeline.demo import console, default_window, demo_environment, ensure_airflow_db, running_simulator

    paths = data_paths()
    start, end = default_window()
    env = demo_environment(paths.root, end)
    ensure_airflow_db(env)
    port = int(os.environ.get("SMARTCOMM_AIRFLOW_PORT") or free_port())
    with running_simulator(env, start, end, paths.root / "logs" / "simulator.log") as simulator_url:
        env.update(SMARTCOMM_ISC_URL=simulator_url, SMARTCOMM_REST_URL=simulator_url)
        console.print(f"[green]✓[/green] simulator on {simulator_url}")
        console.print("starting airflow standalone (LocalExecutor, parallelism 4, SQLite) ...")
        with start_airflow(env, port) as airflow:
            console.print(f"[bold]Airflow:[/bold] {airflow.url}/  login [bold]{ADMIN}[/bold] / {airflow.password()}")
            console.print(
                f"DAGs start paused: unpause ingest_<site> and evaluate_district in the UI. Logs: {airflow.log_path}. "
                "Ctrl-C stops Airflow and the simulator."
            )
            try:
                while airflow.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                console.print("stopping ...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
