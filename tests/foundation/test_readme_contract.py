"""The README's promises hold: its two commands exist as Make targets, CI calls `make test`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, flags=re.M))


def test_readme_names_the_two_commands_and_they_are_targets():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    assert {"demo", "test", "setup", "lint", "clean"} <= _make_targets()


def test_every_make_target_in_readme_exists():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    mentioned = set(re.findall(r"`make ([a-z][a-z-]*)", readme))
    assert mentioned, "README mentions no make targets"
    missing = mentioned - _make_targets()
    assert not missing, f"README mentions make targets that do not exist: {sorted(missing)}"


def test_every_target_has_help():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for target in ("setup", "demo", "test", "lint", "clean"):
        assert f"make {target}" in out


def test_ci_runs_make_test_and_fails_fast():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert re.search(r"^make test$", ci, flags=re.M)


def test_setup_is_a_no_op_when_locks_are_unchanged():
    out = subprocess.run(["make", "-n", "setup"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "uv" not in out and "apt-get" not in out, f"setup would rebuild although nothing changed:\n{out}"
