"""Superset's security manager: SQL Lab's statement filter, login lockout and rate limit, and
the Public role's permissions remembered for a few seconds.

SQL Lab's statement filter (issue 19). The serving connection is a DuckDB sandbox
(serving_connection.py: no file access, configuration locked); this is the second layer, in
front of it: a SQL Lab query is one read-only statement (SELECT, WITH ... SELECT, UNION ...)
over plain table names, with no table function outside `ALLOWED_TABLE_FUNCTIONS` and no
function of `DISALLOWED_SQL_FUNCTIONS["duckdb"]` (superset_config.py, which Superset checks
once more when it runs the statements). `COPY`, `ATTACH`, `DETACH`, `SET`, `RESET`, `PRAGMA`,
`INSTALL`, `LOAD`, `EXPORT`, `IMPORT`, `USE`, `CALL`, a second statement, a file path in
`FROM` ('x.csv') are refused with 403 before anything reaches DuckDB. It runs in
`raise_for_access(query=...)`, the check Superset makes for every SQL Lab query before it
renders or runs it.

Logins. Superset's rate limiter (AUTH_RATE_LIMITED, AUTH_RATE_LIMIT per client address) guards
the login form; here it guards the REST login (/api/v1/security/login) as well, which
Flask-AppBuilder leaves open. Its counters live in each worker's memory, so the lockout
below is what binds: after `SMARTCOMM_LOGIN_LOCKOUT_FAILURES` failed logins in a row, an
account refuses every login, the right password too, until `SMARTCOMM_LOGIN_LOCKOUT_S`
seconds have passed since the last failure. The count is Flask-AppBuilder's own
`ab_user.fail_login_count` (reset by a successful login) and the time of the last failure
is kept in `ab_user.changed_on`: both in the metadata database, shared by every worker.

The Public role. Flask-AppBuilder asks "is this endpoint public?" before it checks the
logged-in user, twice per chart-data request: each time it loads the Public role and its
permissions from the SQLite metadata (two queries; about 15% of a cached chart request,
bench/README.md). The Public role is empty here by design (superset_config.py), and it
changes only when an admin edits it, so each worker keeps the role's (view, permission)
names for `PUBLIC_PERMISSIONS_TTL_S` seconds: an edit of the Public role applies within that
time. Everything else (the user's own roles and permissions, row-level security) is checked
on every request as before.

Runs inside Superset's environment (.venv-superset); referenced from superset_config.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from typing import Any

from flask import current_app
from flask_appbuilder.security.api import SecurityApi
from sqlglot import exp
from superset.errors import ErrorLevel, SupersetError, SupersetErrorType
from superset.exceptions import SupersetParseError, SupersetSecurityException
from superset.security import SupersetSecurityManager
from superset.sql.parse import SQLScript
from werkzeug.security import check_password_hash

from superset_assets.serving_connection import HARMLESS_TABLE_FUNCTIONS

logger = logging.getLogger(__name__)
PUBLIC_PERMISSIONS_TTL_S = 10.0

# SQL Lab: what a statement may be, what it may read from.
READ_STATEMENTS = (exp.Select, exp.SetOperation)
ALLOWED_TABLE_FUNCTIONS = frozenset(name.upper() for name in HARMLESS_TABLE_FUNCTIONS)
PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
GUARD = "sql_lab_statement_filter"  # in the error's `extra`, so a refusal says who refused


class SqlLabRefused(ValueError):
    """A SQL Lab query the statement filter does not run; the message says why."""


def _function_name(node: exp.Expression) -> str:
    """A function's name as Superset's DISALLOWED_SQL_FUNCTIONS check compares it (upper case)."""
    if isinstance(node, exp.Anonymous) or not isinstance(node, exp.Func):
        return str(node.name).upper()
    return node.sql_name().upper()


def check_sql_lab_statement(sql: str, disallowed_functions: set[str] | frozenset[str]) -> None:
    """Raise SqlLabRefused unless `sql` is one read-only statement over plain table names."""
    try:
        statements = SQLScript(sql, engine="duckdb").statements
    except SupersetParseError as error:
        raise SqlLabRefused("无法解析的语句不予执行 (unparsable SQL)") from error
    if len(statements) != 1:
        raise SqlLabRefused(f"每次只能执行一条语句 (one statement per run, got {len(statements)})")
    tree = statements[0]._parsed
    if not isinstance(tree, READ_STATEMENTS) or tree.find(exp.Command):
        kind = tree.name.upper() if isinstance(tree, exp.Command) else type(tree).__name__.upper()
        raise SqlLabRefused(f"只允许只读查询 SELECT (read-only queries only, not {kind})")
    for source in tree.find_all(exp.Table, exp.Lateral):
        target = source.this
        if isinstance(target, exp.Func) or (isinstance(source, exp.Lateral) and target is not None):
            name = _function_name(target)
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise SqlLabRefused(f"不允许表函数 {name} (table function not allowed)")
            continue
        parts = [source.name, source.args.get("db"), source.args.get("catalog")]
        names = [part.name if isinstance(part, exp.Expression) else part for part in parts if part]
        if not isinstance(target, exp.Identifier) or not all(PLAIN_NAME.match(str(n)) for n in names):
            raise SqlLabRefused(f"只能查询服务库中的表 (plain table names only, not {source.sql('duckdb')})")
    used = {_function_name(node) for node in tree.find_all(exp.Func)}
    refused = sorted(used & {name.upper() for name in disallowed_functions})
    if refused:
        raise SqlLabRefused(f"不允许的函数 (functions not allowed): {', '.join(refused)}")


class ServingSecurityManager(SupersetSecurityManager):
    """SupersetSecurityManager with SQL Lab's statement filter, the login lockout and rate limit,
    and a short-lived per-worker copy of the Public role's permissions."""

    _public: tuple[float, frozenset[tuple[str, str]]] | None = None
    _public_lock = threading.Lock()

    # -- the Public role ---------------------------------------------------------------
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

    # -- SQL Lab -----------------------------------------------------------------------
    def raise_for_access(self, *args: Any, **kwargs: Any) -> None:
        """Superset's access check, after the statement filter for SQL typed by a user on a DuckDB
        database: a SQL Lab query, or `sql=` with a database (a virtual dataset's SQL)."""
        query, database, sql = kwargs.get("query"), kwargs.get("database"), kwargs.get("sql")
        if sql is None and query is not None and hasattr(query, "database") and hasattr(query, "sql"):
            database, sql = query.database, query.sql
        if sql is not None and database is not None and database.db_engine_spec.engine == "duckdb":
            disallowed = current_app.config.get("DISALLOWED_SQL_FUNCTIONS", {}).get("duckdb", set())
            try:
                check_sql_lab_statement(sql, disallowed)
            except SqlLabRefused as refused:
                logger.warning("SQL Lab statement refused: %s", refused)
                raise SupersetSecurityException(
                    SupersetError(
                        error_type=SupersetErrorType.QUERY_SECURITY_ACCESS_ERROR,
                        message=f"SQL Lab 拒绝执行: {refused}",
                        level=ErrorLevel.ERROR,
                        extra={"guard": GUARD, "reason": str(refused)},
                    )
                ) from refused
        super().raise_for_access(*args, **kwargs)

    # -- logins ------------------------------------------------------------------------
    def register_views(self) -> None:
        """Superset's views; then the login rate limit on the REST login too."""
        super().register_views()
        if self.is_auth_limited:
            for view in self.appbuilder.baseviews:
                if isinstance(view, SecurityApi) and getattr(view, "blueprint", None) is not None:
                    self.limiter.limit(self.auth_rate_limit, methods=["POST"])(view.blueprint)

    def _locked_until(self, user: Any) -> dt.datetime | None:
        """Until when the account refuses every login, or None."""
        failures = current_app.config["SMARTCOMM_LOGIN_LOCKOUT_FAILURES"]  # superset_config.py
        window = dt.timedelta(seconds=current_app.config["SMARTCOMM_LOGIN_LOCKOUT_S"])
        if (user.fail_login_count or 0) < failures or user.changed_on is None:
            return None
        until = user.changed_on + window
        return until if until > dt.datetime.now() else None

    def auth_user_db(self, username: str, password: str) -> Any:
        """Flask-AppBuilder's password check, refused outright while the account is locked."""
        user = self.find_user(username=username) if username else None
        if user is None and username:
            user = self.find_user(email=username)
        until = self._locked_until(user) if user is not None else None
        if until is not None:
            check_password_hash(current_app.config["AUTH_DB_FAKE_PASSWORD_HASH_CHECK"], "password")  # same time
            logger.warning("login refused: %s is locked until %s", user.username, until.isoformat(timespec="seconds"))
            return None
        return super().auth_user_db(username, password)

    def update_user_auth_stat(self, user: Any, success: bool = True) -> None:
        """Flask-AppBuilder's login counters; a failure also stamps its time (the lockout window)."""
        if not success:
            user.changed_on = dt.datetime.now()
        super().update_user_auth_stat(user, success)
