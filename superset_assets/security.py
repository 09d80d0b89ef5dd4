"""Superset's security manager, with the Public role's permissions remembered for a few seconds.

Flask-AppBuilder asks "is this endpoint public?" before it checks the logged-in user, twice
per chart-data request: each time it loads the Public role and its permissions from the
SQLite metadata (two queries; about 15% of a cached chart request, bench/README.md). The
Public role is empty here by design (superset_config.py), and it changes only when an admin
edits it, so each worker keeps the role's (view, permission) names for
`PUBLIC_PERMISSIONS_TTL_S` seconds: an edit of the Public role applies within that time.
Everything else (the user's own roles and permissions, row-level security) is checked on
every request as before.

Runs inside Superset's environment (.venv-superset); referenced from superset_config.py.
"""

from __future__ import annotations

import threading
import time

from superset.security import SupersetSecurityManager

PUBLIC_PERMISSIONS_TTL_S = 10.0


class ServingSecurityManager(SupersetSecurityManager):
    """SupersetSecurityManager whose public-permission check reads a short-lived per-worker copy."""

    _public: tuple[float, frozenset[tuple[str, str]]] | None = None
    _public_lock = threading.Lock()

    def _public_permission_names(self) -> frozenset[tuple[str, str]]:
        cached = self._public
        if cached is not None and time.monotonic() - cached[0] < PUBLIC_PERMISSIONS_TTL_S:
            return cached[1]
        with self._public_lock:
            names = frozenset(
                (pv.view_menu.name, pv.permission.name)
                for pv in self.get_public_permissions()
                if pv.view_menu is not None and pv.permission is not None
            )
            self._public = (time.monotonic(), names)
        return names

    def is_item_public(self, permission_name: str, view_name: str) -> bool:
        return (view_name, permission_name) in self._public_permission_names()
