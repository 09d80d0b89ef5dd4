"""Airflow ingest DAGs, one per pilot site, generated from the registry (config/pilots.yml).

Each DAG `ingest_<site_id>` runs daily at local midnight (Asia/Shanghai) and has one task
per source kind the site is configured with; each task lands the local days of its data
interval (plus the vendor's late-listing days) through `ingestion.orchestration` and emits
the Asset `landing://<kind>/site=<site_id>`, so downstream dbt/GX DAGs can be data-triggered.
A file-drop day that has not arrived marks the task skipped (no asset event), not failed.

Why one DAG per site: a vendor outage or a backfill concerns one community; onboarding a
community adds a registry entry and its DAG appears; a site's kinds run side by side.
Backfill: `airflow backfill create --dag-id ingest_<site_id> --from-date A --to-date B`, or one
run over a day range with params (what `make demo` and `make backfill` use):
`airflow dags test ingest_<site_id> -c '{"start_day": "2026-01-01", "end_day": "2026-03-31", "resume": true}'`
(`resume` starts each kind after its watermark, so a repeated range only fetches what is new).
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from ingestion.orchestration import landing_asset
from ingestion.registry import Site, load_registry
from pipeline.alerts import on_task_failure

LOCAL_TZ = pendulum.timezone("Asia/Shanghai")
DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 3,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "execution_timeout": dt.timedelta(hours=2),
    "on_failure_callback": on_task_failure,  # an alert record (pipeline/alerts.py)
}


def build_ingest_dag(site: Site):
    """The ingest DAG of one site: wiring only."""

    @dag(
        dag_id=f"ingest_{site.site_id}",
        description=f"Land {site.name_zh} ({site.site_id}) sources into Parquet",
        doc_md=__doc__,
        # A data interval is one local day [D 00:00, D+1 00:00); the run starts when it ends.
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone=LOCAL_TZ),
        start_date=pendulum.datetime(2026, 1, 1, tz=LOCAL_TZ),
        catchup=False,
        max_active_runs=1,
        max_active_tasks=4,
        default_args=DEFAULT_ARGS,
        tags=["ingestion", f"site:{site.site_id}", f"street:{site.street_id}"],
        params={
            "start_day": Param(None, type=["null", "string"], format="date", description="override: first local day"),
            "end_day": Param(None, type=["null", "string"], format="date", description="override: last local day"),
            "resume": Param(False, type="boolean", description="start each kind after its watermark"),
            "allow_shrink": Param(
                False, type="boolean", description="let a day be replaced by fewer rows than it holds (audited)"
            ),
        },
    )
    def ingest_site():
        for kind in site.sources:

            @task(
                task_id=f"land_{kind}",
                outlets=[landing_asset(kind, site.site_id)],
            )
            def land(
                kind: str = kind, data_interval_start=None, data_interval_end=None, run_id=None, params=None
            ) -> dict:
                from airflow.sdk.exceptions import AirflowSkipException

                from ingestion.http import NotDeliveredError
                from ingestion.orchestration import ingest_interval

                try:
                    return ingest_interval(
                        site.site_id, kind, data_interval_start, data_interval_end, run_id, **(params or {})
                    )
                except NotDeliveredError as waiting:  # a file drop not yet arrived: skipped, no asset event
                    raise AirflowSkipException(str(waiting)) from waiting

            land()

    return ingest_site()


for _site in load_registry().sites:
    globals()[f"ingest_{_site.site_id}"] = build_ingest_dag(_site)
