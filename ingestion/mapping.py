"""Vendor field mappings (config/vendors/<vendor>.yml): vendor record -> canonical record.

A mapping entry per canonical field is one of
    event_id: eventId                        # a vendor field (dotted path for nesting)
    gate_id: [doorIndexCode, doorCode]       # synonyms, first present wins (renames, drifting headers)
    direction: {from: inAndOutType, map: {"1": in, "0": out}}   # code lists; unknown code -> quarantine
    tailgating: {from: tailgate, default: false}
    vendor: {const: isc}
    event_time: {from: happenTime, tz: UTC}  # naive text in a zone other than Asia/Shanghai
    rating: {from: 满意度, optional: true}    # a file without the column is noted, not refused
    applied_time: {from: 受理时间, format: "%Y/%m/%d %H:%M"}   # strptime; naive = Asia/Shanghai
Codes are compared as text, so 1, "1" and 1.0 all match "1". The mapping knows nothing about
the transport: the landing writer reads a page's fields through it (ingestion.columnar).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ingestion.contract import RowError
from ingestion.registry import CONFIG_DIR
from ingestion.timeutil import to_local_naive

VENDORS_DIR = CONFIG_DIR / "vendors"
# A file connector marks a line it could not parse with these keys (the raw text under PARSE_RAW).
PARSE_ERROR = "_parse_error"
PARSE_RAW = "_raw"
_MISSING = object()


def _code(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).strip()


@dataclass(frozen=True)
class FieldRule:
    target: str
    sources: tuple[str, ...]
    codes: dict[str, Any] | None = None
    default: Any = _MISSING
    const: Any = _MISSING
    tz: ZoneInfo | None = None
    # Files with a header row: a mapped header that is absent fails the file unless optional
    # (then the field is null and the connector notes it for the load audit).
    optional: bool = False
    time_format: str | None = None  # strptime format of text times (YAML `format`)

    def extract(self, record: dict[str, Any]) -> Any:
        if self.const is not _MISSING:
            return self.const
        value: Any = None
        for source in self.sources:
            value = _lookup(record, source)
            if value is not None and value != "":
                break
        if value is None or value == "":
            return None if self.default is _MISSING else self.default
        if self.codes is not None:
            return self.map_code(value)
        if self.time_format is not None and isinstance(value, str):
            return self.parse_time(value)
        if self.tz is not None and isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                parsed = to_local_naive(value)  # non-ISO text carries no offset
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.tz)
        return value

    def parse_time(self, value: str) -> dt.datetime:
        """Text in the vendor's declared format: an ambiguous or compact form (20260105143000,
        05/01/2026) is never guessed. Naive results are local (or in `tz`); RowError otherwise."""
        try:
            parsed = dt.datetime.strptime(value.strip(), self.time_format or "")
        except ValueError:
            raise RowError(
                f"{self.target}: {value!r} does not match {self.time_format!r} in {self.sources[0]}"
            ) from None
        if parsed.tzinfo is None and self.tz is not None:
            return parsed.replace(tzinfo=self.tz)
        return parsed

    def map_code(self, value: Any) -> Any:
        """A vendor code through the code list (blank -> default); RowError names an unknown one."""
        if value is None or value == "":
            return None if self.default is _MISSING else self.default
        assert self.codes is not None
        code = _code(value)
        if code not in self.codes:
            raise RowError(f"{self.target}: unknown code {value!r} in {self.sources[0]}")
        return self.codes[code]


def _lookup(record: dict[str, Any], path: str) -> Any:
    if "." not in path:
        return record.get(path)
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _rule(target: str, spec: Any) -> FieldRule:
    if isinstance(spec, str):
        return FieldRule(target, (spec,))
    if isinstance(spec, list):
        return FieldRule(target, tuple(spec))
    if not isinstance(spec, dict):
        raise ValueError(f"mapping for {target}: expected a field name, a list or a mapping, got {spec!r}")
    if "const" in spec:
        return FieldRule(target, (), const=spec["const"])
    sources = spec.get("from", target)
    codes = spec.get("map")
    return FieldRule(
        target,
        tuple(sources) if isinstance(sources, list) else (sources,),
        codes={_code(k): v for k, v in codes.items()} if codes is not None else None,
        default=spec.get("default", _MISSING),
        tz=ZoneInfo(spec["tz"]) if spec.get("tz") else None,
        optional=bool(spec.get("optional", False)),
        time_format=str(spec["format"]) if spec.get("format") else None,
    )


@dataclass(frozen=True)
class KindMapping:
    """How one kind arrives in one shape: endpoint/file settings and the field rules."""

    kind: str
    rules: tuple[FieldRule, ...]
    record_id: tuple[str, ...]
    settings: dict[str, Any]

    def record_id_of(self, record: Any) -> str | None:
        """The vendor's record id ("a|b" for composite ids), None when absent."""
        if not isinstance(record, dict) or not self.record_id:
            return None
        ids = [_lookup(record, name) for name in self.record_id]
        return "|".join(str(i) for i in ids) if all(i is not None and i != "" for i in ids) else None

    def record_ids(self, records: list[dict[str, Any]]) -> list[str | None]:
        if not self.record_id:
            return [None] * len(records)
        if len(self.record_id) == 1 and "." not in self.record_id[0]:
            name = self.record_id[0]
            return [None if (v := r.get(name)) is None or v == "" else str(v) for r in records]
        return [self.record_id_of(r) for r in records]

    def known_fields(self) -> set[str]:
        names = {s.split(".")[0] for rule in self.rules for s in rule.sources}
        return names | {n.split(".")[0] for n in self.record_id}


@dataclass(frozen=True)
class ShapeMapping:
    """One vendor file: its protocol (`shape`, the landed `_source_shape`), settings and kinds."""

    shape: str
    settings: dict[str, Any]
    kinds: dict[str, KindMapping]
    vendor: str = ""
    origin: str = ""

    def kind(self, kind: str) -> KindMapping:
        if kind not in self.kinds:
            where = self.origin or f"config/vendors/{self.vendor or self.shape}.yml"
            raise KeyError(f"vendor {self.vendor or self.shape} has no mapping for kind {kind!r} ({where})")
        return self.kinds[kind]


def parse_shape_mapping(raw: dict[str, Any], origin: str, vendor: str = "") -> ShapeMapping:
    """The mapping of a vendor file already checked by `ingestion.vendors` (protocol, kinds, keys)."""
    try:
        kinds = {}
        for kind, entry in (raw.get("kinds") or {}).items():
            fields = entry.get("fields") or {}
            record_id = entry.get("record_id") or []
            kinds[kind] = KindMapping(
                kind=kind,
                rules=tuple(_rule(target, spec) for target, spec in fields.items()),
                record_id=tuple(record_id) if isinstance(record_id, list) else (record_id,),
                settings={k: v for k, v in entry.items() if k not in {"fields", "record_id"}},
            )
        settings = {k: v for k, v in raw.items() if k != "kinds"}
        protocol = raw["protocol"]
        return ShapeMapping(shape=protocol, settings=settings, kinds=kinds, vendor=vendor or protocol, origin=origin)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{origin}: invalid vendor mapping ({exc})") from None


def load_shape_mapping(vendor: str, directory: Path | None = None) -> ShapeMapping:
    """The mapping of one vendor (config/vendors/<vendor>.yml; a protocol's default vendor has
    the protocol's name), validated; see `ingestion.vendors.load_vendor`."""
    from ingestion.vendors import load_vendor

    return load_vendor(vendor, directory)
