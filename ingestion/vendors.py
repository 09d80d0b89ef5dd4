"""Vendor files: one YAML per vendor under config/vendors/, checked before any row is read.

A vendor names its `protocol:` (`ingestion.protocols`, which decides the connector) and
holds everything the connector and the mapping read: field names, code lists, time
formats, file pattern or endpoints, settings, and under `kinds:` the kinds it delivers. A
site's source names its vendor in config/pilots.yml (`vendor:`); without one it uses the
protocol's default vendor, the file named like the protocol. Files starting with `_` are
policies (personal data, validation), not vendors.

A mistake (unknown protocol, kind or canonical field, a kind the protocol cannot carry, a
missing endpoint) fails here with the file and the key named, not deep in a run.
Directories of extra vendors (kept outside the repository, or a test's) are listed in
$SMARTCOMM_VENDOR_PATH (os.pathsep-separated); a vendor name found twice is an error, so one
file is always the one home of a vendor.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ingestion.mapping import VENDORS_DIR, ShapeMapping, parse_shape_mapping
from ingestion.protocols import PROTOCOLS, ProtocolSpec
from ingestion.registry import load_kinds, read_yaml

VENDOR_PATH_ENV = "SMARTCOMM_VENDOR_PATH"
Fail = Callable[[str, str], "VendorError"]  # (key, message) -> the error naming file and key
RULE_KEYS = frozenset({"from", "map", "default", "const", "tz", "format", "optional"})
KIND_KEYS = frozenset({"fields", "record_id"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class VendorError(ValueError):
    """A vendor file is missing or invalid; the message names the file and the key."""


def vendor_dirs(directory: Path | None = None) -> tuple[Path, ...]:
    """Where vendor files are looked up: `directory` alone, else config/vendors/ and $SMARTCOMM_VENDOR_PATH."""
    if directory is not None:
        return (Path(directory),)
    extra = [Path(p) for p in os.environ.get(VENDOR_PATH_ENV, "").split(os.pathsep) if p]
    return (VENDORS_DIR, *extra)


def vendor_file(name: str, directory: Path | None = None) -> Path:
    """The one file of vendor `name`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise VendorError(f"vendor {name!r}: a vendor name is lower-case letters, digits and _ (a file name)")
    dirs = vendor_dirs(directory)
    found = [d / f"{name}.yml" for d in dirs if (d / f"{name}.yml").is_file()]
    if not found:
        raise VendorError(f"vendor {name!r}: no file {name}.yml in {', '.join(str(d) for d in dirs)}")
    if len(found) > 1:
        raise VendorError(f"vendor {name!r}: defined twice ({', '.join(map(str, found))}); keep one file")
    return found[0]


def load_vendor(name: str, directory: Path | None = None) -> ShapeMapping:
    """The validated mapping of vendor `name` (re-read when its file changes)."""
    path = vendor_file(name, directory)
    stat = path.stat()
    return _load(path, stat.st_mtime_ns, stat.st_size)


@cache
def _load(path: Path, mtime_ns: int, size: int) -> ShapeMapping:
    try:
        raw = read_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise VendorError(f"{path}: unreadable ({exc})") from None
    check_vendor(raw, str(path))
    try:
        return parse_shape_mapping(raw, str(path), vendor=path.stem)
    except ValueError as exc:
        raise VendorError(str(exc)) from None


def vendor_protocol(name: str, directory: Path | None = None) -> str:
    """The protocol a vendor speaks (what a site's source lands as `_source_shape`)."""
    return load_vendor(name, directory).shape


def protocol_kinds(directory: Path = VENDORS_DIR) -> dict[str, frozenset[str]]:
    """Kinds each protocol delivers through the committed vendors of `directory`: the (protocol,
    kind) pairs that can land, hence the staging models dbt needs (`SHAPE_KINDS`)."""
    kinds: dict[str, set[str]] = {name: set() for name in PROTOCOLS}
    for path in sorted(directory.glob("*.yml")):
        if path.name.startswith("_"):
            continue
        mapping = load_vendor(path.stem, directory)
        kinds[mapping.shape].update(mapping.kinds)
    return {name: frozenset(found) for name, found in kinds.items()}


# -- checks ------------------------------------------------------------------------------------


