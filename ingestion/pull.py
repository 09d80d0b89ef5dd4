"""Pull one (site, kind) over a range of local days into the landing zone, with audit.

    pull(site_id, kind, start, end, *, run_id=None, paths=None, registry=None, policy=None,
         pseudonymizer=None, progress=None) -> PullOutcome

The range is inclusive local days (Asia/Shanghai). The connector also reads the
`late_listing_days` after `end` (config/vendors/<shape>.yml), because a late event is
listed after its true day; each day's partition is then rebuilt whole from the source, so
pulling a range again (or an overlapping one) replaces, never appends. Days are written as
soon as every listing that can hold their rows has been read, so memory stays at a few days.
Pages are fetched in a background thread (up to PREFETCH_PAGES ahead) while earlier ones are mapped.

Failures raise FetchError naming site, kind and cause after the audit row is closed as
`failed`; days already written stay valid (each is atomic and complete on its own). A run
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
from ingestion.landing import BATCH_ROWS, VALIDATION_FILE, LandingResult, PartitionBuilder, new_run_id
from ingestion.mapping import load_shape_mapping
from ingestion.paths import DataPaths, data_paths
from ingestion.pii import Pseudonymizer
from ingestion.registry import Registry, load_registry, read_yaml
from ingestion.state import LoadFigures, StateStore
from ingestion.timeutil import days_between

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
            retries=self.retries,
        )


@cache
def _guard_settings() -> tuple[float, int]:
    raw = read_yaml(VALIDATION_FILE)
    return float(raw.get("max_quarantine_share", 0.5)), int(raw.get("min_rows_for_share_check", 20))


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


def _check_share(builder: PartitionBuilder, days: list[dt.date], site_id: str, kind: str) -> None:
    """Refuse to land a day whose rows were mostly rejected: that is drift, not bad rows."""
    max_share, min_rows = _guard_settings()
    for day in days:
        kept, rejected = builder.counts(day)
        if rejected >= min_rows and rejected > max_share * (kept + rejected):
            top = builder.result.quarantine_reasons.most_common(3)
            raise FetchError(
                site_id,
                kind,
                f"day {day}: {rejected} of {kept + rejected} rows rejected (top reasons {top}); "
                "schema drift or a wrong mapping suspected, day not landed",
            )


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
        for unit, page in _prefetch(connector, units):
            if page is None:
                done += 1
                ready = [d for d in builder.pending_days() if d <= unit.day - dt.timedelta(days=late)]
                _check_share(builder, ready, site_id, kind)
                builder.commit(ready)
                if progress:
                    progress(done, len(units), outcome.rows_fetched)
                continue
            outcome.rows_fetched += len(page)
            builder.add_raw_page(page, kind_mapping, unit.day)
        missing = sorted(set(getattr(connector, "missing", [])) & set(days))
        ready = [d for d in builder.pending_days() if d not in missing]
        _check_share(builder, ready, site_id, kind)
        builder.commit(ready)
        outcome.not_delivered = missing
        if missing:
            detail = "; ".join(getattr(connector, "missing_detail", []))[:300]
            raise NotDeliveredError(site_id, kind, f"not delivered yet: {', '.join(map(str, missing))} ({detail})")
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
