"""The README's first step on a fresh machine: `make setup` in a clean clone, with no `uv` on PATH.

The machine's "system" interpreter is played by a throwaway virtualenv (its packages can be
compared before and after, and a broken Makefile that installs into it harms nothing); it is
the only `python3` on PATH, once without and once with the uv module. Packages come from the
warm uv cache that the suite's own `make setup` filled. After `make setup`, each environment
must hold its packages, import its main modules and share one DuckDB version, and the system
interpreter must be unchanged. The first case also interrupts the build during its sync (as a
user's Ctrl-C would) and checks that the half-built environment is neither stamped nor trusted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.foundation.test_environments import PIPELINE_PROBE, SUPERSET_PROBE, probe

ROOT = Path(__file__).resolve().parents[2]
UV_PIN = next(line for line in (ROOT / "requirements" / "uv.txt").read_text().splitlines() if line.startswith("uv=="))


def clean_clone(target: Path) -> Path:
    """The tree as a clean clone would have it: every tracked or new non-ignored file, nothing built."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def path_without_uv(shadow_root: Path, python_dir: Path) -> str:
    """PATH with `python_dir` first and every directory that holds `uv` replaced by a copy
    of it (symlinks) without uv and uvx."""
    parts = [str(python_dir)]
    for i, directory in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        folder = Path(directory)
        if not (folder / "uv").exists() and not (folder / "uvx").exists():
            parts.append(directory)
            continue
        shadow = shadow_root / f"path{i}"
        shadow.mkdir(parents=True)
        for entry in folder.iterdir():
            if entry.name not in ("uv", "uvx"):
                (shadow / entry.name).symlink_to(entry)
        parts.append(str(shadow))
    return os.pathsep.join(parts)


