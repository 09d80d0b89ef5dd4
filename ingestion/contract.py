"""The landing contract (config/kinds.yml) turned into Arrow schemas and row validators.

kinds.yml is the single source of truth for what a landed partition of a kind holds; this
module only interprets it, so adding a column there changes every writer and reader alike.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import pyarrow as pa

from ingestion.registry import load_kinds
from ingestion.timeutil import to_local_date, to_local_naive

METADATA_COLUMNS = ("site_id", "_run_id", "_source_shape", "_source_record_id", "_fetched_at_utc")
# Fallback when config/kinds.yml has no top-level `string_max_length`: a vendor file can hold a
# field of megabytes, and no id, code or name of the contract is that long.
DEFAULT_STRING_MAX_LENGTH = 256

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "double": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
}


class RowError(ValueError):
    """A row breaks the contract; the message is the quarantine reason."""


_TRUE = {"true", "1", "yes", "y", "t", "是", "有"}
_FALSE = {"false", "0", "no", "n", "f", "否", "无"}


def _is_blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _to_string(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _to_double(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("boolean is not a number")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise ValueError("not a finite number")
    return number


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("boolean is not an integer")
    if isinstance(value, int):
        return value
    number = float(value)
    if not number.is_integer():
        raise ValueError("not a whole number")
    return int(number)


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "timestamp": to_local_naive,
    "date": to_local_date,
    "double": _to_double,
    "integer": _to_integer,
    "boolean": _to_boolean,
}


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool
    values: frozenset[str] | None
    range: tuple[float, float] | None
    pii_pseudonym: bool
    max_length: int | None = None  # characters, string columns only

    def convert(self, value: Any) -> Any:
        """The value in the contract's type, or RowError with a reason fit for quarantine."""
        return self.converter(value)

    @cached_property
    def converter(self) -> Callable[[Any], Any]:
        """A converter specialised for this column (the hot path: called per row and column)."""
        name, nullable, values, rng, kind = self.name, self.nullable, self.values, self.range, self.type
        max_length = self.max_length if kind == "string" else None
        general = _CONVERTERS[kind]
        fast_type = {"string": str, "timestamp": dt.datetime, "boolean": bool, "double": float, "integer": int}.get(
            kind
        )

        def convert(value: Any) -> Any:
            if value is None:
                if nullable:
                    return None
                raise RowError(f"{name}: missing (required)")
            if type(value) is fast_type and kind != "timestamp":
                converted = value.strip() if kind == "string" else value
                if kind == "string" and not converted:
                    if nullable:
                        return None
                    raise RowError(f"{name}: missing (required)")
                if kind == "double" and converted != converted:
                    if nullable:
                        return None
                    raise RowError(f"{name}: missing (required)")
            elif fast_type is dt.datetime and type(value) is dt.datetime and value.tzinfo is None:
                converted = value
            else:
                if _is_blank(value):
                    if nullable:
                        return None
                    raise RowError(f"{name}: missing (required)")
                try:
                    converted = general(value)
                except (ValueError, TypeError, OverflowError) as exc:
                    raise RowError(f"{name}: cannot read {value!r} as {kind} ({exc})") from None
            if max_length is not None and len(converted) > max_length:
                # the length, never the value: an over-long cell is often a whole pasted record
                raise RowError(f"{name}: {len(converted)} characters, longer than max_length {max_length}")
            if values is not None and converted not in values:
                raise RowError(f"{name}: {converted!r} is not one of {sorted(values)}")
            if rng is not None and not (rng[0] <= converted <= rng[1]):
                raise RowError(f"{name}: {converted!r} outside [{rng[0]}, {rng[1]}]")
            return converted

        return convert


@dataclass(frozen=True)
class KindContract:
    kind: str
    day_column: str
    natural_key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    schema: pa.Schema

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def pseudonym_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.pii_pseudonym)

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    @property
    def day_type(self) -> str:
        return self.column(self.day_column).type

    def day_of(self, row: dict[str, Any]) -> dt.date:
        value = row[self.day_column]
        return value.date() if isinstance(value, dt.datetime) else value

    def key_of(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[c] for c in self.natural_key)


@cache
def contract(kind: str) -> KindContract:
    """The contract of one kind; KeyError names the known kinds."""
    spec = load_kinds()
    kinds = spec["kinds"]
    default_max = int(spec.get("string_max_length", DEFAULT_STRING_MAX_LENGTH))
    if kind not in kinds:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(kinds)}")
    entry = kinds[kind]
    columns = []
    for name, col in entry["columns"].items():
        values = col.get("values")
        rng = col.get("range")
        columns.append(
            ColumnSpec(
                name=name,
                type=col["type"],
                nullable=bool(col.get("nullable", False)),
                values=frozenset(values) if values else None,
                range=(float(rng[0]), float(rng[1])) if rng else None,
                pii_pseudonym=bool(col.get("pii_pseudonym", False)),
                max_length=int(col.get("max_length", default_max)) if col["type"] == "string" else None,
            )
        )
    fields = [pa.field(c.name, _ARROW_TYPES[c.type], nullable=c.nullable) for c in columns]
    for name, meta in spec["metadata"].items():
        fields.append(pa.field(name, _ARROW_TYPES[meta["type"]], nullable=name == "_source_record_id"))
    return KindContract(
        kind=kind,
        day_column=entry["day_column"],
        natural_key=tuple(entry["natural_key"]),
        columns=tuple(columns),
        schema=pa.schema(fields),
    )


def all_kinds() -> list[str]:
    return list(load_kinds()["kinds"])
