"""Airflow's `[core] hostname_callable` for the local stack.

Two Celery workers on one machine share its hostname, so task instances could not say
which worker ran them. Each worker process gets `SMARTCOMM_WORKER_NAME` from
deploy/cluster.py; every other process keeps Airflow's default (the FQDN).
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """The worker's name when set, else this machine's fully qualified name."""
    return os.environ.get("SMARTCOMM_WORKER_NAME") or socket.getfqdn()
