"""Scale generator: simulator data for N sites x M days landed straight into a landing zone.

The pilot has 10 sites; the district about 200. For the district sizes the 10 sites of
config/pilots.yml are cycled into synthetic ones (new site_ids, names, streets), as an
in-memory registry: config/ is never written. The simulator generates records for that
registry (`World.generate`, no HTTP) and the ingestion package's writer lands them
(bench/transform_data.py: high-volume kinds column-wise, the rest through `land_records`),
together with the reference tables (landing/_reference) that describe the synthetic sites
to dbt.

Landed sizes are cached under bench/cache/ (git-ignored), keyed by the size and a hash of
the code and config that shape the data; `materialize()` hard-links a cached landing zone
into a fresh data directory (partitions are immutable and replaced by rename, so a run that
re-lands a day never touches the cache). Examples:

    .venv/bin/python -m bench.scale land quick                  # build (or reuse) the cache
    .venv/bin/python -m bench.scale materialize district-month /tmp/h7/dm   # a data dir to build in
    .venv/bin/python -m bench.scale list
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from bench.transform_data import LandedFigures, day_range, land_simulated, scaled_registry
from ingestion.landing import DATA_FILE
from ingestion.paths import DataPaths, data_paths
from ingestion.pii import Pseudonymizer
from ingestion.reference import export_reference
from ingestion.registry import PROJECT_ROOT, Registry, load_registry, parse_registry

CACHE_DIR = Path(os.environ.get("SMARTCOMM_BENCH_CACHE") or PROJECT_ROOT / "bench" / "cache")
SEED = 7
REGISTRY_FILE = "registry.yml"  # the (synthetic) registry a data dir was landed with; SMARTCOMM_REGISTRY points here
# Config and code whose change changes the landed records or their schema: a size cached
# before is stale. Bump CACHE_VERSION when district_registry() or land_sites() changes.
# (Ingestion's code is left out on purpose: it changes daily and the bench cache would be
# rebuilt for every edit; its contract lives in config/kinds.yml.)
CACHE_VERSION = 2
_SHAPING_FILES = (
    "config/pilots.yml",
    "config/kinds.yml",
    "simulator/profiles.yml",
    "simulator/world.py",
)


@dataclass(frozen=True)
class Size:
    """How much data: the first `sites` of the (district) registry over first..last local days."""

    name: str
    sites: int
    first: dt.date
    last: dt.date
    scale: float = 1.0  # residents and device counts; 1.0 is the registry's real size

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def key(self) -> str:
        return f"{self.name}-{self.sites}s-{self.first:%Y%m%d}-{self.last:%Y%m%d}-x{self.scale:g}"


MONTH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))  # a survey month (surveys run in March, June, ...)
SIZES: dict[str, Size] = {
    "quick": Size("quick", 10, dt.date(2026, 3, 1), dt.date(2026, 3, 7), scale=0.1),
    "pilot-month": Size("pilot-month", 10, *MONTH),
    "pilot-year": Size("pilot-year", 10, dt.date(2025, 4, 1), MONTH[1]),
    "district50-month": Size("district50-month", 50, *MONTH),
    "district-month": Size("district-month", 200, *MONTH),
}


def size(name: str) -> Size:
    try:
        return SIZES[name]
    except KeyError:
        raise KeyError(f"unknown size {name!r}; known: {', '.join(SIZES)}") from None


def district_registry(n_sites: int, base: Registry | None = None) -> Registry:
    """The pilot registry cycled to n_sites: site i >= 10 copies pilot i % 10 (profile, sizes,
    sources) under a new site_id and name, on the streets in turn. Never written to config/."""
    base = base or load_registry()
    raw = base.model_dump(mode="json")
    pilots, streets = raw["sites"], [s["street_id"] for s in raw["streets"]]
    sites = [dict(s) for s in pilots[:n_sites]]
    for i in range(len(pilots), n_sites):
        template, copy = pilots[i % len(pilots)], i // len(pilots) + 1
        sites.append(
            {
                **template,
                "site_id": f"{template['site_id']}_{copy:02d}",
                "name_zh": f"{template['name_zh']}{copy:02d}区",
                "name_en": f"{template['name_en']} {copy:02d}",
                "street_id": streets[i % len(streets)],
                "sample": True,
            }
        )
    raw["sites"] = sites
    return parse_registry(raw, f"<district registry of {n_sites} sites>")


def registry_for(size: Size) -> Registry:
    registry = district_registry(size.sites)
    return registry if size.scale == 1.0 else scaled_registry(registry, size.scale)


def demo_pseudonymizer() -> Pseudonymizer:
    """Pseudonyms keyed with the demo key of config/demo.env (what `make demo` lands with)."""
    for line in (PROJECT_ROOT / "config" / "demo.env").read_text(encoding="utf-8").splitlines():
        if line.startswith("SMARTCOMM_PSEUDONYM_KEY="):
            return Pseudonymizer(line.split("=", 1)[1].strip())
    raise RuntimeError("config/demo.env has no SMARTCOMM_PSEUDONYM_KEY")


def shaping_hash() -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for name in _SHAPING_FILES:
        path = PROJECT_ROOT / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:12]


def write_registry(registry: Registry, root: Path) -> Path:
    path = root / REGISTRY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(registry.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per cached size (two bench runs may start together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Landed:
    """A cached landed size: where it is and what it holds."""

    size: Size
    root: Path
    rows: int
    partitions: int
    seconds: float  # time it took to land when it was built
    reused: bool  # taken from the cache by this call

    @property
    def registry_file(self) -> Path:
        return self.root / REGISTRY_FILE


def write_partition(table: pa.Table, target: Path) -> None:
    """The ingestion writer's file (zstd Parquet, temp name renamed into place: a cached
    file hard-linked into a data dir is replaced, never written through) without its fsync
    per file: a cache becomes valid only when land() syncs and writes its manifest."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def clone_site(paths: DataPaths, template: str, site_ids: list[str], days: set[str] | None = None) -> LandedFigures:
    """Copy a landed site's day partitions (of `days`, default all) as other sites: the same
    records under each new site_id. Each partition is read once for all its copies."""
    figures = LandedFigures()
    for kind_dir in sorted(p for p in paths.landing.iterdir() if p.is_dir() and not p.name.startswith("_")):
        source = kind_dir / f"site={template}"
        if not source.is_dir():
            continue
        for day_dir in sorted(source.iterdir()):
            day = day_dir.name.removeprefix("date=")
            if days is not None and day not in days:
                continue
            table = pq.ParquetFile(day_dir / DATA_FILE).read()
            i = table.schema.get_field_index("site_id")
            field = table.schema.field(i)
            for site_id in site_ids:
                copy = table.set_column(i, field, pa.repeat(pa.scalar(site_id, field.type), table.num_rows))
                write_partition(copy, paths.partition(kind_dir.name, site_id, day) / DATA_FILE)
                figures.partitions += 1
                figures.rows += table.num_rows
    return figures


