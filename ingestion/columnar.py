"""The landing path: a page of vendor records to an Arrow table of the contract, vectorized.

Python touches each row once per needed field (a list comprehension of `dict.get`); the rest
is Arrow compute: code lists (`index_in` + `take`), type casts, required / value-list /
range checks, ordered times, the local day, and the pseudonyms, whose HMAC is computed
once per distinct value. A column Arrow cannot vouch for is converted value by value with
the contract's own converters (and a code list with the mapping's own `map_code`), catching
RowError per value: each rule has one implementation, and a row that breaks one gets its
reason in `Reasons` (the first rule it breaks, in mapping then contract order) while the
other rows of the page land from the same arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.contract import ColumnSpec, KindContract, RowError
from ingestion.mapping import _MISSING, FieldRule, KindMapping
from ingestion.pii import Pseudonymizer, PseudonymRule

# Epoch milliseconds from here on are after Asia/Shanghai's last daylight-saving change
# (1991), so local time is UTC+8 by arithmetic; older or smaller numbers take the converters.
_FIXED_OFFSET_FROM_MS = 694_224_000_000  # 1992-01-01T00:00:00Z
_MAX_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z
_SHANGHAI_OFFSET_MS = 8 * 3600 * 1000
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, OverflowError, ValueError)


Reasons = list[str | None]  # per row of a page: the first rule it breaks (its quarantine reason)


def note(reasons: Reasons, row: int, reason: str) -> None:
    """Record `reason` for `row` unless an earlier rule already failed it (the first one wins)."""
    if reasons[row] is None:
        reasons[row] = reason


def each(convert: Callable[[Any], Any], values: list[Any], reasons: Reasons, offset: int = 0) -> list[Any]:
    """`convert` value by value; a value it refuses (RowError) is None with its row's reason
    (`values` are the page's rows from `offset` on)."""
    out: list[Any] = []
    append = out.append
    for i, value in enumerate(values, start=offset):
        try:
            append(convert(value))
        except RowError as exc:
            note(reasons, i, str(exc))
            append(None)
    return out


@dataclass
class Column:
    """One canonical column of a page, as Python values, an Arrow array, or both (lazily)."""

    values: list[Any] | None = None
    array: pa.Array | None = None

    def as_list(self) -> list[Any]:
        if self.values is None:
            assert self.array is not None
            self.values = self.array.to_pylist()
        return self.values

    def as_arrow(self) -> pa.Array | None:
        """An Arrow array with the type Arrow infers (None when the values mix types)."""
        if self.array is None:
            assert self.values is not None
            try:
                self.array = pa.array(self.values, from_pandas=False)
            except _ARROW_ERRORS:
                return None
        return self.array


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def _is_blank_text(arr: pa.Array) -> pa.Array:
    """True where a string value is null, empty or whitespace only."""
    return pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arr), ""), True)


