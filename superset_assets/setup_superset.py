"""Set up a Superset instance: import the dashboards, roles, row-level security, demo users.

Runs in Superset's environment (.venv-superset) after `superset db upgrade` and
`superset init`; idempotent, so `make serve` runs it every time:

    SUPERSET_CONFIG_PATH=superset_assets/superset_config.py \\
        .venv-superset/bin/python -m superset_assets.setup_superset

Roles come from roles.yml (explicit permission lists, data access per dataset), streets and
sites from config/pilots.yml (ids checked against a slug pattern before they go into a
row-level filter). It fails, and `make serve` does not start, when a serving dataset with a
street_id or site_id column lacks a street role's filter. Demo users exist only in demo mode
(SMARTCOMM_DEMO=1): passwords are generated once into the secrets folder (server.py) and
printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

from core.demo import demo_mode
from superset_assets.bundle import build_bundle, load_assets
from superset_assets.server import LOGINS_FILE, secrets_dir

HERE = Path(__file__).resolve().parent
ROLES_FILE = HERE / "roles.yml"
REGISTRY_FILE = HERE.parent / "config" / "pilots.yml"
SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
DEMO_EMAIL_DOMAIN = "demo.invalid"
STREET_COLUMNS = frozenset({"street_id", "site_id"})


class NoAdmin(RuntimeError):
    """Outside demo mode, an instance has no admin until someone creates one."""


class StreetFilterMissing(RuntimeError):
    """A serving dataset with street_id or site_id that some street role reads unfiltered."""


def _slug(value: Any, what: str) -> str:
    if not isinstance(value, str) or not SLUG.match(value):
        raise ValueError(f"{what} {value!r} in the registry is not a slug (^[a-z][a-z0-9_]*$)")
    return value


def streets() -> list[dict[str, Any]]:
    """Streets of the pilot registry with their sites (plain YAML here: Superset's env does not
    import ingestion), every id validated: they are written into row-level filters."""
    path = Path(os.environ.get("SMARTCOMM_REGISTRY") or REGISTRY_FILE)
    registry = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for street in registry["streets"]:
        street_id = _slug(street["street_id"], "street_id")
        sites = [
            _slug(site["site_id"], "site_id")
            for site in registry.get("sites", [])
            if site.get("street_id") == street_id
        ]
        out.append({"street_id": street_id, "name_zh": street["name_zh"], "site_ids": sites})
    return out


def _expand(template: str, street: dict[str, Any]) -> str:
    site_ids = ", ".join(f"'{site}'" for site in street["site_ids"]) or "NULL"
    return template.format(street_id=street["street_id"], street_name_zh=street["name_zh"], site_ids=site_ids)


# -- demo users -------------------------------------------------------------------------
def demo_logins(secrets_path: Path, usernames: list[str]) -> tuple[dict[str, str], set[str]]:
    """The demo passwords (kept private to this user), and the names that got a new one."""
    path = secrets_path / LOGINS_FILE
    logins = json.loads(path.read_text()) if path.exists() else {}
    new = {name for name in usernames if name not in logins}
    for name in new:
        logins[name] = secrets.token_urlsafe(12)
    path.write_text(json.dumps(logins, indent=2, ensure_ascii=False))
    path.chmod(0o600)
    return logins, new


def ensure_user(sm: Any, spec: dict[str, str], role_name: str, password: str, new_password: bool) -> None:
    """Create a demo user once; later runs keep its password unless its login was missing."""
    role = sm.find_role(role_name)
    user = sm.find_user(username=spec["username"])
    if user is None:
        created = sm.add_user(
            spec["username"],
            spec["first_name"],
            spec["last_name"],
            f"{spec['username']}@{DEMO_EMAIL_DOMAIN}",
            role,
            password=password,
        )
        if not created:
            raise RuntimeError(f"could not create user {spec['username']}")
        return
    user.roles = [role]
    user.active = True
    sm.update_user(user)
    if new_password:
        sm.reset_password(user.id, password)


def demo_user_specs(spec: dict[str, Any], street_list: list[dict[str, Any]]) -> list[tuple[dict[str, str], str]]:
    users: list[tuple[dict[str, str], str]] = []
    for user in spec["demo_users"]:
        if user.get("per_street"):
            for street in street_list:
                expanded = {k: _expand(v, street) for k, v in user.items() if isinstance(v, str)}
                users.append((expanded, expanded["role"]))
        else:
            users.append((user, user["role"]))
    return users


def deactivate_demo_users(sm: Any) -> list[str]:
    """Outside demo mode: demo users left from a demo run (their passwords were printed) cannot log in."""
    from superset.extensions import db

    user_model = sm.user_model
    demo = user_model.email.like(f"%@{DEMO_EMAIL_DOMAIN}")
    left = db.session.query(user_model).filter(demo, user_model.active.is_(True)).all()
    for user in left:
        user.active = False
    db.session.commit()
    return [user.username for user in left]


# -- assets -----------------------------------------------------------------------------
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


def serving_datasets() -> list[Any]:
    """Every dataset on the serving database, ours and any added in the UI."""
    from superset.connectors.sqla.models import SqlaTable
    from superset.extensions import db

    return db.session.query(SqlaTable).filter_by(database_id=serving_database().id).all()


def bundle_datasets() -> list[Any]:
    """The datasets of assets/datasets/ (matched by UUID): what the dashboards read."""
    uuids = {str(doc["uuid"]) for name, doc in load_assets().items() if name.startswith("datasets/")}
    return [table for table in serving_datasets() if str(table.uuid) in uuids]


def dataset_columns(table: Any) -> set[str]:
    """The dataset's columns in the metadata and, when the serving file is there, in the table
    itself: a column left out of the YAML still counts."""
    columns = {column.column_name for column in table.columns}
    with contextlib.suppress(Exception):  # no serving file yet, or a virtual dataset that fails: metadata only
        columns |= {column["column_name"] for column in table.external_metadata()}
    return columns


# -- roles ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoleSpec:
    name: str
    description: str
    permission_sets: tuple[str, ...]
    datasets: str | None = None  # "bundle": datasource_access per dataset of the bundle
    database: str | None = None  # "serving": database_access on it


def role_specs(spec: dict[str, Any], street_list: list[dict[str, Any]]) -> list[RoleSpec]:
    """The roles of roles.yml, street roles expanded from the registry."""
    roles = [
        RoleSpec(
            name,
            role["description"],
            tuple(role["permission_sets"]),
            role.get("datasets"),
            role.get("database"),
        )
        for name, role in spec["roles"].items()
    ]
    like = spec["roles"][spec["street_roles"]["like"]]
    for street in street_list:
        roles.append(
            RoleSpec(
                _expand(spec["street_roles"]["name"], street),
                f"Street official of {street['name_zh']}: the dashboards, only this street's rows",
                tuple(like["permission_sets"]),
                like.get("datasets"),
                like.get("database"),
            )
        )
    return roles


def _pvm(sm: Any, permission: str, view: str, create: bool = False) -> Any:
    pvm = sm.find_permission_view_menu(permission, view)
    if pvm is None and create:
        sm.add_permission_view_menu(permission, view)
        pvm = sm.find_permission_view_menu(permission, view)
    if pvm is None:
        raise RuntimeError(f"permission [{permission}, {view}] unknown to this Superset (roles.yml)")
    return pvm


def build_role(sm: Any, role_spec: RoleSpec, permission_sets: dict[str, list[list[str]]]) -> Any:
    """(Re)build a role from its permission sets and data access, replacing what it had."""
    role = sm.find_role(role_spec.name) or sm.add_role(role_spec.name)
    permissions = {_pvm(sm, perm, view) for name in role_spec.permission_sets for perm, view in permission_sets[name]}
    if role_spec.database == "serving":
        permissions.add(_pvm(sm, "database_access", serving_database().perm, create=True))
    if role_spec.datasets == "bundle":
        permissions |= {_pvm(sm, "datasource_access", table.perm, create=True) for table in bundle_datasets()}
    role.permissions = sorted(permissions, key=lambda p: p.id)
    if hasattr(role, "description"):
        role.description = role_spec.description
    return role


# -- row-level security -----------------------------------------------------------------
def street_filter_groups(
    street_roles: dict[str, str], tables: list[Any], columns: dict[int, set[str]]
) -> list[tuple[str, str, list[Any]]]:
    """(name suffix, clause template, datasets) for each kind of street-bearing dataset."""
    with_both = [t for t in tables if columns[t.id] >= STREET_COLUMNS]
    street_only = [t for t in tables if "street_id" in columns[t.id] and "site_id" not in columns[t.id]]
    site_only = [t for t in tables if "site_id" in columns[t.id] and "street_id" not in columns[t.id]]
    return [
        ("", street_roles["rls_clause"], with_both),
        (" (street tables)", street_roles["rls_clause_street_only"], street_only),
        (" (site tables)", street_roles["rls_clause_site_only"], site_only),
    ]


def row_level_security(
    street_roles: dict[str, str], street_list: list[dict[str, Any]], columns: dict[int, set[str]]
) -> dict[str, int]:
    """Regular RLS filters per street role over every dataset of the bundle with a street_id
    or site_id column (a dataset added in the UI is not granted to street roles at all)."""
    from superset import security_manager as sm
    from superset.connectors.sqla.models import RowLevelSecurityFilter
    from superset.extensions import db
    from superset.utils.core import RowLevelSecurityFilterType

    groups = street_filter_groups(street_roles, bundle_datasets(), columns)
    counts = {}
    for street in street_list:
        role = sm.find_role(_expand(street_roles["name"], street))
        for suffix, clause_template, group in groups:
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
        counts[role.name] = sum(len(group) for _, _, group in groups)
    db.session.commit()
    return counts


def check_street_filters(
    street_roles: dict[str, str], street_list: list[dict[str, Any]], columns: dict[int, set[str]]
) -> None:
    """Refuse to serve while any serving dataset with a street_id or site_id column lacks a
    regular row-level filter of every street role: a street official would see every street."""
    from superset import security_manager as sm
    from superset.connectors.sqla.models import RowLevelSecurityFilter
    from superset.extensions import db
    from superset.utils.core import RowLevelSecurityFilterType

    role_names = {_expand(street_roles["name"], street) for street in street_list}
    filtered: dict[str, set[int]] = {name: set() for name in role_names}
    for rls in db.session.query(RowLevelSecurityFilter).all():
        if rls.filter_type != RowLevelSecurityFilterType.REGULAR.value:
            continue
        for role in rls.roles:
            if role.name in filtered:
                filtered[role.name] |= {table.id for table in rls.tables}
    missing = []
    for table in serving_datasets():
        if STREET_COLUMNS & columns.get(table.id, set()):
            lacking = sorted(name for name in role_names if table.id not in filtered[name])
            if lacking:
                missing.append(f"{table.table_name} (id {table.id}) for {', '.join(lacking)}")
    for name in role_names:
        role = sm.find_role(name)
        broad = [
            f"{p.permission.name} on {p.view_menu.name}"
            for p in role.permissions
            if p.permission.name
            in ("database_access", "schema_access", "catalog_access", "all_datasource_access", "all_database_access")
        ]
        if broad:
            missing.append(f"{name} has {', '.join(broad)} (street roles get datasets one by one)")
    if missing:
        raise StreetFilterMissing(
            "serving datasets with street_id or site_id lack the street filter: "
            + "; ".join(missing)
            + ". Add the dataset to superset_assets/assets/datasets/ (make serve then filters it) or delete it."
        )


# -- all together -----------------------------------------------------------------------
def setup(secrets_path: Path) -> dict[str, str]:
    """Import, roles, RLS and its check; demo users in demo mode. Returns {username: role} of
    the demo users (empty outside demo mode)."""
    from superset import security_manager as sm
    from superset.extensions import db

    spec = yaml.safe_load(ROLES_FILE.read_text(encoding="utf-8"))
    street_list = streets()
    users = demo_user_specs(spec, street_list) if demo_mode() else []
    logins, new = demo_logins(secrets_path, [u["username"] for u, _ in users]) if users else ({}, set())

    admin = next((u for u, role in users if role == "Admin"), None)
    if admin is not None:
        ensure_user(sm, admin, "Admin", logins[admin["username"]], admin["username"] in new)
        db.session.commit()
        import_assets(admin["username"])
    else:
        deactivated = deactivate_demo_users(sm)
        if deactivated:
            print(f"demo users deactivated outside demo mode: {', '.join(deactivated)}")
        admin_role = sm.find_role("Admin")
        first_admin = next((u for u in sm.get_all_users() if u.active and admin_role in u.roles), None)
        if first_admin is None:
            raise NoAdmin(
                "no active admin yet (outside demo mode no user is created): create the first one with "
                "`python -m superset_assets.server --create-admin` (Superset's `superset fab create-admin` "
                "with this instance's configuration), then run `make serve` again"
            )
        import_assets(first_admin.username)

    for role_spec in role_specs(spec, street_list):
        build_role(sm, role_spec, spec["permission_sets"])
    db.session.commit()
    for user, role in users:
        ensure_user(sm, user, role, logins[user["username"]], user["username"] in new)
    db.session.commit()
    columns = {table.id: dataset_columns(table) for table in serving_datasets()}
    row_level_security(spec["street_roles"], street_list, columns)
    check_street_filters(spec["street_roles"], street_list, columns)
    return {u["username"]: role for u, role in users}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Import the dashboards and set up roles, RLS and (demo mode) demo users. "
        "Example: SUPERSET_CONFIG_PATH=superset_assets/superset_config.py "
        ".venv-superset/bin/python -m superset_assets.setup_superset"
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the demo logins")
    parser.add_argument(
        "--check-only", action="store_true", help="only check that every street-bearing dataset is filtered"
    )
    args = parser.parse_args(argv)
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        home = Path(app.config["SQLALCHEMY_DATABASE_URI"].split("sqlite:///", 1)[1].split("?", 1)[0]).parent
        secrets_path = secrets_dir(home)
        if args.check_only:
            spec = yaml.safe_load(ROLES_FILE.read_text(encoding="utf-8"))
            columns = {table.id: dataset_columns(table) for table in serving_datasets()}
            try:
                check_street_filters(spec["street_roles"], streets(), columns)
            except StreetFilterMissing as refused:
                print(f"!! {refused}")
                return 3
            print("every serving dataset with street_id or site_id has the street filters")
            return 0
        try:
            roles = setup(secrets_path)
        except (NoAdmin, StreetFilterMissing) as refused:
            print(f"!! {refused}")
            return 3
        assets = load_assets()
        dashboards = sum(1 for name in assets if name.startswith("dashboards/"))
        charts = sum(1 for name in assets if name.startswith("charts/"))
    print(f"imported {dashboards} dashboards, {charts} charts; roles and row-level security set")
    if roles and not args.quiet:
        logins = json.loads((secrets_path / LOGINS_FILE).read_text())
        print("demo logins (demo only; stored in", secrets_path / LOGINS_FILE, "):")
        for username, role in roles.items():
            print(f"  {username:<18} {logins[username]:<20} role {role}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
