"""A critical data-quality failure in a DAG run stops the downstream publish (real `dag.test()`).

The DAG here is a test harness in a temporary DAGs folder: a validate task calling
`expectations.steps.validate_landing_days`, then a publish task that only marks that it
ran. Airflow runs in a child process with its own AIRFLOW_HOME (it reads its config once
per process).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.expectations.conftest import SITE

ROOT = Path(__file__).resolve().parents[2]

GATE_DAG = '''
"""Test harness DAG (airflow dag): data-quality gate before publish."""
import json, os
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="dq_gate", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def dq_gate():
    @task
    def validate() -> dict:
        from expectations.steps import validate_landing_days

        return validate_landing_days(
            os.environ["DQ_SITE"], json.loads(os.environ["DQ_DAYS"]), "dag-test", kinds=["passages"],
            data_dir=os.environ["SMARTCOMM_DATA_DIR"], gx_root=os.environ["SMARTCOMM_GX_DIR"],
        )

    @task
    def publish(summary: dict) -> None:
        with open(os.environ["DQ_MARKER"], "w") as fh:
            json.dump(summary, fh)

    publish(validate())


dq_gate()
'''

RUN = r"""
import json, os
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
assert not bag.import_errors, bag.import_errors
out = {}
for case, days in json.loads(os.environ["DQ_CASES"]).items():
    os.environ["DQ_DAYS"] = json.dumps(days)
    os.environ["DQ_MARKER"] = os.environ["DQ_MARKER_DIR"] + f"/{case}.json"
    run = bag.dags["dq_gate"].test()
    out[case] = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print(json.dumps(out))
"""


def test_critical_failure_stops_publish_in_a_dag_run(tmp_path, clean_week, data_dir):
    """Two runs of the gate DAG in one Airflow process: a day with no data, then a clean day."""
    cases = {"critical": [(clean_week[-1] + dt.timedelta(days=1)).isoformat()], "clean": [clean_week[-1].isoformat()]}
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "dq_gate_dag.py").write_text(GATE_DAG)
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "DO_NOT_TRACK": "1",
        "PYTHONPATH": str(ROOT),
        "SMARTCOMM_DATA_DIR": str(data_dir),
        "SMARTCOMM_GX_DIR": str(tmp_path / "gx"),
        "DQ_SITE": SITE,
        "DQ_CASES": json.dumps(cases),
        "DQ_MARKER_DIR": str(tmp_path),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    migrated = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    done = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"dag.test() failed to report ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    states = json.loads(lines[-1])

    assert states["critical"]["validate"].endswith("failed"), states
    assert states["critical"]["publish"].endswith("upstream_failed"), states
    assert not (tmp_path / "critical.json").exists(), "publish ran although the data failed a critical expectation"
    assert all(s.endswith("success") for s in states["clean"].values()), states
    assert json.loads((tmp_path / "clean.json").read_text())["critical"] == 0

    con = duckdb.connect(str(data_dir / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select partition_date::varchar, count(*) filter (where not success and severity = 'critical') "
            "from dq_results where run_id = 'dag-test' group by 1"
        ).fetchall()
    finally:
        con.close()
    counts = dict(rows)
    assert counts[cases["critical"][0]] >= 1, "the failure was not recorded in dq_results"
    assert counts[cases["clean"][0]] == 0
