"""Freshness SLA per site and source kind, evaluated from the ingestion watermarks and load audit.

A feed's age is the time from the end of its latest landed local day (the watermark in
ingestion/state.py) to `as_of`; it is *late* when the age exceeds its SLA (hours, from
config/pipeline.yml `freshness`: a default, per kind, per vendor shape, per site) and
*failing* when its latest load failed. Every check replaces the `freshness` table in the
state database (published to the 数据质量 dashboard), logs one line per problem and raises
one `Alert(source='freshness')` per problem episode (the key carries the watermark, so a
feed that stays late is reported once, and again only after it has moved and fallen behind).

`as_of` defaults to $SMARTCOMM_FRESHNESS_AS_OF (ISO instant; `make demo` sets the morning
after its window, since its data is historical) or the clock.

    python -m pipeline.freshness [--as-of 2026-07-01T08:00:00+08:00]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ingestion.paths import DataPaths, data_paths
from ingestion.registry import Registry, load_registry
from ingestion.state import StateStore, open_state_db
from ingestion.timeutil import LOCAL_TZ
from pipeline.alerts import Alert, raise_alerts

log = logging.getLogger(__name__)
AS_OF_ENV = "SMARTCOMM_FRESHNESS_AS_OF"

_SCHEMA = """
create or replace table freshness (
    site_id varchar not null,
    kind varchar not null,
    source_shape varchar,
    sla_hours double not null,
    landed_through date,               -- latest local day landed (watermark)
    age_hours double,                  -- as_of minus the end of that day
    hours_late double not null,        -- max(0, age - SLA); the SLA itself when never landed
    status varchar not null,           -- ok | late | failing | missing
    last_outcome varchar,
    last_error varchar,
    last_finished_at_utc timestamp,
    as_of_utc timestamp not null,
    primary key (site_id, kind)
)
"""


@dataclass(frozen=True)
class FeedFreshness:
    site_id: str
    kind: str
    source_shape: str
    sla_hours: float
    landed_through: dt.date | None
    age_hours: float | None
    hours_late: float
    status: str
    last_outcome: str | None
    last_error: str | None
    last_finished_at_utc: dt.datetime | None
    as_of_utc: dt.datetime


def sla_hours(settings: dict[str, Any], site_id: str, kind: str, shape: str) -> float:
    """The SLA of one feed: site override > vendor shape > kind > default."""
    site = (settings.get("sites") or {}).get(site_id) or {}
    for value in (
        site.get(kind),
        (settings.get("shapes") or {}).get(shape),
        (settings.get("kinds") or {}).get(kind),
        settings.get("default_hours"),
    ):
        if value is not None:
            return float(value)
    raise ValueError("config/pipeline.yml freshness needs default_hours")


def resolve_as_of(as_of: dt.datetime | None = None) -> dt.datetime:
    """An aware instant: the argument, $SMARTCOMM_FRESHNESS_AS_OF, or now."""
    if as_of is None and os.environ.get(AS_OF_ENV):
        as_of = dt.datetime.fromisoformat(os.environ[AS_OF_ENV])
    as_of = as_of or dt.datetime.now(dt.UTC)
    if as_of.tzinfo is None:
        raise ValueError(f"freshness as_of {as_of} needs a time zone offset")
    return as_of


def evaluate(
    as_of: dt.datetime | None = None,
    registry: Registry | None = None,
    settings: dict[str, Any] | None = None,
    paths: DataPaths | None = None,
) -> list[FeedFreshness]:
    """The freshness of every configured (site, kind) as of `as_of`, from the state database."""
    from pipeline.steps import pipeline_config

    as_of = resolve_as_of(as_of)
    as_of_utc = as_of.astimezone(dt.UTC).replace(tzinfo=None)
    settings = settings if settings is not None else pipeline_config()["freshness"]
    registry = registry or load_registry()
    status = {(row["site_id"], row["kind"]): row for row in StateStore(paths).status()}
    feeds = []
    for site in registry.sites:
        for kind, source in site.sources.items():
            sla = sla_hours(settings, site.site_id, kind, source.shape)
            row = status.get((site.site_id, kind), {})
            landed = row.get("landed_through")
            age = None
            if landed is not None:
                day_end = dt.datetime.combine(landed + dt.timedelta(days=1), dt.time(), tzinfo=LOCAL_TZ)
                age = round((as_of - day_end).total_seconds() / 3600, 1)
            late = max(0.0, age - sla) if age is not None else sla
            if row.get("last_outcome") == "failed":
                state = "failing"
            elif landed is None:
                state = "missing"
            else:
                state = "late" if late > 0 else "ok"
            feeds.append(
                FeedFreshness(
                    site.site_id,
                    kind,
                    source.shape,
                    sla,
                    landed,
                    age,
                    round(late, 1),
                    state,
                    row.get("last_outcome"),
                    row.get("last_error"),
                    row.get("last_finished_at_utc"),
                    as_of_utc,
                )
            )
    return feeds


def alerts_for(feeds: list[FeedFreshness]) -> list[Alert]:
    """One alert per late, failing or missing feed; the key names the episode (the watermark)."""
    alerts = []
    for feed in feeds:
        if feed.status == "ok":
            continue
        since = feed.landed_through.isoformat() if feed.landed_through else "never"
        details = {k: v for k, v in asdict(feed).items() if k not in ("site_id", "kind")}
        if feed.status == "failing":
            severity = "critical" if feed.hours_late > 0 else "warning"
            zh, en = "接入失败", f"feed failing: {(feed.last_error or '')[:200]}"
        elif feed.status == "late":
            severity = "critical" if feed.hours_late > feed.sla_hours else "warning"
            zh, en = (
                f"数据迟到 {feed.hours_late:.0f} 小时",
                f"feed late by {feed.hours_late:.0f} h (SLA {feed.sla_hours:.0f} h)",
            )
        else:
            severity = "warning"
            zh, en = "从未接入数据", "feed never landed"
        alerts.append(
            Alert(
                key=f"freshness:{feed.site_id}:{feed.kind}:{feed.status}:{since}",
                source="freshness",
                severity=severity,
                site_id=feed.site_id,
                title_zh=f"{feed.site_id} {feed.kind}：{zh}",
                title_en=f"{feed.site_id} {feed.kind}: {en}",
                details=details,
            )
        )
    return alerts


def store(feeds: list[FeedFreshness], state_db: Path | None = None) -> None:
    """Replace the `freshness` table of the state database with this check."""
    with open_state_db(state_db or data_paths().state_db) as con:
        con.execute("begin")
        con.execute(_SCHEMA)
        con.executemany(
            f"insert into freshness values ({', '.join('?' for _ in FeedFreshness.__dataclass_fields__)})",
            [list(asdict(feed).values()) for feed in feeds],
        )
        con.execute("commit")


def check_freshness(
    as_of: dt.datetime | None = None, registry: Registry | None = None, paths: DataPaths | None = None
) -> dict[str, Any]:
    """Evaluate, store, log and alert; returns counts per status, the problems and the new alerts' keys."""
    paths = paths or data_paths()
    feeds = evaluate(as_of, registry, paths=paths)
    store(feeds, paths.state_db)
    for feed in feeds:
        if feed.status != "ok":
            log.warning(
                "FRESHNESS %s %s/%s: landed through %s, age %s h, SLA %.0f h, %.1f h late%s",
                feed.status.upper(),
                feed.site_id,
                feed.kind,
                feed.landed_through or "never",
                feed.age_hours if feed.age_hours is not None else "-",
                feed.sla_hours,
                feed.hours_late,
                f", last error: {feed.last_error}" if feed.last_error else "",
            )
    new = raise_alerts(alerts_for(feeds), paths.state_db)
    counts: dict[str, int] = {}
    for feed in feeds:
        counts[feed.status] = counts.get(feed.status, 0) + 1
    return {
        "as_of": resolve_as_of(as_of).isoformat(),
        "feeds": counts,
        "problems": [asdict(feed) for feed in feeds if feed.status != "ok"],
        "new_alerts": [a.key for a in new],
    }


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="python -m pipeline.freshness", description=__doc__.split("\n")[0])
    parser.add_argument("--as-of", type=dt.datetime.fromisoformat, default=None, help="ISO instant with offset")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    result = check_freshness(args.as_of)
    table = Table(title=f"freshness as of {result['as_of']}")
    for column in ("site", "kind", "landed through", "age h", "SLA h", "late h", "status"):
        table.add_column(column)
    for feed in result["problems"]:
        table.add_row(
            feed["site_id"],
            feed["kind"],
            str(feed["landed_through"] or "never"),
            str(feed["age_hours"] if feed["age_hours"] is not None else "-"),
            f"{feed['sla_hours']:.0f}",
            f"{feed['hours_late']:.1f}",
            feed["status"],
        )
    Console().print(table)
    print(f"feeds: {result['feeds']}; new alerts: {len(result['new_alerts'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
