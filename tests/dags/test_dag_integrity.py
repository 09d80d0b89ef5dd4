"""Every DAG file imports cleanly, fast and without I/O, and follows the team's policies."""

from __future__ import annotations

import pytest

from ingestion.registry import load_registry
from tests.dags.conftest import airflow_environment, run_python

# Loaded with network sockets, DuckDB and HTTP clients booby-trapped: a DAG file that
# touches any of them at import shows up as an import error.
_LOAD_DAGS = r"""
import json, socket, time
def _refuse(*args, **kwargs):
    raise RuntimeError("I/O at DAG import time")
socket.socket.connect = _refuse
import duckdb, httpx
duckdb.connect = _refuse
httpx.Client.send = _refuse
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="dags")
seconds = time.perf_counter() - started
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "fileloc": dag.fileloc,
        "tags": sorted(dag.tags),
        "owners": sorted({t.owner for t in dag.tasks}),
        "retries": sorted({t.retries for t in dag.tasks}),
        "tasks": sorted(t.task_id for t in dag.tasks),
        "outlets": sorted(o.uri for t in dag.tasks for o in t.outlets),
        "timetable": type(dag.timetable).__name__,
    }
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags, "seconds": seconds}))
"""

REGISTRY = load_registry()
INGEST_DAGS = [f"ingest_{site.site_id}" for site in REGISTRY.sites]


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow_parse")
    return run_python(_LOAD_DAGS, airflow_environment(home))


def test_no_import_errors(dagbag):
    assert dagbag["errors"] == {}, "\n".join(f"{f}: {e}" for f, e in dagbag["errors"].items())


@pytest.mark.parametrize("dag_id", INGEST_DAGS)
def test_ingest_dag_policies(dagbag, dag_id):
    site_id = dag_id.removeprefix("ingest_")
    site = REGISTRY.site(site_id)
    dag = dagbag["dags"].get(dag_id)
    assert dag is not None, f"{dag_id} missing: every registry site gets an ingest DAG"
    assert "ingestion" in dag["tags"], f"{dag_id}: tags {dag['tags']}"
    assert dag["owners"] == ["data-engineering"], f"{dag_id}: owners {dag['owners']}"
    assert min(dag["retries"]) >= 1, f"{dag_id}: tasks without retries"
    assert dag["tasks"] == sorted(f"land_{k}" for k in site.sources), f"{dag_id}: one task per configured kind"
    assert dag["outlets"] == sorted(f"landing://{k}/site={site_id}" for k in site.sources)
    assert dag["timetable"] == "CronDataIntervalTimetable", "a data interval must be one whole local day"


def test_every_dag_has_policies(dagbag):
    for dag_id, dag in dagbag["dags"].items():
        assert dag["tags"], f"{dag_id} has no tags"
        assert "airflow" not in dag["owners"], f"{dag_id} keeps the default owner"
