"""Simulator data in the landing zone, for the dbt tests and the transform benchmark.

Two ways to land the simulator's canonical records (`World.generate`, no HTTP):

- `land_with_ingestion`: through `ingestion.landing.land_records`, the same column path a
  connector's pages take (type, pseudonymize, validate, quarantine). Used by the tests.
- `land_fast`: the same partitions written column-wise (pseudonyms computed once per
  distinct value with the ingestion Pseudonymizer), for benchmark volumes where the row
  path would dominate the run. It skips row validation, so it is only for fault-free data.

Both write one partition file per configured (site, kind, day), empty when nothing
happened, and the registry's reference tables (ingestion.reference).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.contract import contract
from ingestion.landing import DATA_FILE, atomic_write_table, land_records
from ingestion.paths import DataPaths
from ingestion.pii import Pseudonymizer, personal_data_policy
from ingestion.reference import export_reference
from ingestion.registry import Registry, parse_registry


def day_range(start: dt.date, end: dt.date) -> list[dt.date]:
    """Local days from start to end, inclusive."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def scaled_registry(registry: Registry, factor: float) -> Registry:
    """The registry with residents, households and device counts scaled (entrances and key
    points kept), so tests can land a month of every site in seconds."""
    raw = registry.model_dump(mode="json")
    for site in raw["sites"]:
        for count_field in ("residents", "households", "cameras", "fire_sensors", "iot_devices"):
            if site[count_field]:
                site[count_field] = max(1, round(site[count_field] * factor))
        site["households"] = min(site["households"], site["residents"])
        site["cameras"] = max(site["cameras"], site["key_points"]) if site["cameras"] else 0
    return parse_registry(raw, f"<registry scaled by {factor}>")


@dataclass
class LandedFigures:
    partitions: int = 0
    rows: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)  # kind -> rows sent to quarantine


def land_with_ingestion(
    world,  # simulator.World; not imported here so the platform never depends on it
    registry: Registry,
    days: Iterable[dt.date],
    paths: DataPaths,
    run_id: str,
    kinds: Iterable[str] | None = None,
    sites: Iterable[str] | None = None,
    pseudonymizer: Pseudonymizer | None = None,
) -> LandedFigures:
    """Land generated records through ingestion.landing.land_records (the connectors' path)."""
    export_reference(paths.root, registry)
    figures = LandedFigures()
    pseudonymizer = pseudonymizer or Pseudonymizer()
    wanted_sites = set(sites) if sites else None
    wanted_kinds = set(kinds) if kinds else None
    for site in registry.sites:
        if wanted_sites and site.site_id not in wanted_sites:
            continue
        for kind, source in site.sources.items():
            if wanted_kinds and kind not in wanted_kinds:
                continue
            for day in days:
                records = world.generate(site.site_id, kind, day).to_pylist()
                result = land_records(
                    kind,
                    site.site_id,
                    day,
                    records,
                    source_shape=source.shape,
                    run_id=run_id,
                    paths=paths,
                    pseudonymizer=pseudonymizer,
                )
                if result.rows_quarantined:
                    figures.quarantined[kind] = figures.quarantined.get(kind, 0) + result.rows_quarantined
                figures.partitions += len(result.partitions)
                figures.rows += result.rows_landed
    return figures


