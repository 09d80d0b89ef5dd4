"""Run the dbt project in-process, for the pipeline, the tests and the benchmarks.

    from dbt_project.run import build
    build(data_dir)                              # dbt build over <data>/landing -> <data>/warehouse/warehouse.duckdb
    build(data_dir, landing_days=["2026-03-05"]) # incremental facts rebuild only those local days

The registry's reference tables must be exported first (`ingestion.reference.export_reference`);
dbt itself calls nothing outside the warehouse. dbt's target/ and logs/ go under
`<data>/warehouse/dbt/`, so runs over different data directories never share state.

CLI: `python -m dbt_project.run build --data-dir data [--days 2026-03-05,2026-03-06]`
(any other dbt command works too: `python -m dbt_project.run test --data-dir data`).
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ingestion.paths import data_paths

PROJECT_DIR = Path(__file__).resolve().parent
_RUN_LOCK = threading.Lock()  # dbtRunner keeps global state: one invocation at a time per process


class DbtRunError(RuntimeError):
    """dbt reported a failure; the message names the failing nodes."""


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_dbt(
    command: list[str],
    data_dir: Path | str | None = None,
    check: bool = True,
    project_dir: Path | str = PROJECT_DIR,
    target: str | None = None,
    landing_days: Iterable[str] | None = None,
):
    """Invoke `dbt <command...>` on the project against the data directory; return dbt's result.
    `target`: a profiles.yml output (default duckdb; `spark` needs a Thrift server, deploy/).
    `landing_days` reaches the models as $SMARTCOMM_LANDING_DAYS, read only while executing
    (macros/incremental.sql): a `--vars` value that changes every day would make dbt parse
    the whole project again on every daily run; the environment does not."""
    from dbt.cli.main import dbtRunner

    paths = data_paths(data_dir)
    paths.warehouse_dir.mkdir(parents=True, exist_ok=True)
    state_dir = paths.warehouse_dir / ("dbt" if target in (None, "duckdb") else f"dbt-{target}")
    args = [
        *command,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target-path",
        str(state_dir / "target"),
        "--log-path",
        str(state_dir / "logs"),
        *(["--target", target] if target else []),
    ]
    env = {
        "SMARTCOMM_DATA_DIR": str(paths.root),
        "DO_NOT_TRACK": "1",
        "SMARTCOMM_LANDING_DAYS": ",".join(str(day) for day in landing_days or ()),
    }
    with _RUN_LOCK, _environment(env):
        try:
            result = dbtRunner().invoke(args)
        finally:
            _release_warehouse()
    if check and not result.success:
        raise DbtRunError(f"dbt {' '.join(command)} failed: {_failures(result)}")
    return result


def _release_warehouse() -> None:
    """Close dbt-duckdb's process-wide connection, so this process (and others) can open the
    warehouse afterwards: DuckDB refuses a second connection with another configuration."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None and hasattr(environment, "close"):
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def _failures(result) -> str:
    if result.exception is not None:
        return str(result.exception)
    failed = []
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in {"error", "fail", "runtime error"}:
            failed.append(f"{node_result.node.name}: {node_result.message}")
    return "; ".join(failed) or "see the dbt log"


def build(
    data_dir: Path | str | None = None,
    landing_days: Iterable[str] | None = None,
    select: str | None = None,
    full_refresh: bool = False,
    target: str | None = None,
):
    """`dbt build`: seeds, models, data tests and unit tests. `landing_days` limits the
    incremental facts, and the data tests on them, to those local days (otherwise they find
    changed days themselves and test every row); such a daily run skips the unit tests,
    which check the models' logic, not the data (every full build runs them)."""
    command = ["build"]
    if landing_days:
        command += ["--exclude-resource-type", "unit_test"]
    if select:
        command += ["--select", select]
    if full_refresh:
        command.append("--full-refresh")
    return run_dbt(command, data_dir, target=target, landing_days=landing_days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run dbt on the warehouse. Example: python -m dbt_project.run build --data-dir data --days 2026-03-05"
    )
    parser.add_argument("command", help="dbt command: build, run, test, docs, ...; further arguments go to dbt")
    parser.add_argument("--data-dir", default=None, help="data directory (default $SMARTCOMM_DATA_DIR or <repo>/data)")
    parser.add_argument("--days", default=None, help="build only: comma-separated local days for the incremental facts")
    parser.add_argument("--target", default=None, help="profiles.yml output: duckdb (default) or spark (deploy/)")
    args, extra = parser.parse_known_args(argv)
    try:
        if args.command == "build" and not extra:
            build(args.data_dir, args.days.split(",") if args.days else None, target=args.target)
        else:
            run_dbt([args.command, *extra], args.data_dir, target=args.target)
    except DbtRunError as exc:
        print(exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
