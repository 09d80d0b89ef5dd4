"""Build and verify the project's locked virtual environments (what `make setup` runs).

Standard library only: the machine's python3 runs it before any environment exists. It
never installs into the interpreter that runs it, nor into any interpreter outside the
project: every uv command names its target with `--python`, and that target must be a
virtual environment inside the project. (`python3 -m uv pip sync` without `--python`
installs into the interpreter that launched uv, whatever VIRTUAL_ENV says: on a machine
without `uv` on PATH both locks once went into the system Python and left the project's
environments empty.)

An environment's stamp (`.make/<name>.ok`) is written only after the environment has
proved itself: every locked package installed at its locked version with all its files,
its main modules importing, and DuckDB at the version both locks pin. A build that fails
or is interrupted leaves no stamp, so the next `make` builds again, and a build repairs
what it finds broken (missing packages by syncing, damaged ones by reinstalling them).

    python3 requirements/environments.py build pipeline   # .venv from pipeline.lock.txt
    python3 requirements/environments.py build superset   # .venv-superset
    python3 requirements/environments.py verify pipeline  # check only; exit 1 saying what is wrong
    python3 requirements/environments.py uv               # print the uv binary used (installs one if none)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMPS = ROOT / ".make"
# Where `make setup` installs uv when the machine has none (pip --target: a folder of the
# project's, never the system interpreter's site-packages).
UV_HOME = STAMPS / "uv"
UV_REQUIREMENT = ROOT / "requirements" / "uv.txt"
# The locks whose DuckDB pins must agree: both environments open the same database files.
DUCKDB_LOCKS = ("pipeline.lock.txt", "superset.lock.txt")


@dataclass(frozen=True)
class Environment:
    """One locked environment: where it lives, its lock, and the modules that prove it works."""

    name: str
    folder: str
    lock: str
    imports: tuple[str, ...]
    compile_bytecode: bool = True
    duckdb: bool = True  # holds DuckDB at the pinned version

    @property
    def path(self) -> Path:
        return ROOT / self.folder

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def lock_path(self) -> Path:
        return ROOT / "requirements" / self.lock

    @property
    def stamp(self) -> Path:
        return STAMPS / f"{self.name}.ok"


ENVIRONMENTS = {
    env.name: env
    for env in (
        Environment(
            "pipeline",
            ".venv",
            "pipeline.lock.txt",
            imports=(
                "airflow.sdk",
                "dbt.cli.main",
                "great_expectations",
                "duckdb",
                "core.demo",
                "ingestion.registry",
                "pipeline.steps",
                "expectations",
                "reporting",
                "simulator",
            ),
        ),
        Environment(
            "superset",
            ".venv-superset",
            "superset.lock.txt",
            imports=("superset.app", "duckdb_engine", "duckdb", "core.demo", "superset_assets.serving_connection"),
        ),
        Environment(
            "spark", ".venv-spark", "spark.lock.txt", imports=("pyspark",), compile_bytecode=False, duckdb=False
        ),
    )
}


class SetupError(RuntimeError):
    """A build step failed; the message says which and what to do."""


def say(message: str, stream=sys.stdout) -> None:
    print(message, file=stream, flush=True)


# --- uv -------------------------------------------------------------------------------


def find_uv(python: str) -> Path | None:
    """A uv binary to run directly: $UV, `uv` on PATH, or the binary of `python -m uv`."""
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    probe = subprocess.run(
        [python, "-c", "import uv; print(uv.find_uv_bin())"], capture_output=True, text=True, check=False
    )
    if probe.returncode == 0 and Path(probe.stdout.strip()).is_file():
        return Path(probe.stdout.strip())
    installed = UV_HOME / "bin" / "uv"
    return installed if installed.is_file() else None


def install_uv(python: str) -> Path:
    """uv from PyPI into .make/uv with `pip install --target` (exempt from PEP 668 and
    outside every interpreter's site-packages)."""
    # on stderr: `make lock` reads the binary's path from stdout
    say(f"==> installing uv into {UV_HOME.relative_to(ROOT)} ({python} -m pip install --target)", sys.stderr)
    if subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False).returncode != 0:
        raise SetupError(
            f"no uv found and {python} has no pip: install uv (https://docs.astral.sh/uv/) or python3-pip, then re-run"
        )
    shutil.rmtree(UV_HOME, ignore_errors=True)
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-warn-script-location",
         "--target", str(UV_HOME), "-r", str(UV_REQUIREMENT)],
        check=False,
    )  # fmt: skip
    binary = UV_HOME / "bin" / "uv"
    if done.returncode != 0 or not binary.is_file():
        shutil.rmtree(UV_HOME, ignore_errors=True)
        raise SetupError(f"installing uv failed (pip exit {done.returncode}); see the output above")
    return binary


