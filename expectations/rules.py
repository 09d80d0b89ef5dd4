"""What the suites check, as data: the landing contract (config/kinds.yml) and expectations/rules.yml.

Kept apart from the GX code so a reviewer reads one place for "what", another for "how".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ingestion.registry import load_kinds

RULES_FILE = Path(__file__).resolve().parent / "rules.yml"

# pandas dtypes (as GX's type check names them) that a contract type may arrive as after
# DuckDB reads the Parquet file; nullable integer/boolean columns become pandas extension types.
PANDAS_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("object", "str", "string"),
    "timestamp": ("datetime64[us]", "datetime64[ns]", "datetime64[ms]", "datetime64[s]"),
    "date": ("datetime64[us]", "datetime64[ns]", "datetime64[ms]", "datetime64[s]"),
    "double": ("float64", "float32"),
    "integer": ("int64", "int32", "int16", "Int64", "Int32", "Int16"),
    "boolean": ("bool", "boolean"),
}


@dataclass(frozen=True)
class ColumnRule:
    name: str
    type: str
    nullable: bool
    values: tuple[str, ...] | None
    range: tuple[float, float] | None
    pii: bool


@dataclass(frozen=True)
class KindRules:
    """Everything the landing suite of one kind checks."""

    kind: str
    day_column: str
    natural_key: tuple[str, ...]
    columns: tuple[ColumnRule, ...]
    time_order: tuple[tuple[str, str], ...]
    row_counts: dict[str, Any]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def pii_columns(self) -> frozenset[str]:
        return frozenset(c.name for c in self.columns if c.pii)

    def column(self, name: str) -> ColumnRule:
        return next(c for c in self.columns if c.name == name)


@cache
def load_rules() -> dict[str, Any]:
    """expectations/rules.yml, parsed."""
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def severity(rule: str) -> str:
    """The severity of a landing rule; an unknown rule name is a programming error."""
    return load_rules()["severity"][rule]


def mart_severity(rule: str) -> str:
    return load_rules()["marts"]["severity"][rule]


def _column(name: str, spec: dict[str, Any], *, metadata: bool = False) -> ColumnRule:
    rng = spec.get("range")
    values = spec.get("values")
    return ColumnRule(
        name=name,
        type=spec["type"],
        # The metadata columns are required, except the vendor's own record id.
        nullable=(name == "_source_record_id") if metadata else bool(spec.get("nullable", False)),
        values=tuple(str(v) for v in values) if values else None,
        range=(float(rng[0]), float(rng[1])) if rng else None,
        pii=bool(spec.get("pii_pseudonym", False)),
    )


@cache
def kind_rules(kind: str) -> KindRules:
    """The rules of one landed kind: contract columns + metadata columns + rules.yml."""
    contract = load_kinds()
    if kind not in contract["kinds"]:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(contract['kinds'])}")
    entry = contract["kinds"][kind]
    columns = [_column(name, spec) for name, spec in entry["columns"].items()]
    columns += [_column(name, spec, metadata=True) for name, spec in contract["metadata"].items()]
    rules = load_rules()
    return KindRules(
        kind=kind,
        day_column=entry["day_column"],
        natural_key=tuple(entry["natural_key"]),
        columns=tuple(columns),
        time_order=tuple(tuple(pair) for pair in rules.get("time_order", {}).get(kind, [])),
        row_counts=rules["row_counts"][kind],
    )


def landed_kinds() -> list[str]:
    return list(load_kinds()["kinds"])
