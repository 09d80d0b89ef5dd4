"""Step functions the Airflow DAGs call (dags/ only wires them), and the landing asset names.

landing_asset_uri(kind, site_id) -> "landing://<kind>/site=<site_id>"
    One Airflow Asset per landed dataset (kind x site). Downstream DAGs schedule on the
    URIs of the sites and kinds they read; `landing_asset_uris()` lists all configured.
ingest_interval(site_id, kind, data_interval_start, data_interval_end, airflow_run_id) -> dict
    Lands the local days of the data interval, plus the `late_listing_days` before it
    (late events re-open the day they belong to). Idempotent: the same interval again
    rebuilds the same partitions from the source.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ingestion.hardening import harden_process
from ingestion.mapping import load_shape_mapping
from ingestion.pull import pull
from ingestion.registry import Registry, load_registry
from ingestion.state import StateStore
from ingestion.timeutil import LOCAL_TZ, local_days_of


def landing_asset_uri(kind: str, site_id: str) -> str:
    return f"landing://{kind}/site={site_id}"


def landing_asset(kind: str, site_id: str):
    """The Airflow Asset of one landed dataset: the ingest DAG's outlet, the evaluation's trigger."""
    from airflow.sdk import Asset

    return Asset(name=f"landing_{kind}_{site_id}", uri=landing_asset_uri(kind, site_id))


def landing_asset_uris(registry: Registry | None = None, kinds: list[str] | None = None) -> list[str]:
    registry = registry or load_registry()
    return [
        landing_asset_uri(kind, site.site_id)
        for site in registry.sites
        for kind in site.sources
        if kinds is None or kind in kinds
    ]


def interval_days(
    data_interval_start: dt.datetime | None, data_interval_end: dt.datetime | None
) -> tuple[dt.date, dt.date]:
    """The local days [first, last] covered by an Airflow data interval (half-open, aware).

    A run with no data interval (Airflow 3's manual trigger with `logical_date: null`, as the
    REST API and the UI send it) covers the last complete local day; params may override it.
    """
    if data_interval_start is None or data_interval_end is None:
        yesterday = dt.datetime.now(LOCAL_TZ).date() - dt.timedelta(days=1)
        return yesterday, yesterday
    first, last = local_days_of(data_interval_start, data_interval_end)
    return first, max(first, last)


def ingest_interval(
    site_id: str,
    kind: str,
    data_interval_start: dt.datetime | None,
    data_interval_end: dt.datetime | None,
    airflow_run_id: str,
    start_day: str | None = None,
    end_day: str | None = None,
    resume: bool = False,
    allow_shrink: bool = False,
) -> dict[str, Any]:
    """Land one site's kind for an Airflow data interval; raises FetchError on failure.

    `start_day`/`end_day` (the DAG's params) replace the interval with a range of local days,
    for one-run backfills; with `resume`, each kind starts after its watermark (less the
    late-listing days), so repeating a range fetches only what is new. `allow_shrink` lets a
    day be replaced by fewer rows than it holds (ingestion.pull.guard_days).
    """
    harden_process()  # the DAG task's entry: private files, redacted log records
    registry = load_registry()
    source = registry.site(site_id).source(kind)
    if source is None:
        raise KeyError(f"site {site_id} has no source for kind {kind}")
    settings = load_shape_mapping(source.vendor_name).settings
    late = int(settings.get("late_listing_days", 0))
    first, last = interval_days(data_interval_start, data_interval_end)
    if start_day or end_day:
        first = dt.date.fromisoformat(start_day) if start_day else first
        last = dt.date.fromisoformat(end_day) if end_day else last
    if resume:
        landed_through = StateStore().watermark(site_id, kind)
        if landed_through is not None and landed_through >= last:
            return {"site_id": site_id, "kind": kind, "start": str(first), "end": str(last), "up_to_date": True}
        if landed_through is not None:
            first = max(first, landed_through + dt.timedelta(days=1))
    first -= dt.timedelta(days=late)
    if settings.get("land_month_to_date"):  # monthly workbooks: each run re-lands the month so far
        first = min(first, last.replace(day=1))
    outcome = pull(
        site_id,
        kind,
        first,
        last,
        run_id=f"airflow:{airflow_run_id}",
        registry=registry,
        allow_shrink=allow_shrink,
    )
    figures = outcome.figures
    return {
        "site_id": site_id,
        "kind": kind,
        "start": str(outcome.start),
        "end": str(outcome.end),
        "rows_landed": figures.rows_landed,
        "rows_quarantined": figures.rows_quarantined,
        "rows_deduplicated": figures.rows_deduplicated,
        "rows_outside_window": figures.rows_outside_window,
        "retries": figures.retries,
    }
