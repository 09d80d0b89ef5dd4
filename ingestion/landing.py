"""The landing writer: canonical records in, atomic Parquet day partitions out.

Public API (used by the connectors, the dbt developers' fixtures and the benchmarks):

    land_records(kind, site_id, day, records, *, source_shape, run_id, paths=None,
                 pseudonymizer=None, fetched_at_utc=None) -> LandingResult
        Land one local day of one kind for one site. `records` are dicts in canonical form:
        the column names of config/kinds.yml, where `*_key` columns may instead be given as
        the clear-text fields listed in config/vendors/_personal_data.yml (id_card, name,
        phone, plate, person_id, household_id, birth_date, ...). Times may be datetimes
        (naive = Asia/Shanghai), ISO 8601 text with or without offset, or epoch ms (UTC).
        An optional `_source_record_id` names the vendor's record; otherwise the natural key.
        The records take the vendors' path (a page read through a mapping that names each
        canonical field after itself): typed, pseudonymized (HMAC-SHA256, key $SMARTCOMM_PSEUDONYM_KEY),
        validated against the contract and deduplicated on the natural key (last one wins);
        bad rows go to landing/_quarantine/<kind>/site=<id>/date=<day>/ with their reason
        and the redacted raw record (ingestion.pii.redact). The partition is written even when
        empty, to a temp name in the same directory and renamed into place: a re-run replaces
        it. The first landing records the key's fingerprint and every later one must use the
        same key (ingestion.landing_key).

    PartitionBuilder(kind, site_id, days, *, source_shape, run_id, ..., outside="quarantine"|"skip")
        The same for several days at once: .add(record, raw=..., fallback_day=...) for a
        canonical record, .add_records(records) for many, .add_table(table) for canonical
        records that are an Arrow table, .add_raw_page(vendor_rows, kind_mapping, listing_day,
        window) for a page in a vendor's shape, .reject(raw, reason, day),
        then .commit(days=None) writes the days. There is one path: a page becomes Arrow
        columns (ingestion.columnar) and each rule yields a per-row reason, so a bad row is
        quarantined with its reason and the rest of its page lands from the same arrays.

Nothing here knows a vendor: connectors map vendor fields to canonical ones first.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingestion import columnar
from ingestion.contract import METADATA_COLUMNS, KindContract, contract
from ingestion.landing_key import check_landing_key
from ingestion.mapping import PARSE_ERROR, PARSE_RAW, FieldRule, KindMapping
from ingestion.paths import DataPaths, data_paths, make_private_dir, private_file
from ingestion.pii import Pseudonymizer, apply_personal_data_policy, personal_data_policy, redact
from ingestion.registry import CONFIG_DIR, read_yaml
from ingestion.timeutil import utc_now

DATA_FILE = "data.parquet"
Window = tuple[dt.date, dt.date]  # first and last local day a listing's rows may belong to
BATCH_ROWS = 16_384
QUARANTINE_FILE = "quarantine.parquet"

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("site_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw_record", pa.string(), nullable=True),
        pa.field("_run_id", pa.string(), nullable=False),
        pa.field("_source_shape", pa.string(), nullable=False),
        pa.field("_source_record_id", pa.string(), nullable=True),
        pa.field("_fetched_at_utc", pa.timestamp("us"), nullable=False),
    ]
)


@dataclass
class LandingResult:
    """What one landing did; the audit table records these figures."""

    kind: str
    site_id: str
    days: list[dt.date]
    rows_in: int = 0
    rows_landed: int = 0
    rows_deduplicated: int = 0
    rows_quarantined: int = 0
    rows_outside: int = 0
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    partitions: list[Path] = field(default_factory=list)
    # days re-landed with fewer rows than they held, allowed by the run: "day: before -> after"
    shrunk: list[str] = field(default_factory=list)

    @property
    def rows_accounted(self) -> int:
        """Rows with a known fate: landed, deduplicated, quarantined or outside the landed days."""
        return self.rows_landed + self.rows_deduplicated + self.rows_quarantined + self.rows_outside


class AccountingError(RuntimeError):
    """Rows were handed to the landing writer that are neither landed, deduplicated,
    quarantined nor outside the landed days: a bug, and nothing is committed past it."""


def _reason_class(reason: str) -> str:
    """A short, countable class of a quarantine reason ("event_time: cannot read ..." -> "event_time")."""
    return reason.split(":", 1)[0]


def atomic_write_table(table: pa.Table, target: Path) -> None:
    """Write `table` next to `target` under a temp name (0600 in 0700 folders), fsync, then
    rename over it."""
    make_private_dir(target.parent)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)  # left by a killed run; never visible to readers (.tmp)
    tmp = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        pq.write_table(table, tmp, compression="zstd")
        private_file(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _json_default(value: Any) -> Any:
    return str(value)


class PartitionBuilder:
    """Collects records for some local days of one (kind, site); commit() writes every day."""

    def __init__(
        self,
        kind: str,
        site_id: str,
        days: Iterable[dt.date],
        *,
        source_shape: str,
        run_id: str,
        paths: DataPaths | None = None,
        pseudonymizer: Pseudonymizer | None = None,
        fetched_at_utc: dt.datetime | None = None,
        outside: str = "quarantine",
        write: Callable[[pa.Table, Path], None] = atomic_write_table,
    ) -> None:
        self.contract: KindContract = contract(kind)
        self._write = write  # puts one partition file in place (bench/scale.py skips its fsync)
        self.kind = kind
        self.site_id = site_id
        self.days = sorted(set(days))
        if not self.days:
            raise ValueError("at least one day is needed")
        self._day_set = set(self.days)
        self.source_shape = source_shape
        self.run_id = run_id
        self.paths = paths or data_paths()
        self.pseudonymizer = pseudonymizer or Pseudonymizer()
        check_landing_key(self.paths, self.pseudonymizer)  # before anything is written
        self.fetched_at_utc = fetched_at_utc or utc_now()
        if outside not in ("quarantine", "skip"):
            raise ValueError(f"outside must be 'quarantine' or 'skip', not {outside!r}")
        # "skip": a record of a day outside `days` belongs to another run's partition (a
        # connector reading ahead for late events); it is counted, not quarantined.
        self.outside = outside
        self._committed: set[dt.date] = set()
        self._names = self.contract.schema.names
        self._buffers: dict[dt.date, _DayBuffer] = {d: self._new_buffer() for d in self.days}
        self._quarantine: dict[dt.date, list[dict[str, Any]]] = {d: [] for d in self.days}
        # Quarantined rows whose own local day could not be read (an unparseable time): they
        # are kept under their listing's day, which says nothing about that day's rows.
        self._undated: Counter[dt.date] = Counter()
        self.undated_rejected = 0
        self.result = LandingResult(kind, site_id, list(self.days))
        policy = personal_data_policy()
        self._pseudonym_rules = policy.pseudonyms.get(kind, ())
        self._derived_rules = policy.derived.get(kind, ())
        self._pseudonym_columns = set(self.contract.pseudonym_columns)
        self._personal = self._pseudonym_columns | {r.column for r in self._derived_rules}
        self._specs = {c.name: c for c in self.contract.columns}
        # pseudonyms with an ID-card check, and derived attributes, follow pii.py's rule row by row
        self._personal_by_row = bool(self._derived_rules) or any(r.validate for r in self._pseudonym_rules)
        # the canonical fields a page is read for: the contract's and the personal rules' sources
        self._needed_fields = (
            set(self._names)
            | {s for r in self._pseudonym_rules for s in r.sources}
            | {s for r in self._derived_rules for s in r.sources}
        )
        self._canonical = KindMapping(
            kind=kind,
            rules=tuple(FieldRule(name, (name,)) for name in sorted(self._needed_fields - set(METADATA_COLUMNS))),
            record_id=("_source_record_id",),
            settings={},
        )
        self._batch: list[tuple[list[Any], KindMapping, dt.date | None, Window | None]] = []
        self._batch_rows = 0

    def _new_buffer(self) -> _DayBuffer:
        return _DayBuffer(self.contract.schema, self.contract.natural_key)

    # -- adding -----------------------------------------------------------------------------
    def add(
        self,
        record: dict[str, Any],
        *,
        raw: Any = None,
        fallback_day: dt.date | None = None,
        fetched_at_utc: dt.datetime | None = None,
        window: Window | None = None,
    ) -> bool:
        """Add one canonical record (a page of one, see add_records); False when it was not kept
        (quarantined, or outside the landed days). With `window` (the listing's days, late
        listing included), a record whose day falls outside it is quarantined whatever day it
        names; `raw` is what its quarantine record keeps instead of `record`."""
        self.flush()
        before = sum(b.received for b in self._buffers.values())
        raws = None if raw is None else [raw]
        self._page([record], self._canonical, fallback_day, window, raws=raws, fetched_at_utc=fetched_at_utc)
        return sum(b.received for b in self._buffers.values()) > before

    def add_records(self, records: Iterable[dict[str, Any]]) -> None:
        """Add canonical records (the column names of config/kinds.yml, or the clear personal
        fields the policy turns into keys): the same path as a vendor's page, through a mapping
        that reads each canonical field under its own name."""
        page: list[Any] = []
        for record in records:
            page.append(record)
            if len(page) >= BATCH_ROWS:
                self.add_raw_page(page, self._canonical, None)
                page = []
        if page:
            self.add_raw_page(page, self._canonical, None)

    def add_table(self, table: pa.Table, fetched_at_utc: dt.datetime | None = None) -> None:
        """Add canonical records that are an Arrow table already (the benchmarks' scale
        generator): the same path as add_records, without making a dict of every row."""
        self.flush()
        self._page(columnar.RecordRows(table), self._canonical, None, fetched_at_utc=fetched_at_utc)

    def add_raw_page(
        self, rows: list[Any], mapping: KindMapping, day: dt.date | None, window: Window | None = None
    ) -> None:
        """Map and add one page of vendor records listed on `day` (whose rows may belong to the
        days of `window`: see add()).

        Consecutive pages of one listing day are batched up to BATCH_ROWS rows, so Arrow's
        cost per call is paid per batch rather than per page; flush() maps the batch
        (counts() and commit() flush). A bad row is quarantined with its reason and the
        others land from the same arrays, in arrival order.
        """
        if self._batch and (self._batch[0][1] is not mapping or self._batch[0][2:] != (day, window)):
            self.flush()
        self._batch.append((rows, mapping, day, window))
        self._batch_rows += len(rows)
        if self._batch_rows >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Map the batched pages (see add_raw_page)."""
        batch, self._batch, self._batch_rows = self._batch, [], 0
        if not batch:
            return
        _, mapping, day, window = batch[0]
        self._page(
            batch[0][0] if len(batch) == 1 else [raw for rows, *_ in batch for raw in rows], mapping, day, window
        )

    def _page(
        self,
        rows: list[Any],
        mapping: KindMapping,
        listing_day: dt.date | None,
        window: Window | None = None,
        raws: list[Any] | None = None,
        fetched_at_utc: dt.datetime | None = None,
    ) -> None:
        """The landing path: a page mapped, typed, pseudonymized and checked as columns; each
        row breaking a rule is quarantined with the first rule's reason, the rest are stored."""
        n = len(rows)
        if not n:
            return
        self.result.rows_in += n
        reasons: columnar.Reasons = [None] * n
        if isinstance(rows, columnar.RecordRows):  # columns already: add_table
            self._map_page(
                columnar.Page.from_table(rows.table), rows, mapping, listing_day, window, reasons, fetched_at_utc
            )
            return
        quarantined_raw = list(rows) if raws is None else list(raws)
        records = rows
        if not all(type(raw) is dict and PARSE_ERROR not in raw for raw in rows):
            records = []
            for i, raw in enumerate(rows):
                if type(raw) is not dict:
                    reasons[i] = f"record: expected an object, got {type(raw).__name__}"
                    records.append({})
                elif PARSE_ERROR in raw:
                    reasons[i] = raw[PARSE_ERROR]  # a line the connector could not parse
                    quarantined_raw[i] = raw.get(PARSE_RAW)
                    records.append({})
                else:
                    records.append(raw)
        self._map_page(columnar.Page(records), quarantined_raw, mapping, listing_day, window, reasons, fetched_at_utc)

    def _map_page(
        self,
        page: columnar.Page,
        quarantined_raw: Sequence[Any],
        mapping: KindMapping,
        listing_day: dt.date | None,
        window: Window | None,
        reasons: columnar.Reasons,
        fetched_at_utc: dt.datetime | None,
    ) -> None:
        n = len(page)
        canonical = columnar.canonical_columns(mapping, page, self._needed_fields, reasons)
        schema = self.contract.schema
        out: dict[str, pa.Array] = {}
        for spec in self.contract.columns:
            if spec.name not in self._personal:
                out[spec.name] = columnar.typed(
                    spec, schema.field(spec.name).type, canonical.get(spec.name), n, reasons
                )
        if self._personal_by_row:
            self._personal_rows(canonical, out, n, reasons)
        else:
            for rule in self._pseudonym_rules:
                keys = columnar.pseudonym_column(rule, canonical, self.pseudonymizer, n)
                if keys.null_count and not self._specs[rule.column].nullable:
                    columnar.each(self._specs[rule.column].converter, keys.to_pylist(), reasons)
                out[rule.column] = keys
        columnar.check_order(out, _ordered_times().get(self.kind, ()), reasons)
        vendor_ids = columnar.record_ids(mapping, page)
        ids = columnar.source_record_ids(vendor_ids, self.contract, out)
        days = columnar.local_days(self.contract, out)
        column = self.contract.day_column
        kept = [True] * n
        skip = self.outside == "skip"
        first, last = self.days[0], self.days[-1]
        distinct = [d for d in pc.unique(days).to_pylist() if d is not None]
        inside = all(
            (window is None or window[0] <= d <= window[1]) and d in self._day_set and d not in self._committed
            for d in distinct
        )
        for i, day in enumerate(
            () if inside else days.to_pylist()
        ):  # rows are checked one by one only if one is outside
            if reasons[i] is None and day is not None:
                if window is not None and not window[0] <= day <= window[1]:
                    reasons[i] = f"{column}: local day {day} is outside the listing window {window[0]}..{window[1]}"
                elif day not in self._day_set or day in self._committed:
                    if skip:
                        self.result.rows_outside += 1
                        kept[i] = False
                    else:
                        reasons[i] = f"{column}: local day {day} is outside the landed days {first}..{last}"
        if any(r is not None for r in reasons):
            day_list = days.to_pylist()
            vendor_list = vendor_ids.to_pylist()
            id_list: list[Any] | None = None
            for i, reason in enumerate(reasons):
                if reason is None:
                    continue
                kept[i] = False
                source_id = vendor_list[i]
                if reason.startswith(f"{column}: local day "):  # the row was read: its landed id
                    id_list = id_list if id_list is not None else ids.to_pylist()
                    source_id = id_list[i]
                self._reject(quarantined_raw[i], reason, listing_day, source_id, dated=day_list[i] is not None)
        for name, value in (("site_id", self.site_id), ("_run_id", self.run_id), ("_source_shape", self.source_shape)):
            out[name] = columnar.constant(value, pa.string(), n)
        out["_source_record_id"] = ids
        out["_fetched_at_utc"] = columnar.constant(fetched_at_utc or self.fetched_at_utc, pa.timestamp("us"), n)
        arrays = [out[name] for name in schema.names]
        if not all(kept):
            mask = pa.array(kept, pa.bool_())
            arrays = [a.filter(mask) for a in arrays]
            days = days.filter(mask)
        table = pa.Table.from_arrays(arrays, schema=schema)
        if not table.num_rows:
            return
        distinct_days = pc.unique(days).to_pylist()
        if len(distinct_days) == 1:
            self._buffers[distinct_days[0]].store_table(table)
        else:
            for d in distinct_days:
                self._buffers[d].store_table(table.filter(pc.equal(days, pa.scalar(d, pa.date32()))))

    def _personal_rows(
        self, canonical: dict[str, columnar.Column], out: dict[str, pa.Array], n: int, reasons: columnar.Reasons
    ) -> None:
        """Pseudonyms with an ID-card check and derived attributes: pii.apply_personal_data_policy
        row by row (its one implementation), against the row's converted reference values."""
        names = list(canonical)
        lists = [canonical[name].as_list() for name in names]
        at = {r.at for r in self._derived_rules if r.at}
        references = {name: out[name].to_pylist() for name in at if name in out}
        personal = sorted(self._personal, key=list(self._specs).index)
        values: dict[str, list[Any]] = {name: [] for name in personal}
        for i, row in enumerate(zip(*lists, strict=True)):
            record = dict(zip(names, row, strict=True))
            try:
                derived = apply_personal_data_policy(
                    self.kind, record, self.pseudonymizer, {name: refs[i] for name, refs in references.items()}
                )
            except ValueError as exc:
                columnar.note(reasons, i, str(exc))
                derived = {}
            for name in personal:
                values[name].append(
                    derived.get(name) if name in self._pseudonym_columns else derived.get(name, record.get(name))
                )
        for name in personal:
            spec = self._specs[name]
            converted = columnar.each(spec.converter, values[name], reasons)
            out[name] = pa.array(converted, self.contract.schema.field(name).type, from_pandas=False)

    def reject(self, raw: Any, reason: str, day: dt.date | None = None, source_record_id: str | None = None) -> None:
        """Quarantine a record the connector could not even map (unparseable line, bad cell)."""
        self.flush()
        self.result.rows_in += 1
        self._reject(raw, reason, day, source_record_id)

    def _reject(self, raw: Any, reason: str, day: dt.date | None, source_record_id: Any, *, dated: bool = True) -> None:
        if self.outside == "skip" and (day not in self._day_set or day in self._committed):
            self.result.rows_outside += 1  # the run that lands `day` quarantines it
            return
        target = day if day in self._day_set else self.days[0]
        if not dated:
            self._undated[target] += 1
            self.undated_rejected += 1
        # No clear personal data in any column: the raw record in whatever shape it came, the
        # reason (a converter may quote a value) and the vendor's record id.
        self._quarantine[target].append(
            {
                "site_id": self.site_id,
                "kind": self.kind,
                "day": target,
                "reason": redact(reason, self.pseudonymizer, record=True),  # reasons quote raw values
                "raw_record": orjson.dumps(
                    self.pseudonymizer.redact(raw), default=_json_default, option=orjson.OPT_NON_STR_KEYS
                ).decode()
                if raw is not None
                else None,
                "_run_id": self.run_id,
                "_source_shape": self.source_shape,
                "_source_record_id": None
                if source_record_id is None
                else redact(str(source_record_id), self.pseudonymizer),
                "_fetched_at_utc": self.fetched_at_utc,
            }
        )
        self.result.quarantine_reasons[_reason_class(reason)] += 1

    # -- writing ----------------------------------------------------------------------------
    def counts(self, day: dt.date) -> tuple[int, int]:
        """(rows kept, rows quarantined whose own day it is) so far for one day; the rows kept
        under it because their time could not be read are judged with their page instead."""
        self.flush()
        buffer = self._buffers.get(day)
        return (len(buffer) if buffer else 0), len(self._quarantine.get(day, [])) - self._undated[day]

    def pending_days(self) -> list[dt.date]:
        return [d for d in self.days if d not in self._committed]

    def landed_rows(self, day: dt.date) -> int:
        """Rows the day's partition holds on disk now (0 when it does not exist)."""
        target = self.paths.partition(self.kind, self.site_id, day.isoformat()) / DATA_FILE
        return pq.ParquetFile(target).metadata.num_rows if target.exists() else 0

    def set_aside(self, days: Iterable[dt.date]) -> None:
        """Leave `days` unwritten: their partitions keep what they hold and the rows received for
        them count as outside this run's landed days (the run that lands the day lands them)."""
        self.flush()
        for day in days:
            if day in self._committed or day not in self._day_set:
                continue
            self.result.rows_outside += self._buffers[day].received + len(self._quarantine[day])
            self._committed.add(day)
            self._buffers[day] = self._new_buffer()
            self._quarantine[day] = []
            self._undated.pop(day, None)

    def check_accounts(self) -> None:
        """Every row received has a fate or is still pending in a day not yet written."""
        pending = sum(self._buffers[d].received + len(self._quarantine[d]) for d in self.pending_days())
        result = self.result
        if result.rows_in != result.rows_accounted + pending:
            raise AccountingError(
                f"{self.site_id} {self.kind}: {result.rows_in} rows received but {result.rows_landed} landed + "
                f"{result.rows_deduplicated} deduplicated + {result.rows_quarantined} quarantined + "
                f"{result.rows_outside} outside the landed days + {pending} pending"
            )

    def commit(self, days: Iterable[dt.date] | None = None) -> LandingResult:
        """Write the days' partitions (empty ones too) and quarantines, atomically per file.

        Without `days`, every day not yet written. A written day takes no more records. The
        rows' accounts are checked before anything is written (AccountingError).
        """
        self.flush()
        self.check_accounts()
        todo = (
            self.pending_days()
            if days is None
            else [d for d in days if d in self._day_set and d not in self._committed]
        )
        for day in todo:
            buffer = self._buffers[day]
            table = buffer.table()
            self.result.rows_deduplicated += buffer.received - table.num_rows
            iso = day.isoformat()
            target = self.paths.partition(self.kind, self.site_id, iso) / DATA_FILE
            self._write(table, target)
            self.result.partitions.append(target)
            self.result.rows_landed += table.num_rows
            qtarget = self.paths.quarantine_partition(self.kind, self.site_id, iso) / QUARANTINE_FILE
            rejected = self._quarantine[day]
            self.result.rows_quarantined += len(rejected)
            if rejected:
                qcolumns = {name: [r[name] for r in rejected] for name in QUARANTINE_SCHEMA.names}
                atomic_write_table(pa.Table.from_pydict(qcolumns, schema=QUARANTINE_SCHEMA), qtarget)
            else:
                qtarget.unlink(missing_ok=True)  # a re-run that no longer rejects anything
            self._committed.add(day)
            self._buffers[day] = self._new_buffer()
            self._quarantine[day] = []
            self._undated.pop(day, None)
        return self.result