def check_vendor(raw: Any, origin: str) -> None:
    """Raise VendorError naming `origin` and the key of the first mistake."""

    def fail(key: str, message: str) -> VendorError:
        return VendorError(f"{origin}: {key}: {message}")

    if not isinstance(raw, dict):
        raise VendorError(f"{origin}: expected a mapping at the top level")
    name = raw.get("protocol")
    if name is None:
        hint = " (the key `shape` is now `protocol`)" if "shape" in raw else ""
        raise fail("protocol", f"missing: name the protocol the vendor speaks{hint}")
    if name not in PROTOCOLS:
        raise fail("protocol", f"unknown protocol {name!r} (known: {', '.join(sorted(PROTOCOLS))})")
    spec = PROTOCOLS[name]
    for key in spec.required:
        if key not in raw:
            raise fail(key, f"required by protocol {name}")
    if "file_pattern" in raw:
        _check_pattern(raw["file_pattern"], spec, fail)
    kinds = raw.get("kinds")
    if not isinstance(kinds, dict) or not kinds:
        raise fail("kinds", "a mapping of the kinds the vendor delivers (config/kinds.yml) to their fields")
    contract = load_kinds()["kinds"]
    for kind, entry in kinds.items():
        where = f"kinds.{kind}"
        if kind not in contract:
            raise fail(where, f"unknown kind (config/kinds.yml kinds: {', '.join(contract)})")
        if spec.cannot_carry(kind):
            raise fail(
                where, f"protocol {name} cannot carry {kind} (it carries: {', '.join(sorted(spec.carries or ()))})"
            )
        if not isinstance(entry, dict):
            raise fail(where, "expected a mapping with `fields` (and `record_id`)")
        for key in entry:
            if key not in KIND_KEYS | set(spec.kind_required):
                raise fail(
                    f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(KIND_KEYS | set(spec.kind_required)))})"
                )
        for key in spec.kind_required:
            if not entry.get(key):
                raise fail(f"{where}.{key}", f"required by protocol {name}")
        _check_record_id(entry.get("record_id"), f"{where}.record_id", fail)
        _check_fields(kind, contract[kind], entry.get("fields"), f"{where}.fields", fail)


def _check_pattern(pattern: Any, spec: ProtocolSpec, fail: Fail) -> None:
    if not isinstance(pattern, str) or not pattern:
        raise fail("file_pattern", "expected a glob pattern (text)")
    if "/" in pattern or "\\" in pattern:
        raise fail("file_pattern", "a pattern of file names in the drop folder, not a path")
    try:
        used = {field for _, field, _, _ in string.Formatter().parse(pattern) if field is not None}
    except ValueError as exc:
        raise fail("file_pattern", f"unreadable pattern ({exc})") from None
    fills = ", ".join("{" + p + "}" for p in spec.placeholders)
    for field in used - set(spec.placeholders):
        raise fail("file_pattern", f"unknown placeholder {{{field}}} (protocol {spec.name} fills: {fills})")
    for field in set(spec.placeholders) - used - {"format"}:
        raise fail("file_pattern", f"needs the placeholder {{{field}}} (protocol {spec.name} fills: {fills})")


def _check_record_id(value: Any, key: str, fail: Fail) -> None:
    names = value if isinstance(value, list) else [value] if value is not None else []
    if not all(isinstance(n, str) and n for n in names):
        raise fail(key, "a vendor field name or a list of them")


def _check_fields(kind: str, contract: dict[str, Any], fields: Any, key: str, fail: Fail) -> None:
    from ingestion.pii import personal_data_policy

    if not isinstance(fields, dict) or not fields:
        raise fail(key, "a mapping of canonical fields to vendor fields")
    policy = personal_data_policy()
    columns = contract["columns"]
    produced = {r.column for r in policy.pseudonyms.get(kind, ())} | {r.column for r in policy.derived.get(kind, ())}
    allowed = set(columns) | policy.consumed_fields(kind)
    for target, spec in fields.items():
        where = f"{key}.{target}"
        if target not in allowed:
            raise fail(
                where,
                f"unknown canonical field (config/kinds.yml {kind} columns: {', '.join(columns)}; or a personal "
                "input of config/vendors/_personal_data.yml)",
            )
        _check_rule(spec, columns.get(target, {}).get("type"), where, fail)
    for column, col in columns.items():
        if not col.get("nullable") and column not in fields and column not in produced:
            raise fail(key, f"no rule for {column}, which config/kinds.yml requires for {kind}")


def _check_rule(spec: Any, column_type: str | None, where: str, fail: Fail) -> None:
    if isinstance(spec, str) and spec:
        return
    if isinstance(spec, list):
        if not spec or not all(isinstance(s, str) and s for s in spec):
            raise fail(where, "header alternatives are a non-empty list of vendor field names")
        return
    if not isinstance(spec, dict):
        raise fail(where, "a vendor field name, a list of alternatives, or a mapping (from, map, default, tz, format)")
    for key in spec:
        if key not in RULE_KEYS:
            raise fail(f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(RULE_KEYS))})")
    if "const" in spec:
        return
    source = spec.get("from")
    if source is not None:
        _check_rule(source, None, f"{where}.from", fail)
    if "map" in spec and not isinstance(spec["map"], dict):
        raise fail(f"{where}.map", "a code list: vendor code -> canonical value")
    if spec.get("tz"):
        try:
            ZoneInfo(str(spec["tz"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise fail(f"{where}.tz", f"unknown time zone {spec['tz']!r} (e.g. UTC, Asia/Shanghai)") from None
    if "format" in spec:
        fmt = spec["format"]
        if not isinstance(fmt, str) or "%" not in fmt:
            raise fail(f"{where}.format", f"a strptime format such as '%Y/%m/%d %H:%M', not {fmt!r}")
        if "map" in spec:
            raise fail(f"{where}.format", "a code list (map) and a time format exclude each other")
        if column_type not in ("timestamp", "date"):
            raise fail(
                f"{where}.format", f"a time format fits a timestamp or date column, not {column_type or 'this field'}"
            )
