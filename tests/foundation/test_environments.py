"""Both locked environments exist, import their main packages and share one DuckDB version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPERSET_PY = ROOT / ".venv-superset" / "bin" / "python"

PIPELINE_PROBE = """
import json, duckdb, airflow, dbt.version, great_expectations, sqlalchemy
print(json.dumps({"duckdb": duckdb.__version__, "airflow": airflow.__version__,
                  "dbt": dbt.version.__version__, "gx": great_expectations.__version__,
                  "sqlalchemy": sqlalchemy.__version__}))
"""
SUPERSET_PROBE = """
import json, duckdb, duckdb_engine, sqlalchemy, importlib.metadata as md
import superset.app
print(json.dumps({"duckdb": duckdb.__version__, "superset": md.version("apache-superset"),
                  "sqlalchemy": sqlalchemy.__version__}))
"""


def probe(python: Path | str, code: str, cwd: Path | None = None) -> dict[str, str]:
    """Run `code` in an environment's interpreter; the JSON it prints last."""
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300, check=False, cwd=cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pipeline() -> dict[str, str]:
    return probe(sys.executable, PIPELINE_PROBE)


@pytest.fixture(scope="module")
def superset() -> dict[str, str]:
    assert SUPERSET_PY.exists(), "run `make setup` to build .venv-superset"
    return probe(SUPERSET_PY, SUPERSET_PROBE)


def test_pipeline_environment_versions(pipeline):
    assert pipeline["airflow"].startswith("3.3.")
    assert pipeline["dbt"].startswith("1.11.")
    assert pipeline["gx"].startswith("1.")
    assert int(pipeline["sqlalchemy"].split(".")[0]) >= 2


def test_superset_environment_versions(superset):
    assert superset["superset"].startswith("6.1.")
    assert superset["sqlalchemy"].startswith("1.4")


def test_both_environments_share_one_duckdb(pipeline, superset):
    assert pipeline["duckdb"] == superset["duckdb"]


def test_lock_files_pin_the_same_duckdb():
    def pin(lock: str) -> str:
        lines = (ROOT / "requirements" / lock).read_text().splitlines()
        return next(line for line in lines if line.startswith("duckdb=="))

    assert pin("pipeline.lock.txt") == pin("superset.lock.txt")


def test_the_repository_tracks_no_environment_and_no_symlink() -> None:
    """A symlink named .venv slipped past `.venv/` (a directory-only pattern) into a commit
    once, and checking it out replaced the real environment: the tree holds none."""
    listed = subprocess.run(["git", "ls-files", "-s", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(
        b"\0"
    )
    symlinks = [entry.split(b"\t", 1)[1].decode() for entry in listed if entry.startswith(b"120000 ")]
    assert symlinks == []
    environments = [name for name in (".venv", ".venv-superset", ".venv-spark", ".make") if (ROOT / name).exists()]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *environments], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert sorted(ignored) == sorted(environments)