def uv_binary(python: str) -> Path:
    return find_uv(python) or install_uv(python)


def uv_environment() -> dict[str, str]:
    """The environment uv runs with: no inherited virtualenv or parent interpreter, no
    interpreter downloads (only registries are reachable, and the locks target 3.11)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_INTERNAL__PARENT_INTERPRETER")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def run_uv(uv: Path, *args: str) -> None:
    command = [str(uv), *args]
    done = subprocess.run(command, env=uv_environment(), cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SetupError(f"`uv {' '.join(args[:2])}` failed (exit {done.returncode}): {' '.join(command)}")


# --- checks ---------------------------------------------------------------------------


def locked_versions(lock: Path) -> dict[str, str]:
    """`name==version` pins of a uv-compiled lock file, names normalized (PEP 503)."""
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            pins[normalize(match.group(1))] = match.group(3)
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def duckdb_pin() -> str:
    """The DuckDB version both environments must hold (the locks must agree on it)."""
    pins = {lock: locked_versions(ROOT / "requirements" / lock).get("duckdb") for lock in DUCKDB_LOCKS}
    if len(set(pins.values())) != 1 or None in pins.values():
        raise SetupError(f"the lock files pin different DuckDB versions: {pins}")
    return next(iter(pins.values()))


# Runs inside the environment under check (its own interpreter): reports the installed
# distributions, those with files missing, the environment's prefix, and import results.
PROBE = r"""
import importlib, importlib.metadata as md, json, os, re, sys
report = {"prefix": sys.prefix, "base_prefix": sys.base_prefix, "version": list(sys.version_info[:2]),
          "installed": {}, "damaged": {}, "imports": {}}
for dist in md.distributions():
    name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
    if not name:
        continue
    report["installed"][name] = dist.version
    missing = [str(f) for f in (dist.files or []) if not str(f).endswith(".pyc") and not os.path.exists(dist.locate_file(f))]
    if missing:
        report["damaged"][name] = missing[:3]
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
        report["imports"][module] = None
    except BaseException as exc:  # noqa: BLE001 (a probe reports every failure)
        report["imports"][module] = f"{type(exc).__name__}: {exc}"[:300]
try:
    import duckdb
    report["duckdb"] = duckdb.__version__
except ImportError:
    report["duckdb"] = None
