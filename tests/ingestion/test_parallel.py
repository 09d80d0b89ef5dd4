"""Landing in worker processes (ingestion/workers.py): the same partitions and audit as a
serial run, failures named as before, hardened workers, and a state database that takes
writers from several processes at once."""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ingestion.cli import main
from ingestion.paths import DataPaths, data_paths
from ingestion.state import StateStore
from ingestion.workers import available_cpus, configured_workers, parse_workers, resolve_workers
from tests.fixtures.simulator import SimulatorHandle

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FIRST, LAST = dt.date(2026, 1, 5), dt.date(2026, 1, 7)
PER_RUN = {"_run_id", "_fetched_at_utc"}  # differ between any two runs, serial or not
AUDIT_FIGURES = (
    "site_id", "kind", "source_shape", "interval_start", "interval_end", "rows_fetched", "rows_landed",
    "rows_deduplicated", "rows_quarantined", "retries", "outcome", "error",
)  # fmt: skip


def drop_files(drop_dir: Path, first: dt.date, last: dt.date) -> None:
    """Every file vendor's drops (seed 7, the session simulator's) in a private folder."""
    command = [sys.executable, "-m", "simulator", "drop-files", "--seed", "7", "--drop-dir", str(drop_dir),
               "--start", str(first), "--end", str(last)]  # fmt: skip
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=600)


def use(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, data_dir: Path, drop_dir: Path) -> DataPaths:
    """The simulator's URLs and credentials, a private drop folder and data directory; the
    worker processes inherit this environment."""
    for name, value in sim.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SMARTCOMM_DROP_DIR", str(drop_dir))
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(data_dir))
    return data_paths()


def partitions(paths: DataPaths) -> dict[str, list[tuple[Any, ...]]]:
    """Every landed and quarantined file, relative path -> its sorted rows without the per-run columns."""
    found = {}
    for file in sorted(paths.landing.rglob("*.parquet")):
        table = pq.read_table(file)
        table = table.drop_columns([c for c in table.column_names if c in PER_RUN])
        names = table.column_names
        rows = sorted((tuple(row[n] for n in names) for row in table.to_pylist()), key=repr)
        found[str(file.relative_to(paths.landing))] = [tuple(names), *rows]
    return found


def audit_figures(paths: DataPaths) -> list[tuple[Any, ...]]:
    rows = StateStore(paths).audit()
    return sorted(tuple(row[name] for name in AUDIT_FIGURES) for row in rows)


def test_parallel_pull_all_lands_what_a_serial_one_does(simulator, monkeypatch, tmp_path, capsys):
    drops = tmp_path / "drops"
    drop_files(drops, FIRST, LAST + dt.timedelta(days=1))  # a late listing reaches a day on
    argv = ["pull", "--all", "--start", str(FIRST), "--end", str(LAST), "--quiet"]
    serial = use(simulator, monkeypatch, tmp_path / "serial", drops)
    assert main([*argv, "--workers", "1"]) == 0, capsys.readouterr().out[-3000:]
    parallel = use(simulator, monkeypatch, tmp_path / "parallel", drops)
    assert main([*argv, "--workers", "2"]) == 0, capsys.readouterr().out[-3000:]
    assert "in 2 worker processes" not in capsys.readouterr().out  # --quiet: the table only

    landed_serial, landed_parallel = partitions(serial), partitions(parallel)
    days = (LAST - FIRST).days + 1
    assert sum("/date=" in name and name.endswith("data.parquet") for name in landed_serial) >= 104 * days
    assert landed_parallel.keys() == landed_serial.keys()
    for name, rows in landed_serial.items():
        assert landed_parallel[name] == rows, name
    figures = audit_figures(serial)
    assert len(figures) == 104 and {f[AUDIT_FIGURES.index("outcome")] for f in figures} == {"success"}
    assert audit_figures(parallel) == figures
    watermarks = [(r["site_id"], r["kind"], r["landed_through"]) for r in StateStore(serial).status()]
    assert [(r["site_id"], r["kind"], r["landed_through"]) for r in StateStore(parallel).status()] == watermarks


