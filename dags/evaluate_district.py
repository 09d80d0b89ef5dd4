"""Airflow DAG `evaluate_district`: from landed data to published dashboards and reports.

Triggered by data, not by the clock: it runs when any site's ingest DAG updates a landing
Asset (`landing://<kind>/site=<site_id>`). Each run evaluates exactly the site-days landed
since the last successful evaluation (read from the load audit), so queued or repeated
triggers are cheap and a failed run is picked up again by the next one.

    plan → check_freshness → validate_landing → export_reference → build_marts (dbt) → validate_marts
         → early_warning (alerts for new high-severity warnings) → publish (serving.duckdb,
           atomically) → month_end_reports → finish

A critical data-quality failure stops the chain before `publish`: the dashboards keep the
last good data, and `publish_quality_only` still publishes the data-quality results so
the 数据质量 dashboard says why. Superset's result cache is keyed on the serving file's
identity, so a publish is all it takes to refresh the dashboards.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Asset, AssetAny, dag, task
from airflow.task.trigger_rule import TriggerRule

from ingestion.orchestration import landing_asset
from ingestion.registry import load_registry
from pipeline.alerts import on_task_failure

SERVING_ASSET = Asset(name="serving_db", uri="serving://warehouse/serving.duckdb")
DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 1,
    "retry_delay": dt.timedelta(minutes=2),
    "execution_timeout": dt.timedelta(hours=2),
    "on_failure_callback": on_task_failure,  # an alert record (pipeline/alerts.py)
}


def _landing_assets() -> list[Asset]:
    return [landing_asset(kind, site.site_id) for site in load_registry().sites for kind in site.sources]


@dag(
    dag_id="evaluate_district",
    description="Validate landed data, build the standard model and ratings, publish to the dashboards",
    doc_md=__doc__,
    schedule=AssetAny(*_landing_assets()),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["evaluation", "dbt", "data-quality", "publish"],
)
def evaluate_district():
    @task
    def plan(run_id=None) -> dict:
        from pipeline import steps

        return steps.plan(run_id)

    @task
    def check_freshness() -> dict:
        """Freshness SLA per site and kind: the `freshness` table, log lines and alerts; never blocks."""
        from pipeline.freshness import check_freshness as check

        return check()

    @task(retries=0)
    def validate_landing(planned: dict) -> dict:
        from pipeline import steps

        return steps.validate_landing(planned)

    @task
    def export_reference() -> dict:
        from pipeline import steps

        return steps.export_reference()

    @task
    def build_marts(planned: dict) -> dict:
        from pipeline import steps

        return steps.build_marts(planned)

    @task(retries=0)
    def validate_marts(planned: dict) -> dict:
        from pipeline import steps

        return steps.validate_marts(planned)

    @task
    def early_warning() -> dict:
        """Alert once per new high-severity warning episode (fct_warnings, built by dbt)."""
        from pipeline.warnings import early_warning as raise_warning_alerts

        return raise_warning_alerts()

    @task(outlets=[SERVING_ASSET])
    def publish() -> dict:
        from pipeline import steps

        return steps.publish()

    @task
    def month_end_reports(planned: dict) -> list[str]:
        from pipeline import steps

        return steps.month_end_reports(planned)

    @task
    def finish(planned: dict) -> None:
        from pipeline import steps

        steps.finish(planned, "success")

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
    def publish_quality_only(planned: dict) -> dict:
        """Something upstream failed: publish the data-quality results, keep the last good marts."""
        from pipeline import steps

        steps.finish(planned, "blocked", "see dq_results and the task logs")
        return steps.publish_quality_only()

    planned = plan()
    fresh = check_freshness()
    landing_ok = validate_landing(planned)
    reference = export_reference()
    built = build_marts(planned)
    marts_ok = validate_marts(planned)
    warned = early_warning()
    published = publish()
    reports = month_end_reports(planned)
    done = finish(planned)
    planned >> fresh >> landing_ok >> reference >> built >> marts_ok >> warned >> published >> reports >> done
    [landing_ok, built, marts_ok] >> publish_quality_only(planned)


evaluate_district()
