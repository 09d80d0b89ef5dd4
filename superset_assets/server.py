"""Prepare and run Superset for the dashboards: `make serve` and the tests use the same steps.

Standard library only: it starts Superset's own environment (.venv-superset) as separate
processes and never imports superset, so the pipeline environment can call it.

    python -m superset_assets.server                 # upgrade, init, import, roles; serve on 127.0.0.1:8088
    python -m superset_assets.server --port 9000     # another port
    python -m superset_assets.server --create-admin  # outside the demo: create the first admin (asks)

Secrets live outside the data folder (issue 19: SQL Lab could read <data>/superset/secret_key
and demo_logins.json): in `secrets_dir`, `$SMARTCOMM_SUPERSET_SECRETS` or else
`~/.config/smartcomm/superset/<instance id>/` (mode 0700; the id is a random name kept in the
metadata folder, so a copied metadata folder finds its secrets). Outside demo mode
(SMARTCOMM_DEMO unset, core/demo.py) SUPERSET_SECRET_KEY must come from the environment and
no demo user exists.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from core.demo import DemoModeRequired, demo_mode

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPERSET_VENV = PROJECT_ROOT / ".venv-superset"
CONFIG_PATH = PROJECT_ROOT / "superset_assets" / "superset_config.py"
DEFAULT_PORT = 8088
LOGINS_FILE = "demo_logins.json"
SECRET_KEY_FILE = "secret_key"
INSTANCE_ID_FILE = "instance_id"


@dataclass
class SupersetInstance:
    """Where one Superset keeps its state and secrets, and the environment its processes run with."""

    data_dir: Path
    home: Path
    secrets: Path
    port: int = DEFAULT_PORT
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def logins_file(self) -> Path:
        return self.secrets / LOGINS_FILE

    def logins(self) -> dict[str, str]:
        """The demo users' passwords (demo mode only; empty when there are none)."""
        return json.loads(self.logins_file.read_text()) if self.logins_file.exists() else {}


def _private_dir(path: Path) -> Path:
    """A folder only this user reads: the metadata (password hashes) and the secrets."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def secrets_dir(home: Path, configured: Path | str | None = None) -> Path:
    """Where this instance's secret key and demo logins live: never under the metadata folder."""
    if configured or os.environ.get("SMARTCOMM_SUPERSET_SECRETS"):
        return _private_dir(Path(configured or os.environ["SMARTCOMM_SUPERSET_SECRETS"]).resolve())
    id_file = home / INSTANCE_ID_FILE
    if not id_file.exists():
        id_file.write_text(secrets.token_hex(8))
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "smartcomm" / "superset"
    return _private_dir(base / id_file.read_text().strip())


def _move_out_of_home(home: Path, secrets_path: Path) -> None:
    """Secrets an older `make serve` left in the metadata folder move to the secrets folder."""
    for name in (SECRET_KEY_FILE, LOGINS_FILE):
        old, new = home / name, secrets_path / name
        if old.exists():
            if not new.exists():
                shutil.copyfile(old, new)
                new.chmod(0o600)
            old.unlink()