def test_parallel_pull_names_each_failed_unit_and_exits_1(simulator, monkeypatch, tmp_path, capsys):
    """No file drops at all: every file-drop kind of the site fails as not delivered, in a
    worker, and the parent names each one as a serial run does; the API kinds still land."""
    argv = ["pull", "--site", "lt_airport_block", "--kind", "all", "--start", "2026-01-06", "--end", "2026-01-06"]
    failures = {}
    for workers in ("1", "2"):
        use(simulator, monkeypatch, tmp_path / f"data-{workers}", tmp_path / "no-drops")
        assert main([*argv, "--workers", workers, "--quiet"]) == 1
        failures[workers] = sorted(line for line in capsys.readouterr().out.splitlines() if "FAILED" in line)
    expected = ["service_cases", "alerts", "fire_alarms", "register"]  # gov_export, alarm_jsonl, manual_xlsx
    assert len(failures["1"]) == len(expected), failures["1"]
    for kind in expected:
        assert any(f"FAILED lt_airport_block / {kind}: not delivered yet" in line for line in failures["1"]), kind
    assert failures["2"] == failures["1"]
    audit = {row["kind"]: row["outcome"] for row in StateStore(data_paths()).audit()}
    assert audit == {kind: "failed" if kind in expected else "success" for kind in audit} and len(audit) == 11


def _worker_facts() -> tuple[int, bool]:
    """In a worker: its umask and whether log records are redacted."""
    umask = os.umask(0o077)
    os.umask(umask)
    return umask, bool(getattr(logging.getLogRecordFactory(), "redacting", False))


def test_workers_harden_themselves_like_the_cli(paths):
    from ingestion.workers import _init_worker

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(_worker_facts).result(timeout=120)[1] is False  # a bare spawned process is not
    with ProcessPoolExecutor(1, mp_context=context, initializer=_init_worker, initargs=(messages,)) as pool:
        assert pool.submit(_worker_facts).result(timeout=120) == (0o077, True)


def test_worker_count_auto_is_bounded_by_cpus_and_units():
    cpus = available_cpus()
    assert configured_workers() == "auto"  # config/pipeline.yml as committed
    assert resolve_workers(None, 104) == resolve_workers("auto", 104) == min(cpus, 104)
    assert resolve_workers("auto", 1) == 1 and resolve_workers(8, 3) == 3 and resolve_workers("1", 104) == 1
    for bad in ("0", "-2", "two", "1.5", None):
        with pytest.raises(ValueError, match="'auto' or a positive integer"):
            parse_workers(bad)


_WRITER = r"""
import datetime as dt, sys, time
from pathlib import Path
from ingestion.paths import DataPaths
from ingestion.state import LoadFigures, StateStore
root, writer, rows, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
time.sleep(max(0.0, go - time.time()))  # every writer starts at once, on a state file not yet created
store = StateStore(DataPaths(root))
day = dt.date(2026, 1, 1)
for i in range(rows):
    run, site = f"run-{writer}-{i}", f"site{writer}"
    store.start(run, site, "passages", "token_rest", day, day + dt.timedelta(days=i))
    store.finish(run, site, "passages", day, day + dt.timedelta(days=i), LoadFigures(rows_fetched=i, rows_landed=i, retries=writer),
                 outcome="success", duration_s=0.01)
print("ok")
"""


_OPENER = r"""
import sys, time
from pathlib import Path
from ingestion.state import open_state_db
folder, files, go, gap = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
for n in range(files):  # every opener reaches file n at the same instant
    start = go + n * gap
    time.sleep(max(0.0, start - time.time() - 0.01))
    while time.time() < start:
        pass
    with open_state_db(folder / f"state-{n}.duckdb") as con:
        con.execute("create table if not exists opened (n integer)")
print("ok")
"""


def _run_at_once(script: str, argvs: list[list[str]]) -> None:
    """One Python process per argument list, started together; each must print "ok"."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *argv],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0 and out.strip() == "ok", err[-3000:]


def test_a_state_file_created_by_several_processes_at_once_is_whole_for_each(tmp_path):
    """DuckDB writes a new file's header after creating it; an opener in between used to read
    'not a valid DuckDB database file' (CI, 4 audit writers). 6 openers race on 20 new files."""
    openers, files, gap = 6, 20, 0.3
    go = time.time() + 3
    _run_at_once(_OPENER, [[str(tmp_path), str(files), str(go), str(gap)]] * openers)
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(f"state-{n}.duckdb" for n in range(files))


@pytest.mark.parametrize("writers", [2, 4])
def test_state_db_takes_audit_rows_from_several_processes_at_once(tmp_path, writers):
    rows = 25
    go = time.time() + 3  # the interpreters and duckdb import first
    _run_at_once(_WRITER, [[str(tmp_path / "data"), str(w), str(rows), str(go)] for w in range(writers)])
    paths = DataPaths(tmp_path / "data")
    audit = StateStore(paths).audit()
    assert len(audit) == writers * rows
    assert all(r["outcome"] == "success" and r["retries"] == int(r["site_id"][4:]) for r in audit)
    assert sorted((r["site_id"], r["landed_through"]) for r in StateStore(paths).status()) == [
        (f"site{w}", dt.date(2026, 1, 1) + dt.timedelta(days=rows - 1)) for w in range(writers)
    ]
    assert paths.state_db.stat().st_mode & 0o777 == 0o600
