"""The first run as a new user has it: `git clone`, then `make demo` until the dashboards answer.

    .venv/bin/python -m bench.first_run            # the demo as shipped (6 months, 10 sites)
    .venv/bin/python -m bench.first_run --quick    # the same on the demo's first week of June (bench-quick)

A clean `git clone` of this checkout's HEAD goes to a temporary folder, with the package
caches as warm as this machine has them (uv's cache; the Debian packages installed), and
`make demo` runs in it exactly as the README says, with Superset on a free port. Each
line `make demo` prints is timestamped, and the phases are cut at the lines that start
them (PHASES below). The clock stops when Superset's `/health` answers and every chart of
every dashboard has answered once as `admin` (bench.dashboards.measure, one round), then
the demo is stopped and the clone removed.

Each phase is reported beside the whole first run (its share); the target for the whole
lives with the ingestion work (issue 20), so this stage only measures and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.dashboards import free_port, login, measure
from bench.report import PROJECT_ROOT, Figure, children_peak_rss_mib, save_figures
from superset_assets.server import LOGINS_FILE

# (phase, the first line of `make demo`'s output that belongs to it). Every phase lasts
# until the next one starts; the environments start with `make demo` itself, right after the
# clone, and "dashboards answer" starts when /health first answers.
ENVIRONMENTS = "environments (.venv, .venv-superset)"
PHASES: tuple[tuple[str, str], ...] = (
    ("Debian packages", r"^==> checking Debian packages"),
    ("Airflow metadata, simulator and file drops", r"Demo: \d+ sites"),
    ("ingest", r"^\s*ingesting \d+ sites"),
    ("evaluation (validation, dbt, publish, reports)", r"^\s*evaluating the district"),
    ("Superset start (metadata, assets, gunicorn)", r"^==> preparing Superset metadata"),
)
QUICK_WINDOW = ("2026-06-01", "2026-06-07")  # a week that starts a month, so the demo still rates it


@dataclass
class Transcript:
    """`make demo`'s output lines with the second (since the clone began) each arrived."""

    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def follow(self, stream, log: Path) -> None:
        with open(log, "w", encoding="utf-8") as out:
            for line in stream:
                out.write(line)
                out.flush()
                with self.lock:
                    self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))

    def first(self, pattern: str) -> float | None:
        with self.lock:
            return next((t for t, line in self.lines if re.search(pattern, line)), None)

    def tail(self, n: int = 40) -> str:
        with self.lock:
            return "\n".join(line for _, line in self.lines[-n:])


def wait_for_health(url: str, process: subprocess.Popen, transcript: Transcript, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"make demo exited with {process.returncode} before Superset answered:\n{transcript.tail()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"Superset did not answer within {timeout:.0f} s:\n{transcript.tail()}")


def first_run(work: Path, quick: bool, timeout: float) -> tuple[dict[str, float], float, dict]:
    """Clone, `make demo`, wait for every dashboard; (phase seconds, total seconds, details)."""
    repo = work / "repo"
    started = time.monotonic()
    subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(repo)], check=True)
    shared = PROJECT_ROOT.parent / "shared"
    if shared.exists():
        (work / "shared").symlink_to(shared.resolve())
    cloned = time.monotonic() - started
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL")}
    env["SMARTCOMM_SUPERSET_PORT"] = str(port)
    secrets = work / "superset-secrets"  # the clone's Superset key and demo logins, removed with it
    env["SMARTCOMM_SUPERSET_SECRETS"] = str(secrets)
    command = ["make", "demo"]
    if quick:
        command.append(f"PIPELINE_ARGS=--start {QUICK_WINDOW[0]} --end {QUICK_WINDOW[1]}")
    transcript = Transcript(started)
    process = subprocess.Popen(
        command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    reader = threading.Thread(target=transcript.follow, args=(process.stdout, work / "make-demo.log"), daemon=True)
    reader.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process, transcript, timeout)
        healthy = time.monotonic() - started
        logins = json.loads((secrets / LOGINS_FILE).read_text())
        client = login(url, "admin", logins["admin"])
        report = measure(client, rounds=1)
        answered = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(timeout=10)
    errors = {title: row["errors"] for title, row in report["dashboards"].items() if row["errors"] or not row["cold"]}
    if errors:
        raise RuntimeError(f"dashboards did not answer: {errors}")
    starts = [("git clone", 0.0), (ENVIRONMENTS, cloned)]
    for name, pattern in PHASES:
        at = transcript.first(pattern)
        if at is None:
            raise RuntimeError(f"make demo printed no line for the phase {name!r} ({pattern}):\n{transcript.tail()}")
        starts.append((name, at))
    starts.append(("dashboards answer (every chart once)", healthy))
    bounds = [*(at for _, at in starts[1:]), answered]
    phases = {name: end - at for (name, at), end in zip(starts, bounds, strict=True)}
    details = {
        "charts": {title: row["charts"] for title, row in report["dashboards"].items()},
        "window": list(QUICK_WINDOW) if quick else "demo default",
    }
    return phases, answered, details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time git clone -> make demo -> every dashboard answering. Example: python -m bench.first_run --quick"
    )
    parser.add_argument("--quick", action="store_true", help=f"the demo on {QUICK_WINDOW[0]}..{QUICK_WINDOW[1]} only")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the dashboards")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its make-demo.log")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-first-run-"))
    try:
        phases, total, details = first_run(work, args.quick, args.timeout)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    size = "demo week, 10 sites" if args.quick else "demo as shipped (6 months, 10 sites)"
    whole = "git clone -> make demo -> every dashboard answering"
    figures = [
        Figure("first-run", whole, size, total, "s", target="measured here; target: issue 20"),
        *(
            Figure(
                "first-run", f"first run: {name}", size, seconds, "s", baseline="whole first run", baseline_value=total
            )
            for name, seconds in phases.items()
        ),
    ]
    figures[0].peak_rss_mib = children_peak_rss_mib()
    save_figures("first-run", figures, extra={"details": details})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
