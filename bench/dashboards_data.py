"""Realistic serving data for the Superset tests (tests/superset) and bench/dashboards.py.

The same chain as the pipeline, minus the scheduler: the simulator's world lands in the
landing zone (bench.transform_data, as the dbt tests do), a real `ingestion pull` over
HTTP against the simulator (with faults) records the load audit and quarantines bad rows,
`dbt build` makes the marts, Great Expectations writes dq_results, and the publish step
writes serving.duckdb. Everything under one data directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.transform_data import day_range, land_simulated, scaled_registry
from core.demo import demo_values
from dbt_project.run import build
from ingestion.paths import DataPaths, data_paths
from ingestion.registry import Registry, load_registry
from ingestion.timeutil import LOCAL_TZ
from pipeline.freshness import check_freshness
from superset_assets.publish import publish

SEED = 7


@dataclass
class PipelineData:
    paths: DataPaths
    start: dt.date
    end: dt.date
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def serving(self) -> Path:
        return self.paths.serving_db

    def republish(self) -> None:
        publish(
            self.paths.warehouse_db,
            self.paths.serving_db,
            state_db=self.paths.state_db,
            quarantine_dir=self.paths.quarantine,
        )


def demo_env() -> dict[str, str]:
    return demo_values()


AUDIT_KINDS = ("visitors", "alerts", "activities")
AUDIT_FAULTS = [
    {"fault": "malformed_rows", "site": "*", "kind": "*", "params": {"rate": 0.03}},
    {"fault": "server_error", "site": "baishawan", "kind": "activities", "params": {"status": 503}},
]


def pull_for_audit(paths: DataPaths, days: list[dt.date], workdir: Path) -> int:
    """A real `ingestion` pull over HTTP from the simulator (with malformed rows and one
    failing source) for a few low-volume kinds: fills the load audit and the quarantine.

    Runs after the bulk landing: those kinds' partitions of these days are re-landed from
    the full-scale simulator (as a real re-run would), so the marts see them too.
    """
    from ingestion.pull import pull
    from tests.fixtures.simulator import start_simulator

    landed = 0
    with start_simulator(workdir, seed=SEED, faults=AUDIT_FAULTS, quiet=True) as sim:
        saved = {name: os.environ.get(name) for name in sim.env}
        os.environ.update(sim.env)
        try:
            registry = load_registry()
            for site in registry.sites:
                for kind in AUDIT_KINDS:
                    source = site.source(kind)
                    if source is None or source.shape not in ("isc_openapi", "token_rest"):
                        continue
                    try:
                        outcome = pull(
                            site.site_id, kind, days[0], days[-1], paths=paths, registry=registry, run_id="run-audit"
                        )
                        landed += getattr(outcome, "rows_landed", 0) or 0
                    except Exception:  # a failed source is what the audit must show
                        pass
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return landed


def validate(paths: DataPaths, registry: Registry, day: dt.date, sites: int) -> None:
    """Great Expectations on the last landed day of a few sites and on the latest month's
    marts; writes dq_results into the warehouse. A critical failure is a finding here (it is
    recorded and shown on the data-quality dashboard), not an error of the fixture."""
    from expectations.results import CriticalDataQualityError
    from expectations.steps import validate_landing_days, validate_marts

    gx_root = str(paths.root / "gx")
    registry_file = paths.root / "registry.yml"  # the scaled registry the data was landed with
    registry_file.write_text(yaml.safe_dump(registry.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    saved = os.environ.get("SMARTCOMM_REGISTRY")
    os.environ["SMARTCOMM_REGISTRY"] = str(registry_file)
    try:
        for site in registry.sites[:sites]:
            with contextlib.suppress(CriticalDataQualityError):
                validate_landing_days(site.site_id, [day], "dq-landing", data_dir=str(paths.root), gx_root=gx_root)
        with contextlib.suppress(CriticalDataQualityError):
            validate_marts("dq-marts", month=day.strftime("%Y-%m"), data_dir=str(paths.root), gx_root=gx_root)
    finally:
        if saved is None:
            os.environ.pop("SMARTCOMM_REGISTRY", None)
        else:
            os.environ["SMARTCOMM_REGISTRY"] = saved


def build_serving(
    root: Path, start: dt.date, end: dt.date, scale: float = 0.1, audit_days: int = 1, validated_sites: int = 3
) -> PipelineData:
    """Land start..end for every site, build, validate and publish; returns the data paths."""
    from simulator import World

    for name, value in demo_env().items():
        os.environ.setdefault(name, value)
    paths = data_paths(root)
    data = PipelineData(paths, start, end)
    registry = scaled_registry(load_registry(), scale)

    t = time.perf_counter()
    land_simulated(World(seed=SEED, registry=registry), registry, day_range(start, end), paths, run_id="run-bulk")
    data.seconds["land"] = time.perf_counter() - t

    t = time.perf_counter()
    audit_range = day_range(max(start, end - dt.timedelta(days=audit_days - 1)), end)
    pull_for_audit(paths, audit_range, root / "simulator")
    data.seconds["pull_for_audit"] = time.perf_counter() - t

    data.seconds.update(
        evaluate_and_publish(paths, end, registry, lambda: validate(paths, registry, end, validated_sites))
    )
    return data


def evaluate_and_publish(
    paths: DataPaths, last_day: dt.date, registry: Registry | None, validate_step: Callable[[], object]
) -> dict[str, float]:
    """What `evaluate_district` does after landing, in its order (pipeline/steps.py): the
    freshness check (as of 08:00 the morning after `last_day`; the 数据质量 dashboard reads
    its table), dbt build, validation, publish. Shared by the Superset tests and
    bench/dashboards.py, so both serve every table the dashboards read. Seconds per step."""
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    check_freshness(dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(8), LOCAL_TZ), registry, paths)
    seconds["freshness"] = time.perf_counter() - t
    t = time.perf_counter()
    build(paths.root)
    seconds["dbt_build"] = time.perf_counter() - t
    t = time.perf_counter()
    validate_step()
    seconds["validate"] = time.perf_counter() - t
    t = time.perf_counter()
    publish(paths.warehouse_db, paths.serving_db, state_db=paths.state_db, quarantine_dir=paths.quarantine)
    seconds["publish"] = time.perf_counter() - t
    return seconds


def month_range(first_month: dt.date, months: int) -> tuple[dt.date, dt.date]:
    """First and last local day of `months` calendar months from first_month."""
    year, month = first_month.year + (first_month.month - 1 + months) // 12, (first_month.month - 1 + months) % 12 + 1
    return first_month, dt.date(year, month, 1) - dt.timedelta(days=1)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="Build serving data from the simulator. Example: python -m bench.dashboards_data /tmp/sd --months 3"
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.1)
    args = parser.parse_args()
    first, last = month_range(dt.date(2026, 1, 1), args.months)
    print(build_serving(args.data_dir, first, last, scale=args.scale).seconds)
