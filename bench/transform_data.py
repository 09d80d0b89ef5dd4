"""Simulator data in the landing zone, for the dbt tests and the transform benchmark.

`land_simulated` lands the simulator's canonical records (`World.generate`, no HTTP) through
ingestion's landing writer, the same code a connector's pages take (type, pseudonymize,
validate, quarantine), one partition file per configured (site, kind, day), empty when
nothing happened, and the registry's reference tables (ingestion.reference).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ingestion.landing import PartitionBuilder, atomic_write_table
from ingestion.paths import DataPaths
from ingestion.pii import Pseudonymizer
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


def land_simulated(
    world,  # simulator.World; not imported here so the platform never depends on it
    registry: Registry,
    days: Iterable[dt.date],
    paths: DataPaths,
    run_id: str,
    kinds: Iterable[str] | None = None,
    sites: Iterable[str] | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    write: Callable[[pa.Table, Path], None] = atomic_write_table,
) -> LandedFigures:
    """Every configured (site, kind, day) of the simulator's canonical records through the
    landing writer, as an Arrow table (PartitionBuilder.add_table): typed, pseudonymized,
    validated and quarantined exactly as a connector's pages. `write` puts one partition in
    place (bench/scale.py skips the fsync per file)."""
    export_reference(paths.root, registry)
    figures = LandedFigures()
    pseudonymizer = pseudonymizer or Pseudonymizer()
    fetched = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    days = list(days)
    wanted_sites = set(sites) if sites else None
    wanted_kinds = set(kinds) if kinds else None
    for site in registry.sites:
        if wanted_sites and site.site_id not in wanted_sites:
            continue
        for kind, source in site.sources.items():
            if wanted_kinds and kind not in wanted_kinds:
                continue
            for day in days:
                builder = PartitionBuilder(
                    kind,
                    site.site_id,
                    [day],
                    source_shape=source.shape,
                    run_id=run_id,
                    paths=paths,
                    pseudonymizer=pseudonymizer,
                    fetched_at_utc=fetched,
                    write=write,
                )
                builder.add_table(world.generate(site.site_id, kind, day))
                result = builder.commit()
                if result.rows_quarantined:
                    figures.quarantined[kind] = figures.quarantined.get(kind, 0) + result.rows_quarantined
                figures.partitions += len(result.partitions)
                figures.rows += result.rows_landed
    return figures


def registry_kinds(registry: Registry) -> list[str]:
    """Every kind some site of the registry configures."""
    return sorted({kind for site in registry.sites for kind in site.sources})
