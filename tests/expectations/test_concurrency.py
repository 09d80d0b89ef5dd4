"""Parallel Airflow tasks share one GX project: their stores must not corrupt each other (slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

REGISTER_ALL = """
import sys
from expectations.engine import GxEngine
from expectations.suites import build_content_suite, build_partition_suite, build_schema_suite
from expectations.rules import landed_kinds
engine = GxEngine(sys.argv[1])
for _ in range(3):
    engine.register(build_partition_suite())
    for kind in landed_kinds():
        engine.register(build_schema_suite(kind))
        engine.register(build_content_suite(kind))
with engine._store_lock():  # other processes may still be writing suite files
    print("ok", len(engine.context.suites.all()))
"""


@pytest.mark.slow
def test_processes_registering_suites_on_one_project_at_once(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "GX_ANALYTICS_ENABLED": "false", "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER_ALL, str(tmp_path)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert out.strip() == "ok 23", out
