"""`dag.test()` of one site's ingest DAG against the simulator, compared with its truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from ingestion.registry import load_registry
from ingestion.timeutil import LOCAL_TZ
from tests.dags.conftest import airflow_environment, run_python

SITE = "lt_airport_block"  # token REST, alarm JSON lines, gov CSV and manual workbooks in one DAG

_RUN_DAG = r"""
import json, pendulum
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="dags")
dag = bag.dags["ingest_%(site)s"]
for t in dag.tasks:
    t.retries = 0  # a failure must fail the test now, not wait out the production retry delay
run = dag.test(logical_date=pendulum.datetime(2026, 1, 6, tz="Asia/Shanghai"))
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print(json.dumps({"state": str(run.state), "tasks": states,
                  "interval": [str(run.data_interval_start), str(run.data_interval_end)]}))
"""


def test_site_ingest_dag_lands_its_interval(airflow_home: Path, simulator, tmp_path):
    data_dir = tmp_path / "data"
    simulator.control.drop_files("2026-01-03", "2026-01-08", site=SITE)
    env = airflow_environment(airflow_home, {**simulator.env, "SMARTCOMM_DATA_DIR": str(data_dir)})
    result = run_python(_RUN_DAG % {"site": SITE}, env, timeout=600)
    site = load_registry().site(SITE)
    assert result["state"].endswith("success"), result
    assert result["tasks"] == {f"land_{k}": "success" for k in site.sources}, result["tasks"]
    # a data interval is one whole local day; its partition of every kind equals the truth
    start = dt.datetime.fromisoformat(result["interval"][0]).astimezone(LOCAL_TZ)
    end = dt.datetime.fromisoformat(result["interval"][1]).astimezone(LOCAL_TZ)
    assert (start.time(), end - start) == (dt.time(0), dt.timedelta(days=1)), result["interval"]
    day = start.date().isoformat()
    for kind in site.sources:
        truth = simulator.control.truth(SITE, kind, day, day)
        partition = data_dir / "landing" / kind / f"site={SITE}" / f"date={day}" / "data.parquet"
        assert partition.exists(), f"{kind}: the interval's partition was not written"
        landed = duckdb.connect().execute(f"select count(*) from read_parquet('{partition}')").fetchone()[0]
        assert landed == truth["rows"], f"{kind}: landed {landed}, truth {truth['rows']}"
    audit = duckdb.connect(str(data_dir / "state" / "state.duckdb"), read_only=True)
    runs = audit.execute("select distinct run_id, outcome from load_audit").fetchall()
    audit.close()
    assert runs and all(r[0].startswith("airflow:") and r[1] == "success" for r in runs), runs