def land_sites(
    registry: Registry, days: list[dt.date], paths: DataPaths, run_id: str, pilots_landed: bool = False
) -> LandedFigures:
    """Land `days` for every site of the registry: the pilots (the first ten) generated by the
    simulator and written column-wise by the ingestion writer, each synthetic site a copy of
    its pilot (generating 190 more sites would take the simulator an hour on this machine;
    the platform sees the same volume and layout). The reference tables describe them all."""
    from simulator import World  # only bench and tests reach the simulator's Python API

    pilots = {s.site_id for s in load_registry().sites}
    generated = [s.site_id for s in registry.sites if s.site_id in pilots]
    if pilots_landed:  # linked from a cached pilot size: only the reference tables are new
        export_reference(paths.root, registry)
        figures = LandedFigures()
    else:
        figures = land_simulated(
            World(seed=SEED, registry=registry),
            registry,
            days,
            paths,
            run_id,
            sites=generated,
            pseudonymizer=demo_pseudonymizer(),
            write=write_partition,
        )
    copies: dict[str, list[str]] = {}
    for i, site in enumerate(registry.sites):
        if site.site_id not in pilots:
            copies.setdefault(generated[i % len(generated)], []).append(site.site_id)
    wanted = {d.isoformat() for d in days}
    for template, site_ids in copies.items():
        copied = clone_site(paths, template, site_ids, wanted)
        figures.partitions += copied.partitions
        figures.rows += copied.rows
    return figures


