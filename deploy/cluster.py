"""The local scale-out stack on loopback: Spark standalone + Thrift server, Redis, Airflow on Celery.

    python -m deploy.cluster up [--only spark|airflow]   # start (what is already running is kept)
    python -m deploy.cluster down                        # stop everything this state dir started
    python -m deploy.cluster status                      # one line per service
    python -m deploy.cluster env                         # the settings, resolved (KEY=value)

`make cluster-up` / `make cluster-down` call these. Every setting comes from
`deploy/cluster.env`, overridden by the environment (tests bind free ports and a temp
state dir that way). Each service runs in its own process group, its pid in
`<state>/run/<name>.pid` and its output in `<state>/logs/<name>.log`; `down` stops those
process groups and nothing else.

Why a Python script and not a compose file: the machines have no container runtime, and
the same script is what the scale tests start, so the stack under test is the documented one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.demo import read_env_file

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILE = PROJECT_ROOT / "deploy" / "cluster.env"
GROUPS = ("spark", "airflow")


class ClusterError(RuntimeError):
    """A service did not start; the message names its log file."""


@dataclass(frozen=True)
class Settings:
    """deploy/cluster.env with the environment's overrides, and the paths derived from it."""

    values: Mapping[str, str]

    @classmethod
    def load(cls, overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        values = read_env_file(SETTINGS_FILE)
        environ = os.environ if environ is None else environ
        values.update({key: environ[key] for key in values if key in environ})
        values.update(overrides or {})
        return cls(values)

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def path(self, key: str) -> Path:
        path = Path(self.values[key])
        return path if path.is_absolute() else PROJECT_ROOT / path

    def port(self, key: str) -> int:
        return int(self.values[key])

    @property
    def state(self) -> Path:
        return self.path("SMARTCOMM_CLUSTER_DIR")

    @property
    def spark_master_url(self) -> str:
        return f"spark://127.0.0.1:{self['SPARK_MASTER_PORT']}"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self['AIRFLOW_API_PORT']}"

    def jwt_secret(self) -> str:
        """One secret shared by the API server and every worker (generated once, kept in the state dir)."""
        path = self.state / "airflow" / "jwt_secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(64), encoding="utf-8")
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()

    def airflow_environment(self) -> dict[str, str]:
        """What every Airflow process (and the tasks it runs) needs, beyond the caller's environment."""
        home = self.state / "airflow"
        secrets_file = self.values.get("SMARTCOMM_ENV_FILE")
        env = {
            key: value
            for key, value in (read_env_file(self.path("SMARTCOMM_ENV_FILE")) if secrets_file else {}).items()
            if key not in os.environ
        }
        env.update({key: value for key, value in self.values.items() if key.startswith("AIRFLOW__")})
        env.update(
            AIRFLOW_HOME=str(home),
            SMARTCOMM_DATA_DIR=str(self.path("SMARTCOMM_DATA_DIR")),
            PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
            DO_NOT_TRACK="1",
            GX_ANALYTICS_ENABLED="false",
            AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
            AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
            AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            AIRFLOW__CORE__HOSTNAME_CALLABLE="deploy.hostname.hostname",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.airflow_url}/execution/",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
            AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:{self['REDIS_PORT']}/0",
            AIRFLOW__CELERY__RESULT_BACKEND=f"db+sqlite:///{home / 'celery_results.db'}",
            AIRFLOW__CELERY__WORKER_CONCURRENCY=self["AIRFLOW_WORKER_CONCURRENCY"],
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=self["AIRFLOW_API_PORT"],
            AIRFLOW__API__BASE_URL=self.airflow_url,
            AIRFLOW__API_AUTH__JWT_SECRET=self.jwt_secret(),
            AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
            AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="5",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        )
        return env

    def admin_password(self) -> str:
        """The API server's generated admin password (simple auth manager)."""
        import json

        return json.loads((self.state / "airflow" / "passwords.json").read_text(encoding="utf-8"))["admin"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_settings(state: Path, data_dir: Path, spark_schema: str = "smartcomm") -> Settings:
    """deploy/cluster.env with every port free and all state under `state`: a stack of its own
    beside any other (the scale tests and bench/spark.py start theirs this way)."""
    ports = [
        "SPARK_MASTER_PORT", "SPARK_MASTER_WEBUI_PORT", "SPARK_WORKER_WEBUI_PORT", "SMARTCOMM_SPARK_PORT",
        "REDIS_PORT", "AIRFLOW_API_PORT", "AIRFLOW_WORKER_LOG_PORT_BASE",
    ]  # fmt: skip
    overrides = {name: str(free_port()) for name in ports}
    overrides.update(
        SMARTCOMM_CLUSTER_DIR=str(state), SMARTCOMM_DATA_DIR=str(data_dir), SMARTCOMM_SPARK_SCHEMA=spark_schema
    )
    return Settings.load(overrides)


@dataclass
class Service:
    name: str
    group: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 120.0


def _port_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    return check


def _http_ok(url: str, accept: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return accept(httpx.get(url, timeout=2.0))
        except httpx.HTTPError:
            return False

    return check


def _spark_workers_alive(settings: Settings) -> Callable[[], bool]:
    url = f"http://127.0.0.1:{settings['SPARK_MASTER_WEBUI_PORT']}/json/"
    return _http_ok(url, lambda r: r.status_code == 200 and r.json().get("aliveworkers", 0) >= 1)


def spark_services(settings: Settings) -> list[Service]:
    """Standalone master and one worker from the pyspark package, and the Thrift server on them."""
    home = settings.path("SMARTCOMM_SPARK_HOME")
    state = settings.state / "spark"
    if not (home / "bin" / "spark-class").exists():
        raise ClusterError(f"no Spark at {home}: run `make cluster-up` (it builds .venv-spark) first")
    env = {
        "SPARK_HOME": str(home),
        "SPARK_CONF_DIR": str(state / "conf"),
        "SPARK_LOG_DIR": str(state / "logs"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(state / "tmp"),
        "SPARK_WORKER_DIR": str(state / "work"),
        "SPARK_DAEMON_MEMORY": settings["SPARK_DAEMON_MEMORY"],
        "SPARK_NO_DAEMONIZE": "1",
        "PYSPARK_PYTHON": sys.executable,
    }
    spark_class = str(home / "bin" / "spark-class")
    metastore = f"jdbc:derby:;databaseName={state / 'metastore_db'};create=true"
    conf = {
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": settings["SPARK_SHUFFLE_PARTITIONS"],
        "spark.sql.warehouse.dir": str(state / "warehouse"),
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # dbt opens a Thrift session per model; one shared Spark session keeps the catalog's
        # cache of resolved tables, so a landing table's site=/date= directories are listed
        # once per run and not again by every model that reads it.
        "spark.sql.hive.thriftServer.singleSession": settings["SPARK_THRIFT_SINGLE_SESSION"],
        "spark.sql.sources.parallelPartitionDiscovery.threshold": settings["SPARK_PARALLEL_LISTING_THRESHOLD"],
        "spark.hadoop.javax.jdo.option.ConnectionURL": metastore,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={state} -Djava.io.tmpdir={state / 'tmp'}",
        "spark.executor.extraJavaOptions": f"-Djava.io.tmpdir={state / 'tmp'}",
        "spark.executor.memory": settings["SPARK_EXECUTOR_MEMORY"],
        "spark.cores.max": settings["SPARK_WORKER_CORES"],
    }
    thrift = [
        str(home / "bin" / "spark-submit"),
        "--master", settings.spark_master_url,
        "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
        "--name", "smartcomm-thrift",
        "--driver-memory", settings["SPARK_DRIVER_MEMORY"],
        *[arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")],
        "--hiveconf", f"hive.server2.thrift.port={settings['SMARTCOMM_SPARK_PORT']}",
        "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1",
        "spark-internal",
    ]  # fmt: skip
    return [
        Service(
            "spark-master",
            "spark",
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                settings["SPARK_MASTER_PORT"],
                "--webui-port",
                settings["SPARK_MASTER_WEBUI_PORT"],
            ],
            env,
            _http_ok(f"http://127.0.0.1:{settings['SPARK_MASTER_WEBUI_PORT']}/json/"),
        ),
        Service(
            "spark-worker",
            "spark",
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--cores",
                settings["SPARK_WORKER_CORES"],
                "--memory",
                settings["SPARK_WORKER_MEMORY"],
                "--webui-port",
                settings["SPARK_WORKER_WEBUI_PORT"],
                "--work-dir",
                str(state / "work"),
                settings.spark_master_url,
            ],
            env,
            _spark_workers_alive(settings),
        ),
        # spark-class launches the Thrift server as a daemon: its heap is SPARK_DAEMON_MEMORY.
        Service(
            "spark-thrift",
            "spark",
            thrift,
            {**env, "SPARK_DAEMON_MEMORY": settings["SPARK_DRIVER_MEMORY"]},
            _port_open(settings.port("SMARTCOMM_SPARK_PORT")),
            240.0,
        ),
    ]


def airflow_services(settings: Settings) -> list[Service]:
    """Redis, then the Airflow API server, scheduler, DAG processor and the Celery workers."""
    redis = shutil.which("redis-server")
    if redis is None:
        raise ClusterError("redis-server is not installed: `make cluster-up` installs requirements/debian-scale.txt")
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = settings.airflow_environment()
    services = [
        Service(
            "redis",
            "airflow",
            [
                redis,
                "--port",
                settings["REDIS_PORT"],
                "--bind",
                "127.0.0.1",
                "--dir",
                str(settings.state / "redis"),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            {},
            _port_open(settings.port("REDIS_PORT")),
        ),
        Service(
            "airflow-api-server",
            "airflow",
            [airflow, "api-server", "--host", "127.0.0.1", "--port", settings["AIRFLOW_API_PORT"], "--workers", "1"],
            env,
            _http_ok(f"{settings.airflow_url}/api/v2/monitor/health"),
        ),
        Service("airflow-scheduler", "airflow", [airflow, "scheduler"], env),
        Service("airflow-dag-processor", "airflow", [airflow, "dag-processor"], env),
    ]
    base_port = settings.port("AIRFLOW_WORKER_LOG_PORT_BASE")
    for number in range(1, int(settings["AIRFLOW_WORKERS"]) + 1):
        name = f"worker-{number}"
        worker_env = {
            **env,
            "SMARTCOMM_WORKER_NAME": name,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(base_port + number),
        }
        services.append(
            Service(
                f"airflow-{name}",
                "airflow",
                [
                    airflow,
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"{name}@%h",
                    "--concurrency",
                    settings["AIRFLOW_WORKER_CONCURRENCY"],
                ],
                worker_env,
                _port_open(base_port + number),
            )
        )
    return services


def services(settings: Settings, groups: Iterable[str] = GROUPS) -> list[Service]:
    wanted = set(groups)
    found: list[Service] = []
    if "spark" in wanted:
        found += spark_services(settings)
    if "airflow" in wanted:
        found += airflow_services(settings)
    return found


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.state / "run" / f"{name}.pid"


def running_pid(settings: Settings, name: str) -> int | None:
    """The pid recorded for a service, if that process is still alive."""
    path = _pid_file(settings, name)
    if not path.exists():
        return None
    pid = int(path.read_text().strip())
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our exited child: a zombie would look alive."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _prepare_state(settings: Settings) -> None:
    for sub in ("run", "logs", "redis", "airflow", "spark/conf", "spark/logs", "spark/tmp", "spark/work"):
        (settings.state / sub).mkdir(parents=True, exist_ok=True)


def _init_airflow(settings: Settings) -> None:
    """Create or migrate the metadata DB once (SQLite under the state dir)."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {**os.environ, **settings.airflow_environment()}
    log = settings.state / "logs" / "airflow-db-migrate.log"
    with open(log, "w", encoding="utf-8") as out:
        result = subprocess.run(
            [airflow, "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=settings.state
        )
    if result.returncode != 0:
        raise ClusterError(f"airflow db migrate failed, see {log}")


def start(settings: Settings, service: Service) -> int:
    """Start one service in its own process group (unless already running) and wait until ready."""
    pid = running_pid(settings, service.name)
    process = None
    if pid is None:
        log = settings.state / "logs" / f"{service.name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                service.argv,
                env={**os.environ, **service.env},
                cwd=settings.state,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        pid = process.pid
        _pid_file(settings, service.name).write_text(str(pid))
    if service.ready is not None:
        deadline = time.monotonic() + service.ready_timeout_s
        while not service.ready():
            if (process.poll() is not None) if process else running_pid(settings, service.name) is None:
                raise ClusterError(f"{service.name} exited, see {settings.state / 'logs' / (service.name + '.log')}")
            if time.monotonic() > deadline:
                raise ClusterError(f"{service.name} not ready after {service.ready_timeout_s:.0f} s")
            time.sleep(0.5)
    return pid


def up(settings: Settings, groups: Iterable[str] = GROUPS) -> list[str]:
    """Start the groups' services in order; return one status line each."""
    from ingestion.hardening import harden_process

    harden_process()  # umask 077 for every service and task (warehouse, serving, logs) started below
    _prepare_state(settings)
    groups = [group for group in GROUPS if group in set(groups)]
    lines = []
    for group in groups:
        if group == "airflow":
            _init_airflow(settings)
        for service in services(settings, [group]):
            started = time.perf_counter()
            pid = start(settings, service)
            lines.append(f"{service.name:24} pid {pid:<8} ready in {time.perf_counter() - started:5.1f} s")
    return lines


def stop(settings: Settings, name: str, timeout_s: float = 30.0) -> bool:
    """SIGTERM the service's process group, SIGKILL what is left after `timeout_s`."""
    pid = running_pid(settings, name)
    _pid_file(settings, name).unlink(missing_ok=True)
    if pid is None:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            _reap(pid)
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
    return True


def down(settings: Settings) -> list[str]:
    """Stop every service this state dir recorded, workers first."""
    run_dir = settings.state / "run"
    if not run_dir.exists():
        return []
    known = [service for group in reversed(GROUPS) for service in _service_names(group, settings)]
    recorded = sorted(path.stem for path in run_dir.glob("*.pid"))
    names = [name for name in known if name in recorded] + [name for name in recorded if name not in known]
    return [f"{name:24} stopped" for name in names if stop(settings, name)]


def _service_names(group: str, settings: Settings) -> list[str]:
    names = {
        "spark": ["spark-thrift", "spark-worker", "spark-master"],
        "airflow": [f"airflow-worker-{n}" for n in range(int(settings["AIRFLOW_WORKERS"]), 0, -1)]
        + ["airflow-dag-processor", "airflow-scheduler", "airflow-api-server", "redis"],
    }
    return names[group]


def status(settings: Settings) -> list[str]:
    lines = []
    for group in GROUPS:
        for name in reversed(_service_names(group, settings)):
            pid = running_pid(settings, name)
            lines.append(f"{name:24} {'running, pid ' + str(pid) if pid else 'stopped'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Start/stop the local Spark + Celery stack. Example: python -m deploy.cluster up --only spark"
    )
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("--only", choices=GROUPS, action="append", help="spark or airflow (default: both)")
    args = parser.parse_args(argv)
    settings = Settings.load()
    try:
        if args.command == "up":
            lines = up(settings, args.only or GROUPS)
            lines += [f"dbt: --target spark (thrift 127.0.0.1:{settings['SMARTCOMM_SPARK_PORT']})"]
            if "airflow" in (args.only or GROUPS):
                lines += [
                    f"Airflow UI/API: {settings.airflow_url} (admin, password in {settings.state}/airflow/passwords.json)"
                ]
        elif args.command == "down":
            lines = down(settings) or ["nothing was running"]
        elif args.command == "status":
            lines = status(settings)
        else:
            lines = [f"{key}={value}" for key, value in settings.values.items()]
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