def _pseudonym_column(table: pa.Table, sources: tuple[str, ...], entity: str, pseudonymizer: Pseudonymizer) -> pa.Array:
    present = [table.column(name) for name in sources if name in table.column_names]
    if not present:
        return pa.nulls(table.num_rows, pa.string())
    values = pc.coalesce(*[pc.cast(col, pa.string()) for col in present]) if len(present) > 1 else present[0]
    # One key_for per distinct value of this partition (not Pseudonymizer.keys_for: it hashes
    # every value seen so far, up to 500k, on each call, so a year of visitors slowed to ~1 s a day).
    encoded = pc.cast(values, pa.string()).combine_chunks().dictionary_encode()
    keys = pa.array([pseudonymizer.key_for(entity, v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(keys, encoded.indices)


def _contract_table(
    kind: str,
    table: pa.Table,
    site_id: str,
    shape: str,
    run_id: str,
    fetched_at_utc: dt.datetime,
    pseudonymizer: Pseudonymizer,
) -> pa.Table:
    spec = contract(kind)
    rules = {rule.column: rule for rule in personal_data_policy().pseudonyms.get(kind, ())}
    n = table.num_rows
    columns: dict[str, pa.Array] = {}
    for column in spec.columns:
        if column.name in rules:
            rule = rules[column.name]
            columns[column.name] = _pseudonym_column(table, rule.sources, rule.entity, pseudonymizer)
        else:
            columns[column.name] = table.column(column.name)
    key_columns = [pc.cast(columns[name], pa.string()) for name in spec.natural_key]
    record_id = key_columns[0] if len(key_columns) == 1 else pc.binary_join_element_wise(*key_columns, "|")
    columns["site_id"] = pa.array([site_id] * n, pa.string())
    columns["_run_id"] = pa.array([run_id] * n, pa.string())
    columns["_source_shape"] = pa.array([shape] * n, pa.string())
    columns["_source_record_id"] = record_id
    columns["_fetched_at_utc"] = pa.array([fetched_at_utc] * n, pa.timestamp("us"))
    arrays = [pc.cast(columns[field.name], field.type) for field in spec.schema]
    return pa.Table.from_arrays(arrays, schema=spec.schema)


def land_fast(
    world,
    registry: Registry,
    days: Iterable[dt.date],
    paths: DataPaths,
    run_id: str,
    kinds: Iterable[str] | None = None,
    sites: Iterable[str] | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    write: Callable[[pa.Table, Path], None] = atomic_write_table,
) -> LandedFigures:
    """Write the same partitions column-wise (benchmark volumes; fault-free data only).
    `write` puts one partition in place (bench/scale.py skips the fsync per file)."""
    export_reference(paths.root, registry)
    figures = LandedFigures()
    pseudonymizer = pseudonymizer or Pseudonymizer()
    fetched = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    wanted_sites = set(sites) if sites else None
    wanted_kinds = set(kinds) if kinds else None
    for site in registry.sites:
        if wanted_sites and site.site_id not in wanted_sites:
            continue
        for kind, source in site.sources.items():
            if wanted_kinds and kind not in wanted_kinds:
                continue
            for day in days:
                generated = world.generate(site.site_id, kind, day)
                table = _contract_table(kind, generated, site.site_id, source.shape, run_id, fetched, pseudonymizer)
                target = paths.partition(kind, site.site_id, day.isoformat()) / DATA_FILE
                write(table, target)
                figures.partitions += 1
                figures.rows += table.num_rows
    return figures


HIGH_VOLUME_KINDS = ("passages", "device_status", "vehicles")


def land_simulated(
    world,
    registry: Registry,
    days: Iterable[dt.date],
    paths: DataPaths,
    run_id: str,
    fast_kinds: Iterable[str] = HIGH_VOLUME_KINDS,
    pseudonymizer: Pseudonymizer | None = None,
) -> LandedFigures:
    """Every configured (site, kind, day): the high-volume kinds column-wise, the rest
    through land_records (where times, codes, nulls and ordering checks matter most)."""
    days = list(days)
    fast_kinds = set(fast_kinds)
    slow_kinds = set(registry_kinds(registry)) - fast_kinds
    pseudonymizer = pseudonymizer or Pseudonymizer()
    figures = (
        land_fast(world, registry, days, paths, run_id, kinds=fast_kinds, pseudonymizer=pseudonymizer)
        if fast_kinds
        else LandedFigures()
    )
    if slow_kinds:
        slow = land_with_ingestion(world, registry, days, paths, run_id, kinds=slow_kinds, pseudonymizer=pseudonymizer)
        figures.partitions += slow.partitions
        figures.rows += slow.rows
        figures.quarantined.update(slow.quarantined)
    return figures


def registry_kinds(registry: Registry) -> list[str]:
    """Every kind some site of the registry configures."""
    return sorted({kind for site in registry.sites for kind in site.sources})