class _DayBuffer:
    """One day's rows as Arrow tables in arrival order; the natural key keeps only the latest
    version of a record."""

    __slots__ = ("_latest", "key", "parts", "received", "schema")

    def __init__(self, schema: pa.Schema, key: tuple[str, ...]) -> None:
        self.schema = schema
        self.key = key
        self.parts: list[pa.Table] = []
        self.received = 0
        self._latest: pa.Table | None = None

    def __len__(self) -> int:
        return self.table().num_rows

    def store_table(self, table: pa.Table) -> None:
        self.parts.append(table)
        self.received += table.num_rows
        self._latest = None

    def table(self) -> pa.Table:
        """The day's rows, one per natural key (the last received, at its arrival position)."""
        if self._latest is None:
            whole = pa.concat_tables(self.parts) if self.parts else self.schema.empty_table()
            self._latest = columnar.latest_per_key(whole, self.key)
            self.parts = [self._latest]
        return self._latest


VALIDATION_FILE = CONFIG_DIR / "vendors" / "_validation.yml"


@cache
def _ordered_times() -> dict[str, tuple[tuple[str, str], ...]]:
    """Time pairs where the second must not precede the first (config/vendors/_validation.yml)."""
    raw = read_yaml(VALIDATION_FILE)
    return {kind: tuple((a, b) for a, b in pairs) for kind, pairs in (raw.get("ordered_times") or {}).items()}


def land_records(
    kind: str,
    site_id: str,
    day: dt.date | str,
    records: Iterable[dict[str, Any]],
    *,
    source_shape: str,
    run_id: str,
    paths: DataPaths | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    fetched_at_utc: dt.datetime | None = None,
) -> LandingResult:
    """Land one local day of canonical records (see the module docstring)."""
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    builder = PartitionBuilder(
        kind,
        site_id,
        [day],
        source_shape=source_shape,
        run_id=run_id,
        paths=paths,
        pseudonymizer=pseudonymizer,
        fetched_at_utc=fetched_at_utc,
    )
    builder.add_records(records)
    return builder.commit()


def new_run_id(prefix: str = "run") -> str:
    """A sortable, unique run id: <prefix>-<UTC time>-<random>."""
    return f"{prefix}-{utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
