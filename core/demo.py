"""Demo mode: the one switch under which demo secrets and demo users may exist.

`SMARTCOMM_DEMO=1` is set by the Makefile's demo targets (`make demo`, `make pipeline`,
`make serve`, `make ingest`, `make airflow`, `make backfill`, `make simulator`; override
with `SMARTCOMM_DEMO=0`), by the tests and by the benchmarks. Only then are the committed
values of config/demo.env (vendor credentials, the pseudonym key) and Superset's demo users
accepted. Everywhere else, and by default, the platform runs as in production: secrets
come from the environment and are checked, and no demo user is created.

Standard library only: both environments (.venv and .venv-superset) import it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path

DEMO_ENV = "SMARTCOMM_DEMO"
DEMO_ENV_FILE = Path(__file__).resolve().parent.parent / "config" / "demo.env"


class DemoModeRequired(RuntimeError):
    """Something meant for the demo only was asked for outside demo mode."""


def demo_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True only when SMARTCOMM_DEMO is exactly "1"."""
    return (os.environ if environ is None else environ).get(DEMO_ENV) == "1"


def require_demo_mode(what: str, environ: Mapping[str, str] | None = None) -> None:
    """Refuse `what` (a demo secret, a demo user) outside demo mode, saying how to proceed."""
    if not demo_mode(environ):
        raise DemoModeRequired(
            f"{what} is for the demo only and {DEMO_ENV} is not 1: set {DEMO_ENV}=1 for a demo "
            "(the Makefile's demo targets do), or configure your own (docs/security.md)"
        )


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of an env file (comments and blanks skipped), as a mapping."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def demo_values() -> dict[str, str]:
    """The committed demo credentials and pseudonym key (config/demo.env): public to anyone
    with the repository, so never acceptable outside demo mode."""
    return read_env_file(DEMO_ENV_FILE)


def is_demo_value(value: str | bytes) -> bool:
    """True when `value` is one of config/demo.env's committed values (False where a deployment
    has no config/demo.env): a secret that must not be accepted outside demo mode."""
    try:
        committed = demo_values().values()
    except OSError:
        return False
    raw = value.encode() if isinstance(value, str) else value
    return any(hmac.compare_digest(raw, demo.encode()) for demo in committed)