def _cached_pilots(size_: Size, cache_dir: Path | None) -> Path | None:
    """A cached size holding just the pilots over the same days and scale, if any."""
    if size_.sites <= 10:
        return None
    for other in SIZES.values():
        if other.sites == 10 and (other.first, other.last, other.scale) == (size_.first, size_.last, size_.scale):
            root = (cache_dir or CACHE_DIR) / f"{other.key()}-{shaping_hash()}"
            if (root / "manifest.json").exists():
                return root
    return None


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link a landing tree (copy across file systems); partitions are replaced by rename, never edited."""
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(source, target, copy_function=os.link)
    except OSError:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)


def audit_landed(paths: DataPaths, registry: Registry, first: dt.date, last: dt.date, run_id: str) -> None:
    """Record first..last of every configured (site, kind) as a successful load in the load
    audit, as ingestion's pulls do: the pipeline plans from it and the data-quality dashboard
    reads it."""
    from ingestion.state import LoadFigures, StateStore

    store = StateStore(paths)
    for site in registry.sites:
        for kind, source in site.sources.items():
            store.start(run_id, site.site_id, kind, source.shape, first, last)
            store.finish(run_id, site.site_id, kind, first, last, LoadFigures(), outcome="success", duration_s=0.0)


def land(size_: Size | str, cache_dir: Path | None = None, rebuild: bool = False) -> Landed:
    """The size's landing zone in the cache, built once (see land_sites)."""
    size_ = size(size_) if isinstance(size_, str) else size_
    root = (cache_dir or CACHE_DIR) / f"{size_.key()}-{shaping_hash()}"
    manifest = root / "manifest.json"
    with _locked(root.parent / f"{root.name}.lock"):
        if manifest.exists() and not rebuild:
            info = json.loads(manifest.read_text())
            return Landed(size_, root, info["rows"], info["partitions"], info["seconds"], reused=True)
        shutil.rmtree(root, ignore_errors=True)
        registry = registry_for(size_)
        started = time.perf_counter()
        pilots = _cached_pilots(size_, cache_dir)
        if pilots is not None:
            _link_tree(pilots / "landing", root / "landing")
        figures = land_sites(
            registry,
            day_range(size_.first, size_.last),
            data_paths(root),
            f"bench-{size_.name}",
            pilots_landed=pilots is not None,
        )
        os.sync()  # the partitions were written without an fsync each (write_partition)
        seconds = time.perf_counter() - started
        write_registry(registry, root)
        info = {"size": asdict(size_), "rows": figures.rows, "partitions": figures.partitions, "seconds": seconds}
        manifest.write_text(json.dumps(info, default=str, indent=2))
    return Landed(size_, root, figures.rows, figures.partitions, seconds, reused=False)


def materialize(size_: Size | str, root: Path, cache_dir: Path | None = None) -> tuple[DataPaths, Registry]:
    """A fresh data dir at root whose landing zone hard-links the cached size (copies if
    hard links are impossible), with the size's registry at root/registry.yml."""
    landed = land(size_, cache_dir)
    paths = data_paths(root)
    _link_tree(landed.root / "landing", paths.landing)
    registry = registry_for(landed.size)
    write_registry(registry, root)
    export_reference(root, registry)  # a fresh file, not the cache's hard link
    return paths, registry


def registry_env(root: Path) -> dict[str, str]:
    """Environment for a process (pipeline steps, dbt, GX) working on a materialized data dir."""
    return {"SMARTCOMM_DATA_DIR": str(root), "SMARTCOMM_REGISTRY": str(root / REGISTRY_FILE)}


def bench_landing(size_name: str) -> None:
    """Figures of the generator itself: time and peak RSS to land a size from scratch."""
    import resource
    import tempfile

    from bench.report import Figure, save_figures

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        landed = land(size_name, cache_dir=Path(tmp), rebuild=True)
    figures = [
        Figure(
            "scale",
            "land (simulator + ingestion writer)",
            size_name,
            landed.seconds,
            "s",
            peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        ),
        Figure("scale", "rows landed per second", size_name, landed.rows / landed.seconds, "rows/s"),
    ]
    save_figures("scale", figures, extra={"rows": landed.rows, "partitions": landed.partitions})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Land simulator data at a bench size. Example: python -m bench.scale land pilot-year"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the sizes")
    p_land = sub.add_parser("land", help="build (or reuse) a size in the cache; prints its folder")
    p_land.add_argument("size", choices=list(SIZES))
    p_land.add_argument("--rebuild", action="store_true")
    p_bench = sub.add_parser("bench", help="time landing a size from scratch (a throwaway cache); report figures")
    p_bench.add_argument("--size", default="quick", choices=list(SIZES))
    p_bench.add_argument("--quick", action="store_true", help="the quick size (CI smoke)")
    p_mat = sub.add_parser("materialize", help="a data dir whose landing zone links the cached size")
    p_mat.add_argument("size", choices=list(SIZES))
    p_mat.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    if args.command == "list":
        for s in SIZES.values():
            print(f"{s.name:<18} {s.sites:>4} sites  {s.first}..{s.last} ({s.days} days)  scale {s.scale:g}")
    elif args.command == "bench":
        bench_landing("quick" if args.quick else args.size)
    elif args.command == "land":
        landed = land(args.size, rebuild=args.rebuild)
        state = "reused" if landed.reused else "built"
        print(
            f"{landed.root} ({state}: {landed.rows:,} rows, {landed.partitions:,} partitions, {landed.seconds:.1f} s)"
        )
    else:
        paths, registry = materialize(args.size, args.root)
        print(f"{paths.root}: {len(registry.sites)} sites; export SMARTCOMM_REGISTRY={paths.root / REGISTRY_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