class Page:
    """A batch of vendor records and the values of each field read so far (each read once)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self._fields: dict[str, list[Any]] = {}
        self._arrays: dict[str, pa.Array | None] = {}

    @classmethod
    def from_table(cls, table: pa.Table) -> Page:
        """Records that are columns already (a generator's Arrow table): each field is its
        column, and a row is read as a dict only where a rule needs one (RecordRows)."""
        page = cls(RecordRows(table))  # type: ignore[arg-type]
        page._arrays = {name: table.column(name).combine_chunks() for name in table.column_names}
        return page

    def __len__(self) -> int:
        return len(self.records)

    def field(self, name: str) -> list[Any]:
        values = self._fields.get(name)
        if values is None:
            if isinstance(self.records, RecordRows):
                arr = self._arrays.get(name)
                values = arr.to_pylist() if arr is not None else [None] * len(self.records)
            else:
                values = [r.get(name) for r in self.records]
            self._fields[name] = values
        return values

    def array(self, name: str) -> pa.Array | None:
        """A field as the Arrow array Arrow infers (None when its values mix types)."""
        if name not in self._arrays:
            self._arrays[name] = Column(self.field(name)).as_arrow()
        return self._arrays[name]


class RecordRows(Sequence[dict[str, Any]]):
    """The rows of an Arrow table as dicts, made one at a time when asked for (a quarantined
    row's raw record, a rule that reads whole records)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.table.slice(index.start or 0, (index.stop or len(self)) - (index.start or 0)).to_pylist()
        return self.table.slice(index, 1).to_pylist()[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.table.to_batches(max_chunksize=4096):
            yield from batch.to_pylist()


def _field_values(rule: FieldRule, page: Page, fallback: Any) -> list[Any]:
    """The raw vendor values of a plain rule (first non-blank source), blanks as `fallback`."""
    values = page.field(rule.sources[0])
    for source in rule.sources[1:]:  # synonyms: fill the blanks from the next name
        if None in values or "" in values:
            values = [w if v is None or v == "" else v for v, w in zip(values, page.field(source), strict=True)]
    if "" in values or (fallback is not None and None in values):
        values = [fallback if v is None or v == "" else v for v in values]
    return values


def _field_column(rule: FieldRule, page: Page, fallback: Any) -> Column:
    """_field_values() in Arrow: blanks ("" or missing) are nulls, synonyms are coalesced and
    the rest take `fallback`; values Arrow cannot type alike are left to _field_values()."""
    merged: pa.Array | None = None
    for source in rule.sources:
        arr = page.array(source)
        if arr is None:
            return Column(_field_values(rule, page, fallback))  # mixed types: Python decides
        if pa.types.is_string(arr.type):
            empty = pc.equal(arr, "")
            if _any(empty):
                arr = pc.if_else(empty, pa.scalar(None, pa.string()), arr)
        if merged is None or pa.types.is_null(merged.type):
            merged = arr
        elif not pa.types.is_null(arr.type):
            if arr.type != merged.type:
                return Column(_field_values(rule, page, fallback))
            merged = pc.coalesce(merged, arr)
        if not merged.null_count:
            break
    assert merged is not None
    if merged.null_count and fallback is not None:
        if pa.types.is_null(merged.type):
            return Column([fallback] * len(page))
        try:
            merged = pc.fill_null(merged, pa.scalar(fallback, merged.type))
        except _ARROW_ERRORS:
            return Column(_field_values(rule, page, fallback))
    return Column(array=merged)


def _code_text(arr: pa.Array) -> pa.Array | None:
    """Vendor codes as the mapping's text keys (`mapping._code`), None for types left to Python."""
    if pa.types.is_string(arr.type):
        return pc.utf8_trim_whitespace(arr)
    if pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type):
        return arr.cast(pa.string())
    return None


def _mapped_codes(rule: FieldRule, raw: Column, reasons: Reasons) -> Column:
    """A coded field (blanks null) through its code list; an unknown code is its row's reason."""
    assert rule.codes is not None
    fallback = None if rule.default is _MISSING else rule.default
    arr = raw.as_arrow()
    text = _code_text(arr) if arr is not None else None
    if arr is None or text is None or pa.types.is_null(arr.type):
        if arr is not None and pa.types.is_null(arr.type):
            return Column([fallback] * len(raw.as_list()))
        return Column(each(rule.map_code, raw.as_list(), reasons))
    blank = pc.is_null(arr)
    if pa.types.is_string(arr.type):
        blank = pc.or_(blank, pc.equal(arr, ""))
    keys = list(rule.codes)
    positions = pc.index_in(text, value_set=pa.array(keys, pa.string()))
    if _any(pc.and_(pc.is_null(positions), pc.invert(blank))):
        return Column(each(rule.map_code, raw.as_list(), reasons))
    try:
        targets = pa.array([rule.codes[k] for k in keys], from_pandas=False)
    except _ARROW_ERRORS:
        return Column(each(rule.map_code, raw.as_list(), reasons))
    mapped = targets.take(positions)
    if fallback is not None and mapped.null_count:
        try:
            mapped = pc.fill_null(mapped, pa.scalar(fallback, targets.type))
        except _ARROW_ERRORS:
            return Column(each(rule.map_code, raw.as_list(), reasons))
    return Column(array=mapped)


def canonical_columns(mapping: KindMapping, page: Page, needed: set[str], reasons: Reasons) -> dict[str, Column]:
    """The canonical fields of a page that the contract or the pseudonyms need (coded ones always:
    an unknown code quarantines the row even in a field that is not landed), in rule order."""
    out: dict[str, Column] = {}
    records, n = page.records, len(page)
    for rule in mapping.rules:
        if rule.target not in needed and rule.codes is None:
            continue
        if rule.const is not _MISSING:
            out[rule.target] = Column([rule.const] * n)
        elif rule.tz is not None or rule.time_format is not None or any("." in s for s in rule.sources):
            out[rule.target] = Column(each(_extractor(rule), records, reasons))
        elif rule.codes is not None:
            out[rule.target] = _mapped_codes(rule, _field_column(rule, page, None), reasons)
        else:
            out[rule.target] = _field_column(rule, page, None if rule.default is _MISSING else rule.default)
    return out


def _extractor(rule: FieldRule) -> Callable[[dict[str, Any]], Any]:
    """rule.extract, an unreadable zoned time (ValueError) as a RowError reason."""

    def extract(record: dict[str, Any]) -> Any:
        try:
            return rule.extract(record)
        except RowError:
            raise
        except ValueError as exc:
            raise RowError(f"{rule.target}: {exc}") from None

    return extract


# -- contract types -------------------------------------------------------------------------------


def _as_string(spec: ColumnSpec, arr: pa.Array) -> pa.Array | None:
    if pa.types.is_integer(arr.type):
        return arr.cast(pa.string())
    if not pa.types.is_string(arr.type):
        return None
    present = arr.drop_null()
    if not len(present):
        return arr
    if not pc.all(pc.equal(pc.utf8_trim_whitespace(present), present)).as_py():
        return None  # padded text: the converter strips it
    lengths = pc.utf8_length(present)
    if _any(pc.equal(lengths, 0)):
        return None  # empty text is missing
    if spec.max_length is not None and pc.max(lengths).as_py() > spec.max_length:
        return None  # over-long text: the converter gives the row its reason
    return arr


def _as_timestamp(spec: ColumnSpec, arr: pa.Array) -> pa.Array | None:
    if pa.types.is_string(arr.type):
        present = arr.drop_null()
        if len(present) and not (
            pc.all(pc.equal(pc.utf8_length(present), 25)).as_py() and pc.all(pc.ends_with(present, "+08:00")).as_py()
        ):
            return None
        return pc.utf8_slice_codeunits(arr, 0, 19).cast(pa.timestamp("us"))
    if pa.types.is_integer(arr.type):  # epoch milliseconds, UTC
        bounds = pc.min_max(arr).as_py()
        if bounds["min"] is not None and not (bounds["min"] >= _FIXED_OFFSET_FROM_MS and bounds["max"] <= _MAX_MS):
            return None
        return pc.add(arr.cast(pa.int64()), _SHANGHAI_OFFSET_MS).cast(pa.timestamp("ms")).cast(pa.timestamp("us"))
    if pa.types.is_timestamp(arr.type) and arr.type.tz is None:
        return arr.cast(pa.timestamp("us"))
    if pa.types.is_date32(arr.type):
        return arr.cast(pa.timestamp("us"))
    return None


def _as_double(spec: ColumnSpec, arr: pa.Array) -> pa.Array | None:
    if pa.types.is_floating(arr.type):
        if _any(pc.is_nan(arr)):
            return None
        return arr.cast(pa.float64())
    if pa.types.is_integer(arr.type):
        return arr.cast(pa.float64())
    return None


def _as_same(expected: Callable[[pa.DataType], bool]) -> Callable[[ColumnSpec, pa.Array], pa.Array | None]:
    return lambda spec, arr: arr if expected(arr.type) else None


_VECTORIZED: dict[str, Callable[[ColumnSpec, pa.Array], pa.Array | None]] = {
    "string": _as_string,
    "timestamp": _as_timestamp,
    "double": _as_double,
    "integer": _as_same(pa.types.is_int64),
    "boolean": _as_same(pa.types.is_boolean),
    "date": _as_same(pa.types.is_date32),
}


# A column Arrow cannot vouch for as a whole is tried again in chunks of this many rows: a
# few odd values in a batch (a vendor's malformed rows) leave the other chunks to Arrow.
CHUNK_ROWS = 512


def typed(spec: ColumnSpec, arrow_type: pa.DataType, column: Column | None, n: int, reasons: Reasons) -> pa.Array:
    """A canonical column in the contract's type, checked in bulk; where Arrow cannot vouch
    for a chunk of it, value by value with the contract's converter (a refused value: null and
    its reason)."""
    if column is None:
        if not spec.nullable:
            each(spec.converter, [None] * n, reasons)
        return pa.nulls(n, arrow_type)
    whole = _vectorized(spec, arrow_type, column.as_arrow(), n)
    if whole is not None:
        return whole
    values = column.as_list()
    parts = []
    for lo in range(0, n, CHUNK_ROWS):
        chunk = values[lo : lo + CHUNK_ROWS]
        part = _vectorized(spec, arrow_type, Column(chunk).as_arrow(), len(chunk)) if n > CHUNK_ROWS else None
        if part is None:
            part = pa.array(each(spec.converter, chunk, reasons, offset=lo), arrow_type, from_pandas=False)
        parts.append(part)
    return pa.concat_arrays(parts) if len(parts) > 1 else parts[0]


def _vectorized(spec: ColumnSpec, arrow_type: pa.DataType, arr: pa.Array | None, n: int) -> pa.Array | None:
    """The column in the contract's type by Arrow compute, checked; None where Arrow cannot
    vouch for every value (mixed types, a value its kernels refuse, a failed check)."""
    if arr is None:
        return None
    if pa.types.is_null(arr.type):
        out = pa.nulls(n, arrow_type)
    else:
        try:
            out = _VECTORIZED[spec.type](spec, arr)
        except _ARROW_ERRORS:
            return None
    if out is None or not _checked(spec, out):
        return None
    return out if out.type == arrow_type else out.cast(arrow_type)


def _checked(spec: ColumnSpec, arr: pa.Array) -> bool:
    """Required, value-list and range checks; False sends the column to the converters."""
    if arr.null_count and not spec.nullable:
        return False
    if spec.values is not None and arr.null_count < len(arr):
        allowed = pa.array(sorted(spec.values), pa.string())
        if not pc.all(pc.is_in(arr.drop_null(), value_set=allowed)).as_py():
            return False
    if spec.range is not None and arr.null_count < len(arr):
        bounds = pc.min_max(arr).as_py()
        if not (spec.range[0] <= bounds["min"] and bounds["max"] <= spec.range[1]):
            return False
    return True


def pseudonym_column(
    rule: PseudonymRule, canonical: dict[str, Column], pseudonymizer: Pseudonymizer, n: int
) -> pa.Array:
    """The keyed pseudonym of the first non-blank source, HMAC'd once per distinct value."""
    key_for = pseudonymizer.key_for
    sources = [canonical[s] for s in rule.sources if s in canonical]
    arrays = []
    for source in sources:
        arr = source.as_arrow()
        if arr is not None and pa.types.is_integer(arr.type):
            arr = arr.cast(pa.string())
        if arr is not None and pa.types.is_null(arr.type):
            continue
        if arr is None or not pa.types.is_string(arr.type):
            return _pseudonyms_by_row(rule, sources, key_for, n)
        arrays.append(pc.if_else(_is_blank_text(arr), pa.scalar(None, pa.string()), arr))
    if not arrays:
        return pa.nulls(n, pa.string())
    picked = arrays[0] if len(arrays) == 1 else pc.coalesce(*arrays)
    return pseudonymizer.keys_for(rule.entity, picked)


def _pseudonyms_by_row(
    rule: PseudonymRule, sources: list[Column], key_for: Callable[[str, Any], str], n: int
) -> pa.Array:
    """Sources of mixed types: the rule value by value."""
    lists = [s.as_list() for s in sources]
    picked = [next((v for v in vs if not _blank(v)), None) for vs in zip(*lists, strict=True)]
    return pa.array([None if v is None else key_for(rule.entity, v) for v in picked], pa.string())


def _blank(value: Any) -> bool:
    return value is None or (type(value) is str and not value.strip())


def record_ids(mapping: KindMapping, page: Page) -> pa.Array:
    """The vendor's record ids as text (null when absent)."""
    if len(mapping.record_id) == 1 and "." not in mapping.record_id[0]:
        arr = page.array(mapping.record_id[0])
        if arr is not None and pa.types.is_null(arr.type):
            return pa.nulls(len(page), pa.string())
        if arr is not None and pa.types.is_integer(arr.type):
            return arr.cast(pa.string())
        if arr is not None and pa.types.is_string(arr.type):
            return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    return pa.array(mapping.record_ids(page.records), pa.string())


def source_record_ids(ids: pa.Array, contract: KindContract, columns: dict[str, pa.Array]) -> pa.Array:
    """Record ids, the natural key ("a|b") where the vendor sent none."""
    if not ids.null_count:
        return ids
    key = contract.natural_key
    if len(key) == 1 and pa.types.is_string(columns[key[0]].type):
        return pc.coalesce(ids, columns[key[0]])
    missing = pc.indices_nonzero(pc.is_null(ids))
    parts = [columns[c].take(missing).to_pylist() for c in key]
    filled = ids.to_pylist()
    for i, values in zip(missing.to_pylist(), zip(*parts, strict=True), strict=True):
        filled[i] = "|".join(str(v) for v in values)
    return pa.array(filled, pa.string())


def local_days(contract: KindContract, columns: dict[str, pa.Array]) -> pa.Array:
    day = columns[contract.day_column]
    return day.cast(pa.date32()) if contract.day_type == "timestamp" else day


def check_order(columns: dict[str, pa.Array], pairs: tuple[tuple[str, str], ...], reasons: Reasons) -> None:
    """A row whose second time precedes its first (a negative duration) gets that reason."""
    for first, second in pairs:
        late = pc.fill_null(pc.less(columns[second], columns[first]), False)
        if _any(late):
            rows = pc.indices_nonzero(late)
            a, b = columns[first].take(rows).to_pylist(), columns[second].take(rows).to_pylist()
            for i, x, y in zip(rows.to_pylist(), a, b, strict=True):
                note(reasons, i, f"{second}: {y} is before {first} {x} (negative duration)")


def constant(value: Any, arrow_type: pa.DataType, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, arrow_type), n)


def latest_per_key(table: pa.Table, key: tuple[str, ...]) -> pa.Table:
    """One row per natural key, the last one received, in arrival order."""
    n = table.num_rows
    if n < 2:
        return table
    if len(key) == 1 and pc.count_distinct(table.column(key[0]), mode="all").as_py() == n:
        return table
    positions = pa.array(range(n), pa.int64())
    latest = (
        table.select(list(key))
        .append_column("_position", positions)
        .group_by(list(key), use_threads=False)
        .aggregate([("_position", "max")])
        .column("_position_max")
    )
    if len(latest) == n:
        return table
    return table.take(latest.take(pc.sort_indices(latest)))
