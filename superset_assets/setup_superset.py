"""Set up a Superset instance: demo users, import the dashboards, roles and row-level security.

Runs in Superset's environment (.venv-superset) after `superset db upgrade` and
`superset init`; idempotent, so `make serve` runs it every time:

    SUPERSET_CONFIG_PATH=superset_assets/superset_config.py \\
        .venv-superset/bin/python -m superset_assets.setup_superset

Roles come from roles.yml, streets from config/pilots.yml. Demo passwords are generated
once, kept in <superset home>/demo_logins.json (mode 0600) and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

from superset_assets.bundle import build_bundle, load_assets

HERE = Path(__file__).resolve().parent
ROLES_FILE = HERE / "roles.yml"
REGISTRY_FILE = HERE.parent / "config" / "pilots.yml"


def streets() -> list[dict[str, str]]:
    """Streets of the pilot registry (plain YAML here: Superset's env does not import ingestion)."""
    path = Path(os.environ.get("SMARTCOMM_REGISTRY") or REGISTRY_FILE)
    return yaml.safe_load(path.read_text(encoding="utf-8"))["streets"]


def demo_logins(home: Path, usernames: list[str]) -> dict[str, str]:
    """Random demo passwords, generated once per data folder and kept private to this user."""
    path = home / "demo_logins.json"
    logins = json.loads(path.read_text()) if path.exists() else {}
    for name in usernames:
        logins.setdefault(name, secrets.token_urlsafe(12))
    path.write_text(json.dumps(logins, indent=2, ensure_ascii=False))
    path.chmod(0o600)
    return logins


def _expand(template: str, street: dict[str, str]) -> str:
    return template.format(street_id=street["street_id"], street_name_zh=street["name_zh"])


def ensure_user(sm: Any, spec: dict[str, str], role_name: str, password: str) -> None:
    role = sm.find_role(role_name)
    user = sm.find_user(username=spec["username"])
    if user is None:
        created = sm.add_user(
            spec["username"],
            spec["first_name"],
            spec["last_name"],
            f"{spec['username']}@demo.invalid",
            role,
            password=password,
        )
        if not created:
            raise RuntimeError(f"could not create user {spec['username']}")
    else:
        user.roles = [role]
        sm.update_user(user)
        sm.reset_password(user.id, password)


def import_assets(username: str) -> None:
    """Import every asset, overwriting what exists (matched by UUID).

    `superset import-dashboards` overwrites the dashboards only and keeps existing charts,
    datasets and the database as they were; importing each kind with overwrite makes an
    edited YAML file (or a moved serving database) take effect on the next `make serve`.
    """
    from flask import g
    from superset import security_manager
    from superset.commands.chart.importers.dispatcher import ImportChartsCommand
    from superset.commands.dashboard.importers.dispatcher import ImportDashboardsCommand
    from superset.commands.database.importers.dispatcher import ImportDatabasesCommand
    from superset.commands.dataset.importers.dispatcher import ImportDatasetsCommand
    from superset.commands.importers.v1.utils import get_contents_from_bundle

    g.user = security_manager.find_user(username=username)
    with zipfile.ZipFile(BytesIO(build_bundle())) as bundle:
        contents = get_contents_from_bundle(bundle)
    steps = [
        (ImportDatabasesCommand, "Database", ("databases/",)),
        (ImportDatasetsCommand, "SqlaTable", ("databases/", "datasets/")),
        (ImportChartsCommand, "Slice", ("databases/", "datasets/", "charts/")),
        (ImportDashboardsCommand, "Dashboard", ("databases/", "datasets/", "charts/", "dashboards/")),
    ]
    for command, kind, prefixes in steps:
        subset = {name: text for name, text in contents.items() if name.startswith(prefixes)}
        subset["metadata.yaml"] = yaml.safe_dump(
            {"version": "1.0.0", "type": kind, "timestamp": "2026-01-01T00:00:00+00:00"}
        )
        command(subset, overwrite=True).run()


def serving_database() -> Any:
    from superset.extensions import db
    from superset.models.core import Database

    database = db.session.query(Database).filter_by(database_name="serving").one_or_none()
    if database is None:
        raise RuntimeError("the serving database was not imported")
    return database


def copy_role(sm: Any, name: str, base_roles: list[str], database: Any | None, description: str) -> Any:
    """(Re)build a role as the union of built-in roles, plus access to the serving database."""
    role = sm.find_role(name) or sm.add_role(name)
    permissions = set()
    for base in base_roles:
        base_role = sm.find_role(base)
        if base_role is None:
            raise RuntimeError(f"built-in role {base} missing: run `superset init` first")
        permissions.update(base_role.permissions)
    if database is not None:
        pvm = sm.find_permission_view_menu("database_access", database.perm)
        if pvm is None:
            sm.add_permission_view_menu("database_access", database.perm)
            pvm = sm.find_permission_view_menu("database_access", database.perm)
        permissions.add(pvm)
    role.permissions = sorted(permissions, key=lambda p: p.id)
    if hasattr(role, "description"):
        role.description = description
    return role


def row_level_security(street_roles: dict[str, Any], street_list: list[dict[str, str]]) -> dict[str, int]:
    """One regular RLS filter per street role over every serving dataset with a street_id column."""
    from superset import security_manager as sm
    from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable
    from superset.extensions import db
    from superset.utils.core import RowLevelSecurityFilterType

    database = serving_database()
    tables = db.session.query(SqlaTable).filter_by(database_id=database.id).all()
    with_site = [t for t in tables if {"street_id", "site_id"} <= {c.column_name for c in t.columns}]
    street_only = [t for t in tables if "street_id" in {c.column_name for c in t.columns} and t not in with_site]
    counts = {}
    for street in street_list:
        role = sm.find_role(_expand(street_roles["name"], street))
        for suffix, clause_template, group in (
            ("", street_roles["rls_clause"], with_site),
            (" (street tables)", street_roles["rls_clause_street_only"], street_only),
        ):
            name = f"{role.name}{suffix}"
            rls = db.session.query(RowLevelSecurityFilter).filter_by(name=name).one_or_none()
            if not group:
                if rls is not None:
                    db.session.delete(rls)
                continue
            rls = rls or RowLevelSecurityFilter(name=name)
            rls.filter_type = RowLevelSecurityFilterType.REGULAR.value
            rls.clause = _expand(clause_template, street)
            rls.description = f"Street official of {street['street_id']}: only this street's sites (and district rows)"
            rls.roles = [role]
            rls.tables = group
            db.session.add(rls)
        counts[role.name] = len(with_site) + len(street_only)
    db.session.commit()
    return counts


def setup(home: Path) -> dict[str, str]:
    from superset import security_manager as sm
    from superset.extensions import db

    spec = yaml.safe_load(ROLES_FILE.read_text(encoding="utf-8"))
    street_list = streets()
    users: list[tuple[dict[str, str], str]] = []
    for user in spec["demo_users"]:
        if user.get("per_street"):
            for street in street_list:
                expanded = {k: _expand(v, street) for k, v in user.items() if isinstance(v, str)}
                users.append((expanded, expanded["role"]))
        else:
            users.append((user, user["role"]))
    logins = demo_logins(home, [u["username"] for u, _ in users])

    admin = next(u for u, role in users if role == "Admin")
    ensure_user(sm, admin, "Admin", logins[admin["username"]])
    db.session.commit()
    import_assets(admin["username"])

    database = serving_database()
    for name, role in spec["roles"].items():
        copy_role(sm, name, role["base_roles"], database if role.get("serving_database") else None, role["description"])
    like = spec["roles"][spec["street_roles"]["like"]]
    for street in street_list:
        copy_role(
            sm,
            _expand(spec["street_roles"]["name"], street),
            like["base_roles"],
            database,
            f"Street official of {street['name_zh']}: dashboards only, rows of this street",
        )
    db.session.commit()
    for user, role in users:
        ensure_user(sm, user, role, logins[user["username"]])
    db.session.commit()
    row_level_security(spec["street_roles"], street_list)
    return {u["username"]: role for u, role in users}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Import the dashboards and set up roles, users and RLS. "
        "Example: SUPERSET_CONFIG_PATH=superset_assets/superset_config.py "
        ".venv-superset/bin/python -m superset_assets.setup_superset"
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the demo logins")
    args = parser.parse_args(argv)
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        home = Path(app.config["SQLALCHEMY_DATABASE_URI"].split("sqlite:///", 1)[1].split("?", 1)[0]).parent
        roles = setup(home)
        assets = load_assets()
        dashboards = sum(1 for name in assets if name.startswith("dashboards/"))
        charts = sum(1 for name in assets if name.startswith("charts/"))
    logins = json.loads((home / "demo_logins.json").read_text())
    print(f"imported {dashboards} dashboards, {charts} charts; roles and row-level security set")
    if not args.quiet:
        print("demo logins (demo only; stored in", home / "demo_logins.json", "):")
        for username, role in roles.items():
            print(f"  {username:<18} {logins[username]:<20} role {role}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
