"""Superset's web tier and secrets (issue 19): headers, cookies, keys, logins, demo mode.

Against a real Superset where a server is needed: a session cookie or API token forged with a
guessed key is refused (and the same forgery with the real key is accepted, so the test can
tell), 20 wrong logins lock the account (the lockout lives in the metadata database), a burst
of logins is rate-limited, the CSP names no third-party origin. Without one: outside demo mode
there is no generated key, no demo user, and the first admin is created by hand.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from itsdangerous import URLSafeTimedSerializer

from core.demo import DemoModeRequired
from superset_assets import server
from tests.superset.conftest import RunningSuperset
from tests.superset.fixtures import login

# Keys an attacker tries first: Superset's documented defaults and examples.
GUESSED_KEYS = ["CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", "thisISaSECRET_1234", "YOUR_OWN_RANDOM_GENERATED_SECRET_KEY"]
CONFIG_PROBE = """
import json, runpy
config = runpy.run_path({path!r})
print(json.dumps({{k: config[k] for k in ("SESSION_COOKIE_SECURE", "GUEST_TOKEN_JWT_SECRET", "TALISMAN_ENABLED")}}
                 | {{"force_https": config["TALISMAN_CONFIG"]["force_https"]}}))
"""


class _CompactJSON:
    """Flask's session serializer for plain values (flask.json.tag adds nothing to str and bool)."""

    @staticmethod
    def dumps(value: object) -> str:
        return json.dumps(value, separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes) -> object:
        return json.loads(text)


