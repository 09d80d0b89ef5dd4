"""Export the registry's site facts as Parquet reference tables for dbt.

The pilot registry (config/pilots.yml) is the one place where site facts live: residents,
entrances, key points, cameras, the street a site belongs to. dbt must not keep a second,
hand-copied list (seeds drift), so before every dbt build the pipeline writes them to

    landing/_reference/sites.parquet         one row per site
    landing/_reference/streets.parquet       one row per street (sub-district)
    landing/_reference/site_sources.parquet  one row per configured (site, kind): its vendor shape

Files are written to a temporary name and renamed into place, so a reader never sees half
a file. Example: `python -m ingestion.reference --data-dir data`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.paths import data_paths, make_private_dir, private_file
from ingestion.registry import Registry, load_registry

REFERENCE_DIR_NAME = "_reference"

SITES_SCHEMA = pa.schema(
    [
        ("site_id", pa.string()),
        ("name_zh", pa.string()),
        ("name_en", pa.string()),
        ("street_id", pa.string()),
        ("site_kind", pa.string()),
        ("is_sample", pa.bool_()),
        ("residents", pa.int64()),
        ("households", pa.int64()),
        ("area_m2", pa.float64()),
        ("pedestrian_entrances", pa.int64()),
        ("smart_gate_entrances", pa.int64()),
        ("vehicle_entrances", pa.int64()),
        ("key_points", pa.int64()),
        ("cameras", pa.int64()),
        ("fire_sensors", pa.int64()),
        ("iot_devices", pa.int64()),
        ("gigabit_household_share", pa.float64()),
        ("coverage_5g_area_share", pa.float64()),
        ("configured_kinds", pa.int64()),
    ]
)
STREETS_SCHEMA = pa.schema(
    [
        ("street_id", pa.string()),
        ("name_zh", pa.string()),
        ("name_en", pa.string()),
        ("district_id", pa.string()),
        ("district_name_zh", pa.string()),
        ("district_name_en", pa.string()),
        ("city_zh", pa.string()),
    ]
)
SITE_SOURCES_SCHEMA = pa.schema([("site_id", pa.string()), ("kind", pa.string()), ("source_shape", pa.string())])


def reference_dir(data_dir: Path | str | None = None) -> Path:
    """Where the reference tables live: `<data>/landing/_reference/`."""
    return data_paths(data_dir).landing / REFERENCE_DIR_NAME


def _write_atomically(table: pa.Table, target: Path) -> None:
    make_private_dir(target.parent)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    pq.write_table(table, temporary)
    os.replace(private_file(temporary), target)


def reference_tables(registry: Registry) -> dict[str, pa.Table]:
    """The three reference tables built from a validated registry."""
    sites = [
        {
            "site_id": s.site_id,
            "name_zh": s.name_zh,
            "name_en": s.name_en,
            "street_id": s.street_id,
            "site_kind": s.kind,
            "is_sample": s.sample,
            "residents": s.residents,
            "households": s.households,
            "area_m2": s.area_m2,
            "pedestrian_entrances": s.pedestrian_entrances,
            "smart_gate_entrances": s.smart_gate_entrances,
            "vehicle_entrances": s.vehicle_entrances,
            "key_points": s.key_points,
            "cameras": s.cameras,
            "fire_sensors": s.fire_sensors,
            "iot_devices": s.iot_devices,
            "gigabit_household_share": s.gigabit_household_share,
            "coverage_5g_area_share": s.coverage_5g_area_share,
            "configured_kinds": len(s.sources),
        }
        for s in registry.sites
    ]
    streets = [
        {
            "street_id": st.street_id,
            "name_zh": st.name_zh,
            "name_en": st.name_en,
            "district_id": registry.district.id,
            "district_name_zh": registry.district.name_zh,
            "district_name_en": registry.district.name_en,
            "city_zh": registry.district.city_zh,
        }
        for st in registry.streets
    ]
    site_sources = [
        {"site_id": s.site_id, "kind": kind, "source_shape": source.shape}
        for s in registry.sites
        for kind, source in sorted(s.sources.items())
    ]
    return {
        "sites": pa.Table.from_pylist(sites, schema=SITES_SCHEMA),
        "streets": pa.Table.from_pylist(streets, schema=STREETS_SCHEMA),
        "site_sources": pa.Table.from_pylist(site_sources, schema=SITE_SOURCES_SCHEMA),
    }


def export_reference(data_dir: Path | str | None = None, registry: Registry | None = None) -> dict[str, Path]:
    """Write sites/streets/site_sources Parquet files from the registry; return their paths."""
    registry = registry or load_registry()
    out_dir = reference_dir(data_dir)
    written: dict[str, Path] = {}
    for name, table in reference_tables(registry).items():
        target = out_dir / f"{name}.parquet"
        _write_atomically(table, target)
        written[name] = target
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Export the registry's site facts for dbt. Example: python -m ingestion.reference --data-dir data"
    )
    parser.add_argument("--data-dir", default=None, help="data directory (default $SMARTCOMM_DATA_DIR or <repo>/data)")
    parser.add_argument("--registry", default=None, help="registry file (default config/pilots.yml)")
    args = parser.parse_args(argv)
    written = export_reference(args.data_dir, load_registry(args.registry) if args.registry else None)
    for name, path in written.items():
        print(f"wrote {name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
