"""The demo's parallel ingest: two `dag.test()` processes at once, each on its own copy of
the SQLite metadata DB (pipeline.demo.worker_environment), against the simulator.

Two `airflow dags test` processes on one SQLite file collide while they sync the DAGs
(IntegrityError); this runs the demo's own ingest step with two workers and checks that
both runs succeed, each in its worker's metadata copy, each site run once (the workers take
sites from a shared queue), and that both sites landed."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from ingestion.paths import DataPaths
from ingestion.registry import load_registry
from ingestion.state import StateStore
from pipeline.demo import demo_environment, ingest_sites

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SITES = ["cy_commerce_block", "lt_airport_block"]  # the smallest ISC and token REST sites
FIRST, LAST = dt.date(2026, 1, 5), dt.date(2026, 1, 6)


def dag_runs(database: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(database)
    try:
        return sorted(con.execute("select dag_id, state from dag_run").fetchall())
    finally:
        con.close()


def test_two_dag_test_workers_do_not_race_on_the_metadata_db(airflow_home: Path, simulator, tmp_path):
    data_dir = tmp_path / "data"
    env = demo_environment(data_dir, LAST)
    env.update(simulator.env, SMARTCOMM_DROP_DIR=str(tmp_path / "drops"))
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True)
    shutil.copyfile(airflow_home / "airflow.db", home / "airflow.db")  # what ensure_airflow_db leaves
    for site in SITES:
        command = [sys.executable, "-m", "simulator", "drop-files", "--seed", "7", "--drop-dir", env["SMARTCOMM_DROP_DIR"],
                   "--start", str(FIRST - dt.timedelta(days=1)), "--end", str(LAST + dt.timedelta(days=1)), "--site", site]  # fmt: skip
        subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, timeout=600)

    template = dag_runs(home / "airflow.db")  # the session's metadata DB: other tests' runs in it

    ingest_sites(env, SITES, FIRST, LAST, resume=False, parallel=2)  # SystemExit if a worker failed

    assert dag_runs(home / "airflow.db") == template  # the shared copy is only the template
    ran: Counter[tuple[str, str]] = Counter()  # each worker's runs beyond the template: the sites it took
    for worker in range(2):
        runs = Counter(dag_runs(home / "workers" / str(worker) / "airflow.db"))
        assert runs >= Counter(template)
        ran += runs - Counter(template)
    assert ran == Counter((f"ingest_{site}", "success") for site in SITES)  # each site once, in one worker
    audit = StateStore(DataPaths(data_dir)).audit()
    expected = {(site, kind) for site in SITES for kind in load_registry().site(site).sources}
    assert {(r["site_id"], r["kind"]) for r in audit} == expected
    assert {r["outcome"] for r in audit} == {"success"}, [
        (r["site_id"], r["kind"], r["error"]) for r in audit if r["error"]
    ]
    for site in SITES:
        assert (data_dir / "landing" / "passages" / f"site={site}" / f"date={LAST}" / "data.parquet").exists()
