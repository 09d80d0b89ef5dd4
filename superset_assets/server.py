"""Prepare and run Superset for the dashboards: `make serve` and the tests use the same steps.

Standard library only: it starts Superset's own environment (.venv-superset) as separate
processes and never imports superset, so the pipeline environment can call it.

    python -m superset_assets.server              # upgrade, init, import, users; serve on 127.0.0.1:8088
    python -m superset_assets.server --port 9000  # another port
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPERSET_VENV = PROJECT_ROOT / ".venv-superset"
CONFIG_PATH = PROJECT_ROOT / "superset_assets" / "superset_config.py"
DEFAULT_PORT = 8088


@dataclass
class SupersetInstance:
    """Where one Superset keeps its state, and the environment its processes run with."""

    data_dir: Path
    home: Path
    port: int = DEFAULT_PORT
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logins(self) -> dict[str, str]:
        return json.loads((self.home / "demo_logins.json").read_text())


def secret_key(home: Path) -> str:
    """SUPERSET_SECRET_KEY from the environment, else a local one generated once (demo only)."""
    if os.environ.get("SUPERSET_SECRET_KEY"):
        return os.environ["SUPERSET_SECRET_KEY"]
    path = home / "secret_key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def instance(data_dir: Path | None = None, home: Path | None = None, port: int = DEFAULT_PORT) -> SupersetInstance:
    data_dir = Path(data_dir or os.environ.get("SMARTCOMM_DATA_DIR") or PROJECT_ROOT / "data").resolve()
    home = Path(home or os.environ.get("SMARTCOMM_SUPERSET_HOME") or data_dir / "superset").resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SMARTCOMM_DATA_DIR": str(data_dir),
        "SMARTCOMM_SUPERSET_HOME": str(home),
        "SUPERSET_CONFIG_PATH": str(CONFIG_PATH),
        "SUPERSET_SECRET_KEY": secret_key(home),
        "FLASK_APP": "superset",
        "PYTHONPATH": str(PROJECT_ROOT),
        "DO_NOT_TRACK": "1",
        "SUPERSET_LOAD_EXAMPLES": "no",
    }
    env.pop("VIRTUAL_ENV", None)
    return SupersetInstance(data_dir=data_dir, home=home, port=port, env=env)


def _run(inst: SupersetInstance, args: list[str], log_name: str) -> None:
    log = inst.home / f"{log_name}.log"
    with open(log, "w") as handle:
        done = subprocess.run(args, env=inst.env, cwd=PROJECT_ROOT, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(args[:3])} failed (exit {done.returncode}); log {log}:\n{tail}")


def prepare_metadata(inst: SupersetInstance) -> None:
    """Metadata schema and built-in roles (needs no data: can run while the pipeline builds)."""
    superset = str(SUPERSET_VENV / "bin" / "superset")
    _run(inst, [superset, "db", "upgrade"], "db_upgrade")
    _run(inst, [superset, "init"], "init")


def import_assets(inst: SupersetInstance) -> None:
    """Our assets, roles, demo users and row-level security (idempotent)."""
    _run(inst, [str(SUPERSET_VENV / "bin" / "python"), "-m", "superset_assets.setup_superset", "--quiet"], "setup")


def prepare(inst: SupersetInstance) -> None:
    """Everything before the server starts: metadata, then assets, roles, users, RLS."""
    prepare_metadata(inst)
    import_assets(inst)


def gunicorn_command(inst: SupersetInstance, workers: int = 2) -> list[str]:
    """gunicorn as `make serve` and the tests run it. No control socket: gunicorn 27 puts one at
    ~/.gunicorn/gunicorn.ctl by default, and a second instance on the machine (the demo beside
    the tests) took it over and deleted it on exit."""
    return [
        str(SUPERSET_VENV / "bin" / "gunicorn"),
        "-w",
        str(workers),
        "-k",
        "gthread",
        "--threads",
        "4",
        "--timeout",
        "120",
        "-b",
        f"127.0.0.1:{inst.port}",
        "--no-control-socket",
        "superset.app:create_app()",
    ]


def start(inst: SupersetInstance, workers: int = 2, wait_s: float = 90.0) -> SupersetInstance:
    """Start gunicorn in its own process group and wait for /health."""
    log = open(inst.home / "gunicorn.log", "w")  # noqa: SIM115 (lives as long as the server)
    inst.process = subprocess.Popen(
        gunicorn_command(inst, workers),
        env=inst.env,
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if inst.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {inst.process.returncode}; see {inst.home / 'gunicorn.log'}")
        try:
            with urllib.request.urlopen(f"{inst.url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return inst
        except OSError:
            time.sleep(0.5)
    stop(inst)
    raise RuntimeError(f"Superset did not answer on {inst.url}/health within {wait_s:.0f}s")


def stop(inst: SupersetInstance) -> None:
    """Stop the gunicorn process group this instance started."""
    if inst.process is None or inst.process.poll() is not None:
        return
    os.killpg(inst.process.pid, signal.SIGTERM)
    try:
        inst.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(inst.process.pid, signal.SIGKILL)
        inst.process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Set up and serve the Superset dashboards. Example: python -m superset_assets.server --port 8088"
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("SMARTCOMM_SUPERSET_PORT", DEFAULT_PORT)))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prepare-only", action="store_true", help="set up, do not start the server")
    args = parser.parse_args(argv)
    inst = instance(port=args.port)
    serving = Path(inst.env.get("SMARTCOMM_SERVING_DB") or inst.data_dir / "warehouse" / "serving.duckdb")
    if not serving.exists():
        print(f"!! {serving} does not exist yet: dashboards stay empty until the pipeline publishes")
        print("   (python -m superset_assets.publish after dbt build)")
    print(f"==> preparing Superset metadata in {inst.home} (db upgrade, init, assets, roles, users)")
    prepare(inst)
    logins = inst.logins()
    print(f"==> Superset: {inst.url}/  (gunicorn, 127.0.0.1 only)")
    print("   demo logins (demo only, kept in", inst.home / "demo_logins.json", "):")
    for username, password in logins.items():
        print(f"     {username:<18} {password}")
    if args.prepare_only:
        return 0
    command = gunicorn_command(inst, args.workers)
    os.execve(command[0], command, inst.env)  # gunicorn replaces this process; Ctrl-C stops it


if __name__ == "__main__":
    sys.exit(main())
