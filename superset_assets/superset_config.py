"""Superset configuration for the smart-community dashboards (loaded via SUPERSET_CONFIG_PATH).

Everything that differs between machines comes from the environment:

- SMARTCOMM_DATA_DIR        data folder (default <repo>/data); Superset keeps its metadata
                            (SQLite), result cache and logs under <data>/superset/.
- SUPERSET_SECRET_KEY       required, 32+ characters, not a published default. For the demo
                            `make serve` generates one into the secrets folder, outside the
                            data folder (server.py). No key lives in the repository.
- SMARTCOMM_SUPERSET_HOME   override for the metadata folder (tests use a temp dir).
- SMARTCOMM_SERVING_DB      override for the serving database path.
- SMARTCOMM_CACHE_TIMEOUT   seconds a chart result stays cached (default 3600). A publish
                            of a new serving file invalidates the cache anyway.
- SUPERSET_GUEST_TOKEN_JWT_SECRET  optional; else derived from the secret key (never
                            Superset's published default).
- SMARTCOMM_HTTPS           "1" when users reach Superset over HTTPS through a TLS proxy
                            (and only then: it trusts the proxy's X-Forwarded-* headers):
                            session cookie `Secure`, Talisman redirects HTTP to HTTPS and
                            sends HSTS (superset_assets/README.md, "Deployment").
- SMARTCOMM_LOGIN_LOCKOUT_FAILURES / SMARTCOMM_LOGIN_LOCKOUT_S  failed logins in a row that
                            lock an account (default 5), and for how long (default 900 s).
"""

from __future__ import annotations

import hashlib
import hmac
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

# Keys published in Superset's docs and code: a session cookie signed with one of them makes
# anyone admin, so they are refused whatever their length.
PUBLISHED_KEYS = frozenset(
    {
        "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET",
        "thisISaSECRET_1234",
        "test-guest-secret-change-me",
        "YOUR_OWN_RANDOM_GENERATED_SECRET_KEY",
    }
)
SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY") or ""
if len(SECRET_KEY) < 32 or SECRET_KEY in PUBLISHED_KEYS:
    raise RuntimeError(
        "SUPERSET_SECRET_KEY is not set, shorter than 32 characters or a published default. "
        "`make serve` keeps a generated one for the demo (SMARTCOMM_DEMO=1); elsewhere set it "
        "from your secret store (superset_assets/README.md)."
    )
# Embedded dashboards are off, but the guest-token endpoint exists: its JWT secret is never
# Superset's default. Derived from the secret key, so every gunicorn worker agrees on it.
GUEST_TOKEN_JWT_SECRET = (
    os.environ.get("SUPERSET_GUEST_TOKEN_JWT_SECRET")
    or hmac.new(SECRET_KEY.encode(), b"smartcomm guest token", hashlib.sha256).hexdigest()
)
if GUEST_TOKEN_JWT_SECRET in PUBLISHED_KEYS or len(GUEST_TOKEN_JWT_SECRET) < 32:
    raise RuntimeError("SUPERSET_GUEST_TOKEN_JWT_SECRET is shorter than 32 characters or a published default")

SQLALCHEMY_DATABASE_URI = f"sqlite:///{SUPERSET_HOME / 'superset.db'}?check_same_thread=false"
SQLALCHEMY_TRACK_MODIFICATIONS = False

# The web tier. Talisman sets the CSP (Superset's own policy, every third-party origin
# removed: no map tiles, fonts or tracking pixel from outside), X-Frame-Options SAMEORIGIN,
# X-Content-Type-Options nosniff and a strict referrer policy. Over HTTPS (SMARTCOMM_HTTPS=1,
# behind a TLS proxy) it also redirects HTTP, sends HSTS and marks the session cookie Secure.
HTTPS = os.environ.get("SMARTCOMM_HTTPS") == "1"
ENABLE_PROXY_FIX = HTTPS  # the proxy's X-Forwarded-Proto tells Talisman the request was HTTPS
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
        "frame-ancestors": ["'self'"],
        "form-action": ["'self'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "frame_options": "SAMEORIGIN",
    "referrer_policy": "strict-origin-when-cross-origin",
    "force_https": HTTPS,
    "session_cookie_secure": HTTPS,
    "strict_transport_security": True,
    "strict_transport_security_max_age": 31536000,
}
TALISMAN_DEV_CONFIG = TALISMAN_CONFIG
SESSION_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CONTENT_SECURITY_POLICY_WARNING = True

# Logins: Superset's rate limiter on the login form and (security.py) the REST login, per
# client address and worker; the lockout in security.py binds across workers. No other
# request is rate-limited (the dashboards fire many chart requests at once).
RATELIMIT_ENABLED = True
RATELIMIT_APPLICATION = None
RATELIMIT_STORAGE_URI = "memory://"
AUTH_RATE_LIMITED = True
AUTH_RATE_LIMIT = "5 per second"
SMARTCOMM_LOGIN_LOCKOUT_FAILURES = int(os.environ.get("SMARTCOMM_LOGIN_LOCKOUT_FAILURES", "5"))
SMARTCOMM_LOGIN_LOCKOUT_S = float(os.environ.get("SMARTCOMM_LOGIN_LOCKOUT_S", "900"))
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
# That connection is a sandbox: no file access, no extensions, configuration locked. SQL Lab
# runs one read-only statement at a time (security.py) and none of DuckDB's file or state
# functions, which Superset checks again when it runs a SQL Lab query.
from superset_assets.serving_connection import connection_mutator, sql_lab_disallowed_functions  # noqa: E402

DB_CONNECTION_MUTATOR = connection_mutator
DISALLOWED_SQL_FUNCTIONS = {"duckdb": sql_lab_disallowed_functions()}

# The serving database is a local DuckDB file; Superset's default guard against
# file-based databases must allow it (it is opened read-only).
PREVENT_UNSAFE_DB_CONNECTIONS = False
SQLLAB_CTAS_NO_LIMIT = True
ROW_LIMIT = 50000
SUPERSET_WEBSERVER_TIMEOUT = 60
LOG_LEVEL = os.environ.get("SMARTCOMM_SUPERSET_LOG_LEVEL", "WARNING")