def session_cookie(key: str, user_id: int) -> str:
    """A Flask-Login session for `user_id`, signed as Flask signs it with `key`."""
    signer = URLSafeTimedSerializer(
        key,
        salt="cookie-session",
        serializer=_CompactJSON,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    return signer.dumps({"_user_id": str(user_id), "_fresh": True, "_id": "f" * 128})


def access_token(key: str, user_id: int) -> str:
    """A Flask-JWT-Extended access token for `user_id`, signed with `key`."""
    now = int(time.time())
    claims = {"sub": str(user_id), "fresh": True, "type": "access", "jti": "probe", "iat": now, "nbf": now}
    with warnings.catch_warnings():  # a guessed key may be short: that is the point
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode({**claims, "exp": now + 600}, key, algorithm="HS256")


def form_login(base_url: str, username: str, password: str) -> bool:
    """The browser's login: the form at /login/ with its CSRF token; True when it lets the user in."""
    with httpx.Client(base_url=base_url, timeout=60) as http:
        page = http.get("/login/").text
        csrf = re.search(r'name="csrf_token"\s+id="csrf_token"\s+value="([^"]+)"', page).group(1)
        reply = http.post("/login/", data={"username": username, "password": password, "csrf_token": csrf})
        target = urlsplit(reply.headers.get("location", "")).path
        return reply.status_code in (302, 303) and not target.rstrip("/").endswith("/login")


def create_user(superset: RunningSuperset, username: str, password: str) -> None:
    """A user of its own for a test that locks it (Superset's CLI, with the instance's configuration)."""
    done = superset.run_superset(
        "superset", "fab", "create-user", "--role", "official", "--username", username, "--firstname", "T",
        "--lastname", "U", "--email", f"{username}@test.invalid", "--password", password,
    )  # fmt: skip
    assert done.returncode == 0 and "created" in done.stdout, done.stdout[-500:] + done.stderr[-500:]


# -- headers and cookies ------------------------------------------------------------------
@pytest.mark.superset
def test_talisman_headers_and_a_csp_without_third_party_origins(superset: RunningSuperset) -> None:
    reply = httpx.get(f"{superset.url}/login/", timeout=60)
    assert reply.headers["x-frame-options"] == "SAMEORIGIN"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    csp = dict(part.strip().split(" ", 1) for part in reply.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'self'"
    assert "'nonce-" in csp["script-src"] and "unsafe-eval" not in csp["script-src"]
    assert not [d for d, sources in csp.items() if re.search(r"https?:|\*", sources)], csp
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; SMARTCOMM_HTTPS=1 sets it (next test)


@pytest.mark.superset
def test_the_configuration_refuses_published_keys_and_follows_https(superset: RunningSuperset) -> None:
    probe = CONFIG_PROBE.format(path=str(server.CONFIG_PATH))
    for key in [*GUESSED_KEYS, "short"]:
        done = superset.run_superset("python", "-c", probe, env={"SUPERSET_SECRET_KEY": key})
        assert done.returncode != 0 and "SUPERSET_SECRET_KEY" in done.stderr, (key, done.stdout[-300:])
    configs = []
    for key, https in (("k" * 40, "1"), ("q" * 40, "0")):
        done = superset.run_superset("python", "-c", probe, env={"SUPERSET_SECRET_KEY": key, "SMARTCOMM_HTTPS": https})
        assert done.returncode == 0, done.stderr[-1000:]
        configs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    https_on, https_off = configs
    assert https_on["SESSION_COOKIE_SECURE"] is True and https_on["force_https"] is True
    assert https_off["SESSION_COOKIE_SECURE"] is False and https_on["TALISMAN_ENABLED"] is True
    guest = {c["GUEST_TOKEN_JWT_SECRET"] for c in configs}
    assert len(guest) == 2 and "test-guest-secret-change-me" not in guest and min(map(len, guest)) >= 32


# -- keys and secrets ---------------------------------------------------------------------
@pytest.mark.superset
def test_a_session_or_token_forged_with_a_guessed_key_is_refused(superset: RunningSuperset) -> None:
    admin_id = superset.client("admin").get("/api/v1/me/").json()["result"]["id"]
    real = superset.instance.env["SUPERSET_SECRET_KEY"]
    for key in [real, *GUESSED_KEYS]:
        by_cookie = httpx.get(f"{superset.url}/api/v1/me/", cookies={"session": session_cookie(key, admin_id)})
        by_token = httpx.get(
            f"{superset.url}/api/v1/me/", headers={"Authorization": f"Bearer {access_token(key, admin_id)}"}
        )
        if key == real:  # the forgery itself is right: with the real key it is admin
            assert by_cookie.status_code == 200 and by_cookie.json()["result"]["username"] == "admin"
            assert by_token.status_code == 200 and by_token.json()["result"]["username"] == "admin"
        else:
            assert by_cookie.status_code == 401, (key, by_cookie.text[:200])
            assert by_token.status_code in (401, 422), (key, by_token.text[:200])


@pytest.mark.superset
def test_secrets_live_outside_the_data_and_metadata_folders(superset: RunningSuperset) -> None:
    inst = superset.instance
    secrets = inst.secrets.resolve()
    for folder in (inst.data_dir.resolve(), inst.home.resolve()):
        assert not secrets.is_relative_to(folder), (secrets, folder)
        assert not [p for p in folder.rglob("*") if p.name in (server.SECRET_KEY_FILE, server.LOGINS_FILE)]
    assert (secrets / server.SECRET_KEY_FILE).read_text().strip() == inst.env["SUPERSET_SECRET_KEY"]
    assert secrets.stat().st_mode & 0o777 == 0o700
    for name in (server.SECRET_KEY_FILE, server.LOGINS_FILE):
        assert (secrets / name).stat().st_mode & 0o777 == 0o600


def test_the_server_needs_a_key_outside_the_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMARTCOMM_DEMO", "0")
    monkeypatch.delenv("SUPERSET_SECRET_KEY", raising=False)
    with pytest.raises(DemoModeRequired, match="SUPERSET_SECRET_KEY"):
        server.instance(data_dir=tmp_path / "data", home=tmp_path / "home", secrets_path=tmp_path / "secrets")
    assert not (tmp_path / "secrets" / server.SECRET_KEY_FILE).exists()
    monkeypatch.setenv("SMARTCOMM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMARTCOMM_SUPERSET_SECRETS", str(tmp_path / "secrets"))
    assert server.main(["--prepare-only"]) == 2


def test_demo_secrets_move_out_of_an_old_metadata_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`make serve` used to keep the key and the demo logins in <data>/superset/."""
    monkeypatch.setenv("SMARTCOMM_DEMO", "1")
    monkeypatch.delenv("SUPERSET_SECRET_KEY", raising=False)
    home = tmp_path / "data" / "superset"
    home.mkdir(parents=True)
    (home / server.SECRET_KEY_FILE).write_text("k" * 64)
    (home / server.LOGINS_FILE).write_text('{"admin": "pw"}')
    inst = server.instance(data_dir=tmp_path / "data", home=home, secrets_path=tmp_path / "secrets")
    assert inst.env["SUPERSET_SECRET_KEY"] == "k" * 64 and inst.logins() == {"admin": "pw"}
    assert sorted(p.name for p in home.iterdir()) == []


# -- logins -------------------------------------------------------------------------------
@pytest.mark.superset
def test_twenty_wrong_logins_lock_the_account(superset: RunningSuperset) -> None:
    username, password = "lockout_probe", "the-right-password-42"
    create_user(superset, username, password)
    http = httpx.Client(base_url=superset.url, timeout=60)
    assert login(http, username, password).status_code == 200
    statuses = []
    for i in range(20):  # paced under the rate limit (the next test): every one reaches the password check
        statuses.append(login(http, username, f"wrong-{i}", tries=1).status_code)
        time.sleep(0.3)
    assert statuses == [401] * 20, statuses
    assert login(http, username, password).status_code == 401
    assert not form_login(superset.url, username, password)
    assert login(http, "official", superset.instance.logins()["official"]).status_code == 200  # others log in
    # The lock is the metadata database's (shared by every worker), for a window after the last failure.
    with sqlite3.connect(superset.instance.home / "superset.db") as con:
        ((failures,),) = con.execute("select fail_login_count from ab_user where username = ?", [username])
        assert failures >= 5
        earlier = (dt.datetime.now() - dt.timedelta(hours=1)).isoformat(sep=" ")
        con.execute("update ab_user set changed_on = ? where username = ?", [earlier, username])
    assert login(http, username, password).status_code == 200
    assert form_login(superset.url, username, password)


@pytest.mark.superset
def test_a_burst_of_logins_is_rate_limited(superset: RunningSuperset) -> None:
    def attempt(i: int) -> int:
        with httpx.Client(base_url=superset.url, timeout=60) as http:
            return login(http, f"nobody_{i}", "wrong", tries=1).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(24)))
    time.sleep(1.1)
    assert set(statuses) <= {401, 429} and 429 in statuses, statuses


# -- outside demo mode --------------------------------------------------------------------
@pytest.mark.superset
def test_outside_the_demo_no_demo_user_and_the_first_admin_by_hand(superset: RunningSuperset, tmp_path: Path) -> None:
    """The running instance's metadata, copied, set up again without SMARTCOMM_DEMO: the demo
    users (printed passwords) are switched off, none is created, and setup asks for the first
    admin, which Superset's own command creates; then it imports as before."""
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(superset.instance.home / "superset.db") as live, sqlite3.connect(home / "superset.db") as copy:
        live.backup(copy)  # consistent while the server writes
    env = {
        "SMARTCOMM_DEMO": "0",
        "SUPERSET_SECRET_KEY": "p" * 48,
        "SMARTCOMM_SUPERSET_HOME": str(home),
        "SMARTCOMM_SUPERSET_SECRETS": str(tmp_path / "secrets"),
    }
    setup = ("python", "-m", "superset_assets.setup_superset")
    refused = superset.run_superset(*setup, env=env)
    assert refused.returncode == 3 and "--create-admin" in refused.stdout, refused.stdout[-800:] + refused.stderr[-800:]
    created = superset.run_superset(
        "superset", "fab", "create-admin", "--username", "first_admin", "--firstname", "F", "--lastname", "A",
        "--email", "first_admin@example.org", "--password", "a-long-admin-password", env=env,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout[-500:] + created.stderr[-500:]
    done = superset.run_superset(*setup, env=env)
    assert done.returncode == 0 and "demo logins" not in done.stdout, done.stdout[-800:] + done.stderr[-800:]
    with sqlite3.connect(home / "superset.db") as con:
        users = dict(con.execute("select username, active from ab_user").fetchall())
    assert {name: active for name, active in users.items() if name in superset.instance.logins()} == dict.fromkeys(
        superset.instance.logins(), 0
    )
    assert users["first_admin"] == 1
    assert not (tmp_path / "secrets" / server.LOGINS_FILE).exists()
