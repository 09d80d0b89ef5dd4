"""Superset configuration for the smart-community dashboards (loaded via SUPERSET_CONFIG_PATH).

Everything that differs between machines comes from the environment:

- SMARTCOMM_DATA_DIR        data folder (default <repo>/data); Superset keeps its metadata
                            (SQLite), result cache and logs under <data>/superset/.
- SUPERSET_SECRET_KEY       required; `make serve` generates a local one under the data
                            folder for the demo. No key lives in the repository.
- SMARTCOMM_SUPERSET_HOME   override for the metadata folder (tests use a temp dir).
- SMARTCOMM_SERVING_DB      override for the serving database path.
- SMARTCOMM_CACHE_TIMEOUT   seconds a chart result stays cached (default 3600). A publish
                            of a new serving file invalidates the cache anyway.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # for superset_assets.serving_cache
    sys.path.insert(0, str(PROJECT_ROOT))

DATA_DIR = Path(os.environ.get("SMARTCOMM_DATA_DIR") or PROJECT_ROOT / "data").resolve()
SUPERSET_HOME = Path(os.environ.get("SMARTCOMM_SUPERSET_HOME") or DATA_DIR / "superset").resolve()
SERVING_DB = Path(os.environ.get("SMARTCOMM_SERVING_DB") or DATA_DIR / "warehouse" / "serving.duckdb").resolve()
SUPERSET_HOME.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY") or ""
if len(SECRET_KEY) < 32:
    raise RuntimeError(
        "SUPERSET_SECRET_KEY is not set (or shorter than 32 characters). "
        "`make serve` generates a local one; elsewhere set it from your secret store."
    )

SQLALCHEMY_DATABASE_URI = f"sqlite:///{SUPERSET_HOME / 'superset.db'}?check_same_thread=false"
SQLALCHEMY_TRACK_MODIFICATIONS = False

# Local HTTP on loopback only; no CSP/HTTPS redirect, no external rate-limit store.
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
RATELIMIT_STORAGE_URI = "memory://"
WTF_CSRF_ENABLED = True
WTF_CSRF_EXEMPT_LIST = ["superset.views.core.log", "superset.security.api.guest_token"]

# Officials read Chinese; analysts may switch to English.
BABEL_DEFAULT_LOCALE = "zh"
LANGUAGES = {
    "zh": {"flag": "cn", "name": "简体中文"},
    "en": {"flag": "us", "name": "English"},
}
# Every time in the marts is local already (Asia/Shanghai); Superset must not shift it.
DEFAULT_TIME_ZONE = "Asia/Shanghai"

# Anonymous visitors get nothing: the public role has no permissions.
AUTH_ROLE_PUBLIC = "Public"
PUBLIC_ROLE_LIKE = None

FEATURE_FLAGS = {
    "DASHBOARD_NATIVE_FILTERS": True,
    "DASHBOARD_CROSS_FILTERS": True,
    "ENABLE_TEMPLATE_PROCESSING": False,
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
}

# Metadata objects: in-process; query results: a file cache shared by the gunicorn
# workers whose keys carry the serving file's identity (see serving_cache.py).
_CACHE_TIMEOUT = int(os.environ.get("SMARTCOMM_CACHE_TIMEOUT", "3600"))
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300, "CACHE_KEY_PREFIX": "smartcomm_"}
DATA_CACHE_CONFIG = {
    "CACHE_TYPE": "superset_assets.serving_cache.ServingAwareCache",
    "CACHE_DIR": str(SUPERSET_HOME / "cache" / "data"),
    "CACHE_SERVING_DB": str(SERVING_DB),
    "CACHE_DEFAULT_TIMEOUT": _CACHE_TIMEOUT,
    "CACHE_THRESHOLD": 5000,
}

# The action log goes to <home>/events.jsonl, not to a committed SQLite row per request:
# those commits were most of a cached chart request's time (see event_log.py).
from superset_assets.event_log import FileEventLogger  # noqa: E402 (needs the sys.path entry above)

EVENT_LOGGER = FileEventLogger(SUPERSET_HOME / "events.jsonl")

# The Public role's permissions are read once per worker every few seconds, not twice per
# request from SQLite (see security.py); the role stays empty: anonymous visitors get nothing.
from superset_assets.security import ServingSecurityManager  # noqa: E402

CUSTOM_SECURITY_MANAGER = ServingSecurityManager

# Each worker keeps the serving file attached (read-only, in an in-memory DuckDB) and hands
# every query a cursor, instead of opening the file per query; a publish (new inode) is
# attached by the next query (see serving_connection.py).
from superset_assets.serving_connection import connection_mutator  # noqa: E402

DB_CONNECTION_MUTATOR = connection_mutator

# The serving database is a local DuckDB file; Superset's default guard against
# file-based databases must allow it (it is opened read-only).
PREVENT_UNSAFE_DB_CONNECTIONS = False
SQLLAB_CTAS_NO_LIMIT = True
ROW_LIMIT = 50000
SUPERSET_WEBSERVER_TIMEOUT = 60
LOG_LEVEL = os.environ.get("SMARTCOMM_SUPERSET_LOG_LEVEL", "WARNING")