def freeze(python: Path) -> list[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout.splitlines()


class FreshMachine:
    """A clean clone, a system interpreter of its own, and a PATH on which uv cannot be found."""

    def __init__(self, tmp: Path, with_uv_module: bool) -> None:
        self.repo = clean_clone(tmp / "repo")
        system = tmp / "system"
        subprocess.run([sys.executable, "-m", "venv", str(system)], check=True)
        self.system_python = system / "bin" / "python3"
        if with_uv_module:
            subprocess.run([str(self.system_python), "-m", "pip", "install", "-q", UV_PIN], check=True)
        bin_dir = tmp / "bin"  # only python3 of the system interpreter, no pip or uv beside it
        bin_dir.mkdir()
        launcher = bin_dir / "python3"  # a symlink outside the venv's folder would not start it as the venv
        launcher.write_text(f'#!/bin/sh\nexec "{self.system_python}" "$@"\n')
        launcher.chmod(0o755)
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV", "PYTHONPATH", "MAKEFLAGS")},
            "PATH": path_without_uv(tmp / "shadow", bin_dir),
        }
        assert shutil.which("uv", path=self.env["PATH"]) is None

    def make(self, *targets: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", *targets], cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def stamp(self, name: str) -> Path:
        return self.repo / ".make" / f"{name}.ok"

    def verify(self, name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["python3", "requirements/environments.py", "verify", name],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
        )


def interrupt_during_sync(machine: FreshMachine) -> None:
    """Start `make setup` and press Ctrl-C (SIGINT to its process group) once packages are being installed."""
    site_packages = machine.repo / ".venv" / "lib" / "python3.11" / "site-packages"
    process = subprocess.Popen(
        ["make", "setup"],
        cwd=machine.repo,
        env=machine.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if site_packages.is_dir() and len(list(site_packages.iterdir())) >= 40:
            break
        time.sleep(0.02)
    assert process.poll() is None, "make setup ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=120)


def assert_built_and_system_untouched(machine: FreshMachine, system_before: list[str]) -> None:
    """The checks of a verified setup, made here independently of the build script's own."""
    assert freeze(machine.system_python) == system_before, "make setup changed the system interpreter"
    assert machine.stamp("pipeline").exists() and machine.stamp("superset").exists()
    pipeline = probe(machine.repo / ".venv" / "bin" / "python", PIPELINE_PROBE, cwd=machine.repo)
    superset = probe(machine.repo / ".venv-superset" / "bin" / "python", SUPERSET_PROBE, cwd=machine.repo)
    assert pipeline["airflow"].startswith("3.3.") and pipeline["dbt"].startswith("1.11.")
    assert superset["superset"].startswith("6.1.")
    assert pipeline["duckdb"] == superset["duckdb"]
    own = subprocess.run(
        [
            str(machine.repo / ".venv" / "bin" / "python"),
            "-c",
            "import ingestion.registry, pipeline.steps, expectations",
        ],
        cwd=machine.repo,
        capture_output=True,
        text=True,
    )
    assert own.returncode == 0, own.stderr[-2000:]
    again = machine.make("-n", "setup")
    assert "environments.py build" not in again.stdout, f"a verified setup would rebuild:\n{again.stdout}"


def test_make_setup_without_uv_survives_an_interrupt(tmp_path: Path) -> None:
    """No uv anywhere: make setup installs it into .make/uv; Ctrl-C during the sync leaves no
    stamp and an environment that fails verification; the next make setup completes it."""
    real_system_before = freeze(Path(sys.base_prefix) / "bin" / "python3")
    machine = FreshMachine(tmp_path, with_uv_module=False)
    system_before = freeze(machine.system_python)

    interrupt_during_sync(machine)
    assert not machine.stamp("pipeline").exists(), "an interrupted build left a stamp"
    half_built = machine.verify("pipeline")
    # verify passes only when the Ctrl-C came after every package was in place (during bytecode
    # compilation); either way no stamp was written, so the next make must build again
    assert half_built.returncode == 0 or "not usable" in half_built.stdout, half_built.stdout

    done = machine.make("setup")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "==> building .venv from" in done.stdout, "the interrupted environment was trusted, not rebuilt"
    assert (machine.repo / ".make" / "uv" / "bin" / "uv").is_file()
    assert_built_and_system_untouched(machine, system_before)
    assert freeze(Path(sys.base_prefix) / "bin" / "python3") == real_system_before


@pytest.fixture(scope="module")
def uv_module_machine(tmp_path_factory: pytest.TempPathFactory) -> tuple[FreshMachine, list[str]]:
    """A fresh machine whose python3 has the uv module (and no uv on PATH), after make setup."""
    machine = FreshMachine(tmp_path_factory.mktemp("uv-module"), with_uv_module=True)
    system_before = freeze(machine.system_python)
    done = machine.make("setup")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return machine, system_before


def test_make_setup_with_only_the_uv_module(uv_module_machine: tuple[FreshMachine, list[str]]) -> None:
    """`python3 -m uv` targets the interpreter that launched it: the build must name its own."""
    machine, system_before = uv_module_machine
    assert_built_and_system_untouched(machine, system_before)
    assert not (machine.repo / ".make" / "uv" / "bin" / "uv").exists(), "uv was installed although python3 -m uv works"


def test_a_damaged_environment_is_repaired_not_trusted(uv_module_machine: tuple[FreshMachine, list[str]]) -> None:
    """Files gone from an installed package and a package gone whole, with no stamp (an
    interrupted build): make setup finds both, reinstalls, and only then stamps."""
    machine, _ = uv_module_machine
    site_packages = machine.repo / ".venv" / "lib" / "python3.11" / "site-packages"
    (site_packages / "yaml" / "__init__.py").unlink()  # damaged: files missing
    for dist_info in site_packages.glob("orjson-*.dist-info"):
        shutil.rmtree(dist_info)  # missing: the lock's package is not installed
    machine.stamp("pipeline").unlink()
    broken = machine.verify("pipeline")
    assert broken.returncode == 1 and "pyyaml" in broken.stdout and "orjson" in broken.stdout, broken.stdout

    done = machine.make("setup")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "reinstalling 1 damaged packages: pyyaml" in done.stdout
    assert machine.stamp("pipeline").exists()
    assert machine.verify("pipeline").returncode == 0