def secret_key(secrets_path: Path) -> str:
    """SUPERSET_SECRET_KEY from the environment; in demo mode only, else a local one generated once."""
    if os.environ.get("SUPERSET_SECRET_KEY"):
        return os.environ["SUPERSET_SECRET_KEY"]
    if not demo_mode():
        raise DemoModeRequired(
            "SUPERSET_SECRET_KEY is not set: outside the demo, set it from your secret store "
            "(python3 -c 'import secrets; print(secrets.token_urlsafe(48))'), or set SMARTCOMM_DEMO=1 "
            "for a demo with a generated key (superset_assets/README.md)"
        )
    path = secrets_path / SECRET_KEY_FILE
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def instance(
    data_dir: Path | None = None,
    home: Path | None = None,
    port: int = DEFAULT_PORT,
    secrets_path: Path | None = None,
) -> SupersetInstance:
    """An instance's folders and environment. Outside demo mode it needs SUPERSET_SECRET_KEY."""
    data_dir = Path(data_dir or os.environ.get("SMARTCOMM_DATA_DIR") or PROJECT_ROOT / "data").resolve()
    home = _private_dir(Path(home or os.environ.get("SMARTCOMM_SUPERSET_HOME") or data_dir / "superset").resolve())
    secrets_path = secrets_dir(home, secrets_path)
    if secrets_path.is_relative_to(data_dir) or secrets_path.is_relative_to(home):
        raise ValueError(f"the secrets folder {secrets_path} must lie outside {data_dir} and {home}")
    _move_out_of_home(home, secrets_path)
    env = {
        **os.environ,
        "SMARTCOMM_DATA_DIR": str(data_dir),
        "SMARTCOMM_SUPERSET_HOME": str(home),
        "SMARTCOMM_SUPERSET_SECRETS": str(secrets_path),
        "SUPERSET_CONFIG_PATH": str(CONFIG_PATH),
        "SUPERSET_SECRET_KEY": secret_key(secrets_path),
        "FLASK_APP": "superset",
        "PYTHONPATH": str(PROJECT_ROOT),
        "DO_NOT_TRACK": "1",
        "SUPERSET_LOAD_EXAMPLES": "no",
    }
    env.pop("VIRTUAL_ENV", None)
    return SupersetInstance(data_dir=data_dir, home=home, secrets=secrets_path, port=port, env=env)


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
    """Our assets, roles, demo users (demo mode) and row-level security (idempotent). Fails,
    so `make serve` does not start, when a serving dataset with street_id or site_id lacks a
    street role's row-level filter (setup_superset.check_street_filters)."""
    _run(inst, [str(SUPERSET_VENV / "bin" / "python"), "-m", "superset_assets.setup_superset", "--quiet"], "setup")


def prepare(inst: SupersetInstance) -> None:
    """Everything before the server starts: metadata, then assets, roles, users, RLS."""
    prepare_metadata(inst)
    import_assets(inst)


def create_admin_command(inst: SupersetInstance) -> list[str]:
    """Superset's own command for the first admin, with this instance's configuration; it asks
    for the name, e-mail and password."""
    return [str(SUPERSET_VENV / "bin" / "superset"), "fab", "create-admin"]


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


def _print_logins(inst: SupersetInstance) -> None:
    if not demo_mode():
        print("   no demo users outside demo mode. The first admin, once (it asks for a password):")
        print("     python -m superset_assets.server --create-admin")
        print("   (superset fab create-admin with this instance's SUPERSET_CONFIG_PATH and secret key;")
        print("   superset_assets/README.md, 'Outside the demo')")
        return
    print("   demo logins (demo only, kept in", inst.logins_file, "):")
    for username, password in inst.logins().items():
        print(f"     {username:<18} {password}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Set up and serve the Superset dashboards. Example: python -m superset_assets.server --port 8088"
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("SMARTCOMM_SUPERSET_PORT", DEFAULT_PORT)))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prepare-only", action="store_true", help="set up, do not start the server")
    parser.add_argument(
        "--create-admin", action="store_true", help="create an admin user (asks for the details), then exit"
    )
    args = parser.parse_args(argv)
    try:
        inst = instance(port=args.port)
    except DemoModeRequired as refused:
        print(f"!! {refused}", file=sys.stderr)
        return 2
    if args.create_admin:
        prepare_metadata(inst)
        return subprocess.run(create_admin_command(inst), env=inst.env, cwd=PROJECT_ROOT).returncode
    serving = Path(inst.env.get("SMARTCOMM_SERVING_DB") or inst.data_dir / "warehouse" / "serving.duckdb")
    if not serving.exists():
        print(f"!! {serving} does not exist yet: dashboards stay empty until the pipeline publishes")
        print("   (python -m superset_assets.publish after dbt build)")
    mode = "demo mode" if demo_mode() else "production mode (SMARTCOMM_DEMO is not 1)"
    print(f"==> preparing Superset metadata in {inst.home} (db upgrade, init, assets, roles; {mode})")
    try:
        prepare(inst)
    except RuntimeError as failed:
        print(f"!! Superset not started: {failed}", file=sys.stderr)
        return 1
    print(f"==> Superset: {inst.url}/  (gunicorn, 127.0.0.1 only)")
    _print_logins(inst)
    if args.prepare_only:
        return 0
    command = gunicorn_command(inst, args.workers)
    os.execve(command[0], command, inst.env)  # gunicorn replaces this process; Ctrl-C stops it


if __name__ == "__main__":
    sys.exit(main())
