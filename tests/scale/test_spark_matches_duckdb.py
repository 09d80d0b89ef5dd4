"""The same dbt project on DuckDB and on a real Spark cluster gives the same evaluation marts.

One month of simulator data for two sites is landed once; `dbt build` (models, data tests,
unit tests) runs on the embedded DuckDB target and on the `spark` target (standalone master
+ worker + Thrift server from deploy/cluster.py), reading the same Parquet landing zone.
Every row of every evaluation mart is then compared: the same rows, the same keys, text and
dates equal, numbers within 1e-9 (relative, or absolute near zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import duckdb
import pytest

from dbt_project.run import run_dbt

# Starts a Spark stack and builds the month twice: minutes, far beyond the suite's default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

EVALUATION_MARTS = ("indicator_values", "indicator_scores", "star_ratings", "next_star_gaps")
# The marts, everything they are built from, and the tests on all of it (the whole project,
# early warnings included, builds on Spark in bench/spark.py; here it would only add minutes).
# Tests reaching outside the selection (a relationship to a dimension no mart needs) wait.
SELECTION = ["--select", *(f"+{mart}" for mart in EVALUATION_MARTS), "--indirect-selection", "buildable"]
TOLERANCE = 1e-9
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL")


def duckdb_rows(warehouse, table: str) -> tuple[list[str], list[str], list[tuple]]:
    """Column names, DuckDB types and rows of a mart in the DuckDB warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        described = con.execute(f"describe main.{table}").fetchall()
        names = [row[0] for row in described]
        types = [row[1] for row in described]
        rows = con.execute(f"select {', '.join(names)} from main.{table}").fetchall()
    return names, types, rows


def spark_rows(settings, table: str, names: Sequence[str]) -> list[tuple]:
    """The same columns of the mart built on Spark, through the Thrift server."""
    from pyhive import hive

    connection = hive.connect(host="127.0.0.1", port=int(settings["SMARTCOMM_SPARK_PORT"]))
    try:
        cursor = connection.cursor()
        columns = ", ".join(f"`{name}`" for name in names)
        cursor.execute(f"select {columns} from {settings['SMARTCOMM_SPARK_SCHEMA']}.{table}")
        return cursor.fetchall()
    finally:
        connection.close()


def normalized(row: Sequence, is_float: Sequence[bool]) -> tuple:
    """Floats as float, everything else as text (dates and timestamps print alike)."""
    return tuple(
        (None if value is None else float(value)) if numeric else (None if value is None else str(value))
        for value, numeric in zip(row, is_float, strict=True)
    )


def sort_key(row: tuple, is_float: Sequence[bool]) -> tuple:
    keys = [value for value, numeric in zip(row, is_float, strict=True) if not numeric]
    floats = [round(value, 6) for value, numeric in zip(row, is_float, strict=True) if numeric and value is not None]
    return tuple((value is None, value or "") for value in keys) + tuple(floats)


def differences(names, is_float, left: list[tuple], right: list[tuple], limit: int = 10) -> list[str]:
    found = []
    for left_row, right_row in zip(left, right, strict=True):
        for name, numeric, a, b in zip(names, is_float, left_row, right_row, strict=True):
            same = (a is None and b is None) or (
                a is not None
                and b is not None
                and (math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE) if numeric else a == b)
            )
            if not same:
                key = {n: v for n, v, f in zip(names, left_row, is_float, strict=True) if not f}
                found.append(f"{name}: duckdb={a!r} spark={b!r} at {key}")
                if len(found) >= limit:
                    return found
    return found


@pytest.fixture(scope="module")
def built_on_both(landed_two_sites, spark_stack, environment_module):
    """`dbt build` of the landed month on DuckDB, then on Spark (the same project, the same files)."""
    environment_module(spark_stack.dbt_environment())
    for target in ("duckdb", "spark"):
        run_dbt(["build", *SELECTION], landed_two_sites.paths.root, target=target)
    return landed_two_sites, spark_stack


@pytest.fixture(scope="module")
def environment_module():
    mp = pytest.MonkeyPatch()
    yield lambda values: [mp.setenv(key, value) for key, value in values.items()]
    mp.undo()


@pytest.mark.parametrize("mart", EVALUATION_MARTS)
def test_evaluation_mart_is_the_same_on_spark(built_on_both, mart: str) -> None:
    landed, stack = built_on_both
    names, types, duck = duckdb_rows(landed.paths.warehouse_db, mart)
    is_float = [any(t in kind.upper() for t in FLOAT_TYPES) for kind in types]
    spark = spark_rows(stack.settings, mart, names)

    assert duck, f"{mart} is empty on DuckDB: the comparison would prove nothing"
    assert len(spark) == len(duck), f"{mart}: {len(duck)} rows on DuckDB, {len(spark)} on Spark"
    left = sorted((normalized(row, is_float) for row in duck), key=lambda row: sort_key(row, is_float))
    right = sorted((normalized(row, is_float) for row in spark), key=lambda row: sort_key(row, is_float))
    found = differences(names, is_float, left, right)
    assert not found, f"{mart} differs between DuckDB and Spark:\n" + "\n".join(found)


def test_both_sites_and_every_indicator_were_rated(built_on_both) -> None:
    """The marts compared above hold both sites' month, not a degenerate subset."""
    landed, _ = built_on_both
    with duckdb.connect(str(landed.paths.warehouse_db), read_only=True) as con:
        sites = {row[0] for row in con.execute("select distinct site_id from main.star_ratings").fetchall()}
        indicators = con.execute("select count(distinct indicator_id) from main.indicator_values").fetchone()[0]
    assert {site.site_id for site in landed.registry.sites} <= sites
    assert indicators >= 20