print("PROBE " + json.dumps(report))
"""


@dataclass
class Verdict:
    """What is wrong with an environment (empty lists: nothing)."""

    problems: list[str]
    missing: list[str]  # locked packages absent or at another version: a sync installs them
    damaged: list[str]  # installed packages with files missing: a reinstall repairs them

    @property
    def ok(self) -> bool:
        return not (self.problems or self.missing or self.damaged)


def interpreter_is_ours(env: Environment) -> str | None:
    """None when env.python is a working Python 3.11 virtualenv inside env.path, else why not."""
    if not env.python.exists():
        return f"{env.python.relative_to(ROOT)} does not exist"
    done = subprocess.run(
        [
            str(env.python),
            "-c",
            "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.version_info[:2]]))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"{env.python.relative_to(ROOT)} does not run: {done.stderr.strip()[-300:]}"
    prefix, base_prefix, version = json.loads(done.stdout)
    if Path(prefix).resolve() != env.path.resolve() or prefix == base_prefix:
        return f"{env.python.relative_to(ROOT)} is not a virtualenv in {env.folder} (prefix {prefix})"
    if tuple(version) != (3, 11):
        return f"{env.folder} runs Python {version[0]}.{version[1]}, the locks are for 3.11"
    return None


def verify(env: Environment) -> Verdict:
    """Check env against its lock: interpreter, packages and their files, imports, DuckDB."""
    broken = interpreter_is_ours(env)
    if broken:
        return Verdict([broken], [], [])
    with tempfile.TemporaryDirectory(prefix="env-probe-") as scratch:
        done = subprocess.run(
            [str(env.python), "-c", PROBE, *env.imports],
            capture_output=True,
            text=True,
            cwd=ROOT,  # the project's packages import from the working directory, as `make` runs them
            # importing Airflow writes a default airflow.cfg into AIRFLOW_HOME: keep it in a scratch folder
            env={**uv_environment(), "AIRFLOW_HOME": scratch, "DO_NOT_TRACK": "1", "GX_ANALYTICS_ENABLED": "false"},
            check=False,
        )
    line = next((x for x in done.stdout.splitlines() if x.startswith("PROBE ")), None)
    if line is None:
        return Verdict([f"the probe failed in {env.folder}: {done.stderr.strip()[-1000:]}"], [], [])
    report = json.loads(line.removeprefix("PROBE "))
    installed = report["installed"]
    missing = [
        f"{name}=={version}"
        for name, version in locked_versions(env.lock_path).items()
        if installed.get(name) != version
    ]
    problems = [f"import {module} failed: {error}" for module, error in report["imports"].items() if error]
    if env.duckdb and not missing:
        pinned = duckdb_pin()
        if report["duckdb"] != pinned:
            problems.append(f"DuckDB is {report['duckdb']} in {env.folder}, the locks pin {pinned}")
    return Verdict(problems, missing, sorted(report["damaged"]))


def describe(verdict: Verdict) -> str:
    lines = list(verdict.problems)
    if verdict.missing:
        lines.append(
            f"{len(verdict.missing)} locked packages missing or at another version: {', '.join(verdict.missing[:8])}"
        )
    if verdict.damaged:
        lines.append(f"{len(verdict.damaged)} packages with files missing: {', '.join(verdict.damaged[:8])}")
    return "\n".join(f"   - {line}" for line in lines)


# --- build ----------------------------------------------------------------------------


def lock_digest(env: Environment) -> str:
    return hashlib.sha256(env.lock_path.read_bytes()).hexdigest()


def build(env: Environment, python: str) -> None:
    """Create (or repair) env from its lock, verify it, and only then write its stamp."""
    started = time.monotonic()
    env.stamp.unlink(missing_ok=True)
    say(f"==> building {env.folder} from requirements/{env.lock}")
    uv = uv_binary(python)
    why = interpreter_is_ours(env)
    if why:
        if env.path.exists():
            say(f"    recreating {env.folder}: {why}")
        run_uv(uv, "venv", "--quiet", "--clear", "--python", python, str(env.path))
        why = interpreter_is_ours(env)
        if why:
            raise SetupError(f"uv created {env.folder}, but {why}")
    sync = ["pip", "sync", "--quiet", "--python", str(env.python)]
    if env.compile_bytecode:
        sync.append("--compile-bytecode")
    run_uv(uv, *sync, str(env.lock_path))
    verdict = verify(env)
    if verdict.damaged:  # files gone from an installed package (an interrupted build): reinstall those
        say(f"    reinstalling {len(verdict.damaged)} damaged packages: {', '.join(verdict.damaged[:8])}")
        reinstall = [arg for name in verdict.damaged for arg in ("--reinstall-package", name)]
        run_uv(uv, *sync, *reinstall, str(env.lock_path))
        verdict = verify(env)
    if not verdict.ok:
        raise SetupError(f"{env.folder} was built but does not work (no stamp written):\n{describe(verdict)}")
    STAMPS.mkdir(exist_ok=True)
    env.stamp.write_text(json.dumps({"lock_sha256": lock_digest(env), "python": str(env.python)}) + "\n")
    say(f"    {env.folder} verified ({time.monotonic() - started:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 requirements/environments.py",
        description="Build and verify the locked environments. Example: python3 requirements/environments.py build pipeline",
    )
    parser.add_argument("--python", default=os.environ.get("PYTHON_BIN", "python3"), help="base interpreter (3.11)")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("build", "verify"):
        sub.add_parser(command, help=f"{command} one environment").add_argument("name", choices=sorted(ENVIRONMENTS))
    sub.add_parser("uv", help="print the uv binary make uses, installing one into .make/uv if none is found")
    args = parser.parse_args(argv)
    try:
        if args.command == "uv":
            print(uv_binary(args.python))
        elif args.command == "build":
            build(ENVIRONMENTS[args.name], args.python)
        else:
            env = ENVIRONMENTS[args.name]
            verdict = verify(env)
            if not verdict.ok:
                say(f"!! {env.folder} is not usable:\n{describe(verdict)}")
                return 1
            say(f"{env.folder}: ok")
    except SetupError as exc:
        say(f"!! {exc}")
        return 1
    except KeyboardInterrupt:
        say("!! interrupted: no stamp written; the next `make setup` repairs the environment")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
