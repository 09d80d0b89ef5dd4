"""Pull one (site, kind) over a range of local days into the landing zone, with audit.

    pull(site_id, kind, start, end, *, run_id=None, paths=None, registry=None, policy=None,
         pseudonymizer=None, progress=None, state=None, allow_shrink=False) -> PullOutcome

The range is inclusive local days (Asia/Shanghai). The connector also reads the
`late_listing_days` after `end` (config/vendors/<vendor>.yml), because a late event is
listed after its true day; each day's partition is then rebuilt whole from the source, so
pulling a range again (or an overlapping one) replaces, never appends. Days are written as
soon as every listing that can hold their rows has been read, so memory stays at a few days.
Pages are fetched in a background thread (up to PREFETCH_PAGES ahead) while earlier ones are mapped.

Every fetched row is accounted for (landed, deduplicated, quarantined or outside the landed
days) and no day is replaced by less data (guard_days); see ingestion/README.md, "Every row
accounted for". Failures raise FetchError naming site, kind and cause after the audit row is
closed as `failed`; days already written stay valid (each is atomic and complete on its own). A run
that succeeds tells its connector, and file drops move the files they landed out of the drop
folder (ingestion/connectors/files.py: retention).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ingestion.connectors import Connector, Unit, make_connector
from ingestion.http import FetchError, NotDeliveredError, RetryPolicy
from ingestion.landing import (
    BATCH_ROWS,
    VALIDATION_FILE,
    AccountingError,
    LandingResult,
    PartitionBuilder,
    Window,
    new_run_id,
)
from ingestion.mapping import load_shape_mapping
from ingestion.paths import DataPaths, data_paths
from ingestion.pii import Pseudonymizer
from ingestion.registry import Registry, load_registry, read_yaml
from ingestion.state import LoadFigures, StateStore
from ingestion.timeutil import days_between, local_days_of

ProgressFn = Callable[[int, int, int], None]  # (units done, units total, rows fetched so far)


@dataclass
class PullOutcome:
    site_id: str
    kind: str
    shape: str
    start: dt.date
    end: dt.date
    run_id: str
    outcome: str = "running"
    error: str | None = None
    rows_fetched: int = 0
    retries: int = 0
    duration_s: float = 0.0
    not_delivered: list[dt.date] = field(default_factory=list)
    result: LandingResult | None = None

    @property
    def figures(self) -> LoadFigures:
        r = self.result
        return LoadFigures(
            rows_fetched=self.rows_fetched,
            rows_landed=r.rows_landed if r else 0,
            rows_deduplicated=r.rows_deduplicated if r else 0,
            rows_quarantined=r.rows_quarantined if r else 0,
            rows_outside_window=r.rows_outside if r else 0,
            retries=self.retries,
        )


@dataclass(frozen=True)
class Guards:
    """When a day is refused rather than landed (config/vendors/_validation.yml)."""

    max_quarantine_share: float = 0.5
    min_rows_for_share_check: int = 20
    min_rows_all_rejected: int = 2
    min_share_of_landed_rows: float = 0.5


@cache
def guard_settings() -> Guards:
    raw = read_yaml(VALIDATION_FILE)
    defaults = Guards()
    return Guards(
        float(raw.get("max_quarantine_share", defaults.max_quarantine_share)),
        int(raw.get("min_rows_for_share_check", defaults.min_rows_for_share_check)),
        int(raw.get("min_rows_all_rejected", defaults.min_rows_all_rejected)),
        float(raw.get("min_share_of_landed_rows", defaults.min_share_of_landed_rows)),
    )


_DONE = object()


# Pages read ahead: more than a landing batch (BATCH_ROWS / 1,000-row pages), so the vendor
# keeps serving while a batch is mapped.
PREFETCH_PAGES = 2 * BATCH_ROWS // 1000


def _prefetch(
    connector: Connector, units: list[Unit], depth: int = PREFETCH_PAGES
) -> Iterator[tuple[Unit, list[Any] | None]]:
    """(unit, page) pairs read in a background thread; (unit, None) marks a finished unit."""
    channel: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                channel.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for unit in units:
                for page in connector.pages(unit):
                    if not put((unit, page)):
                        return
                if not put((unit, None)):
                    return
            put(_DONE)
        except BaseException as exc:
            put(exc)

    worker = threading.Thread(target=produce, name="ingest-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = channel.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def listing_window(unit: Unit, late_days: int) -> Window:
    """The local days a unit's rows may belong to: the days it lists, and the late-listing days
    before them (a late event is listed after its day, never before)."""
    if unit.start is not None and unit.end is not None:
        first, last = local_days_of(unit.start, unit.end)
    else:
        first, last = unit.covers or (unit.day, unit.day)
    return first - dt.timedelta(days=late_days), last


def _drift_suspected(rejected: int, rows: int, guards: Guards) -> bool:
    """Rows all rejected (from `min_rows_all_rejected`), or mostly (from `min_rows_for_share_check`)."""
    return (rejected == rows and rejected >= guards.min_rows_all_rejected) or (
        rejected >= guards.min_rows_for_share_check and rejected > guards.max_quarantine_share * rows
    )


def _top_reasons(builder: PartitionBuilder) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in builder.result.quarantine_reasons.most_common(3))


def guard_unit(builder: PartitionBuilder, unit: Unit, rows: int, undated: int) -> None:
    """The drift rule for the rows of a unit (a file or a query window) whose time could not
    be read: they belong to no day, so they are judged against the unit they came in, not the
    listing day they are kept under (two malformed rows of a monthly workbook are not a
    failed 1st)."""
    if undated and _drift_suspected(undated, rows, guard_settings()):
        raise FetchError(
            builder.site_id,
            builder.kind,
            f"{unit.label}: {undated} of {rows} rows have no readable time (top reasons: {_top_reasons(builder)}); "
            "schema drift, a wrong encoding or mapping suspected; nothing was landed from it",
        )


def guard_days(builder: PartitionBuilder, days: list[dt.date], *, allow_shrink: bool = False) -> list[dt.date]:
    """Refuse to land a day rather than replace good data with less; returns the days that
    delivered nothing where the landing zone holds rows (not delivered: their partitions stay).

    A day whose rows were all rejected (from `min_rows_all_rejected` rows), or mostly (drift,
    a wrong encoding or mapping, not a few bad rows), fails the run. So does a day that would
    keep under `min_share_of_landed_rows` of the rows its partition holds, unless the run
    allows shrinking (then the audit says which).
    """
    guards = guard_settings()
    site_id, kind = builder.site_id, builder.kind
    held_back = []
    for day in days:
        kept, rejected = builder.counts(day)
        if rejected and _drift_suspected(rejected, kept + rejected, guards):
            raise FetchError(
                site_id,
                kind,
                f"day {day}: {rejected} of {kept + rejected} rows rejected (top reasons: {_top_reasons(builder)}); "
                "schema drift, a wrong encoding or mapping suspected; the day was not landed",
            )
        before = builder.landed_rows(day)
        if not before or kept >= before * guards.min_share_of_landed_rows:
            continue
        if allow_shrink:
            builder.result.shrunk.append(f"{day}: {before} -> {kept}")
        elif not kept and not rejected:
            held_back.append(day)
        else:
            raise FetchError(
                site_id,
                kind,
                f"day {day}: the landed partition holds {before} rows and this run would replace them with {kept} "
                f"(under {guards.min_share_of_landed_rows:.0%}); the day was not landed. If the source really "
                "holds fewer rows now, re-run with --allow-shrink",
            )
    return held_back


def pull(
    site_id: str,
    kind: str,
    start: dt.date,
    end: dt.date,
    *,
    run_id: str | None = None,
    paths: DataPaths | None = None,
    registry: Registry | None = None,
    policy: RetryPolicy | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    progress: ProgressFn | None = None,
    state: StateStore | None = None,
    allow_shrink: bool = False,
) -> PullOutcome:
    """Land [start, end] of one site's kind; see the module docstring."""
    registry = registry or load_registry()
    paths = paths or data_paths()
    site = registry.site(site_id)
    source = site.source(kind)
    if source is None:
        raise KeyError(f"site {site_id} has no source for kind {kind!r} (config/pilots.yml)")
    run_id = run_id or new_run_id()
    state = state or StateStore(paths)
    outcome = PullOutcome(site_id, kind, source.shape, start, end, run_id)
    state.start(run_id, site_id, kind, source.shape, start, end, vendor=source.vendor_name)
    began = time.perf_counter()
    connector: Connector | None = None
    try:
        mapping = load_shape_mapping(source.vendor_name)
        kind_mapping = mapping.kind(kind)
        late = int(mapping.settings.get("late_listing_days", 0))
        days = days_between(start, end)
        builder = PartitionBuilder(
            kind,
            site_id,
            days,
            source_shape=source.shape,
            run_id=run_id,
            paths=paths,
            pseudonymizer=pseudonymizer,
            outside="skip",
        )
        outcome.result = builder.result
        connector = make_connector(site, kind, mapping, policy)
        units = connector.units(start, end + dt.timedelta(days=late))
        done = 0
        held_back: list[dt.date] = []

        def commit(ready: list[dt.date]) -> None:
            empty = guard_days(builder, ready, allow_shrink=allow_shrink)
            builder.set_aside(empty)
            held_back.extend(empty)
            builder.commit(ready)

        unit_rows, undated_before = 0, 0
        for unit, page in _prefetch(connector, units):
            if page is None:
                builder.flush()
                guard_unit(builder, unit, unit_rows, builder.undated_rejected - undated_before)
                unit_rows, undated_before = 0, builder.undated_rejected
                done += 1
                commit([d for d in builder.pending_days() if d <= unit.day - dt.timedelta(days=late)])
                if progress:
                    progress(done, len(units), outcome.rows_fetched)
                continue
            outcome.rows_fetched += len(page)
            unit_rows += len(page)
            builder.add_raw_page(page, kind_mapping, unit.day, listing_window(unit, late))
        missing = sorted(set(getattr(connector, "missing", [])) & set(days))
        builder.set_aside(missing)
        commit(builder.pending_days())
        if not outcome.figures.balanced:  # every fetched row landed, deduplicated, quarantined or outside
            raise AccountingError(f"{outcome.figures}: fetched rows unaccounted for")
        outcome.not_delivered = sorted(missing + held_back)
        if missing:
            detail = "; ".join(getattr(connector, "missing_detail", []))[:300]
            raise NotDeliveredError(site_id, kind, f"not delivered yet: {', '.join(map(str, missing))} ({detail})")
        if held_back:
            raise NotDeliveredError(
                site_id,
                kind,
                f"delivered nothing for {', '.join(map(str, held_back))}, which the landing zone holds rows for: "
                "kept as landed (not replaced by an empty day)",
            )
        connector.after_landing()  # every file read is landed: file drops retire theirs
        outcome.outcome = "success"
    except FetchError as exc:
        outcome.outcome, outcome.error = "failed", str(exc)
        raise
    except Exception as exc:
        failure = FetchError(site_id, kind, f"{type(exc).__name__}: {exc}")  # redacted
        outcome.outcome, outcome.error = "failed", str(failure)
        raise failure from exc
    finally:
        if connector is not None:
            outcome.retries = connector.retry.retries
            connector.close()
        outcome.duration_s = time.perf_counter() - began
        state.finish(
            run_id,
            site_id,
            kind,
            start,
            end,
            outcome.figures,
            outcome=outcome.outcome,
            duration_s=outcome.duration_s,
            error=outcome.error,
            allow_shrink=allow_shrink,
            shrunk_days=outcome.result.shrunk if outcome.result else None,
            notes=getattr(connector, "notes", None),
        )
    return outcome


def configured_pairs(registry: Registry, sites: list[str] | None, kinds: list[str] | None) -> list[tuple[str, str]]:
    """(site, kind) pairs the registry configures, filtered; unknown names are an error."""
    known_sites = [s.site_id for s in registry.sites]
    for site_id in sites or []:
        registry.site(site_id)
    pairs = []
    for site in registry.sites:
        if sites and site.site_id not in sites:
            continue
        for kind in site.sources:
            if kinds and kind not in kinds:
                continue
            pairs.append((site.site_id, kind))
    if not pairs:
        raise KeyError(f"no configured source matches sites={sites} kinds={kinds} (sites: {', '.join(known_sites)})")
    return pairs
