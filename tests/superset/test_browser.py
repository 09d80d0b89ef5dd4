"""Log in with headless Debian Chromium, open every dashboard, fail on chart errors, save screenshots.

As the admin and as a street official (the least privileged role, with row-level security), under
the CSP Talisman sends (superset_config.py): any console error fails the test, except the
tracking pixel baked into Superset's bundle, which the CSP must block, and a viewer's
attempt to save a dashboard's label colours, which it may not (403).

Screenshots go to test-artifacts/superset/<slug>.png, a street official's to
test-artifacts/superset/<username>/<slug>.png (look at them: CJK text needs a font).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.superset.conftest import ARTIFACTS, RunningSuperset

CHROMIUM = Path("/usr/lib/chromium/chromium")
pytestmark = [
    pytest.mark.superset,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium missing: run `make setup-system`"),
]
# Every chart holder has finished: a drawn chart (ECharts canvas, table, big number), an
# empty state or an error, and no spinner.
DONE = "canvas, table, [class*=big-number], .ant-empty, .ant-alert-error, [role=alert]"
RENDERED = f"""() => {{
  const holders = [...document.querySelectorAll('.dashboard-component-chart-holder')];
  return holders.length > 0 && holders.every(h => !h.querySelector('.loading') && h.querySelector('{DONE}'));
}}"""
UNFINISHED = f"""() => [...document.querySelectorAll('.dashboard-component-chart-holder')]
  .filter(h => h.querySelector('.loading') || !h.querySelector('{DONE}'))
  .map(h => h.innerText.split('\\n')[0])"""
EMPTY = """() => [...document.querySelectorAll('.dashboard-component-chart-holder')]
  .filter(h => h.querySelector('.ant-empty')).map(h => h.innerText.split('\\n')[0])"""
# Charts whose default filters may leave them empty, and the query saying the data has nothing
# for them: 预警's list opens on open high and medium warnings, and a quiet period has none.
EMPTY_WHEN = {
    "预警清单（最新在前）": "select count(*) from fct_warnings where is_open and severity in ('high', 'medium')",
}
TRACKING_PIXEL = "apachesuperset.gateway.scarf.sh"  # baked into Superset's bundle; the CSP blocks it
COLOURS = re.compile(r"/api/v1/dashboard/\d+/colors")  # the frontend saves label colours; viewers may not


class Console:
    """The page's console errors, less the expected ones: the blocked tracking pixel (counted: the
    CSP must block it) and, for a viewer, the refused save of label colours."""

    def __init__(self, viewer: bool) -> None:
        self.viewer = viewer
        self.errors: list[str] = []
        self.pixel_blocked = 0

    def __call__(self, msg) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if TRACKING_PIXEL in msg.text and "Content Security Policy" in msg.text:
            self.pixel_blocked += 1
        elif not (self.viewer and COLOURS.search(url) and "403" in msg.text):
            self.errors.append(f"{msg.text[:300]} ({url})")


@pytest.mark.parametrize("who", ["admin", "street_"])
def test_dashboards_render_without_errors(superset: RunningSuperset, who: str) -> None:
    from playwright.sync_api import sync_playwright

    assert shutil.which("fc-list") is None or "Noto Sans CJK" in _fonts() or "WenQuanYi" in _fonts()
    username = superset.usernames(who)[0]
    artifacts = ARTIFACTS if username == "admin" else ARTIFACTS / username
    artifacts.mkdir(parents=True, exist_ok=True)
    dashboards = sorted(superset.client(username).dashboards(), key=lambda d: d["id"])
    assert len(dashboards) == 5
    problems: list[str] = []
    console = Console(viewer=username != "admin")
    may_be_empty = {title for title, sql in EMPTY_WHEN.items() if superset.serving.query(sql) == [(0,)]}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = logged_in_page(browser, superset, username)
        page.on("console", console)
        for dashboard in dashboards:
            console.errors.clear()
            reply = page.goto(f"{superset.url}/superset/dashboard/{dashboard['slug'] or dashboard['id']}/?standalone=0")
            if "content-security-policy" not in reply.headers:
                problems.append(f"{dashboard['dashboard_title']}: served without a Content-Security-Policy")
            page.wait_for_selector(".dashboard-component-chart-holder", timeout=60_000)
            expected = len(page.query_selector_all(".dashboard-component-chart-holder"))
            wait_rendered(page, dashboard["dashboard_title"])
            # Grow the window to the whole dashboard first: a full-page capture resizes the
            # viewport, and Superset redraws every chart (blank) while it does.
            height = page.evaluate("() => document.documentElement.scrollHeight")
            page.set_viewport_size({"width": 1600, "height": max(1100, height)})
            wait_rendered(page, dashboard["dashboard_title"])
            page.wait_for_timeout(2000)  # ECharts animation
            errors = page.query_selector_all(
                ".dashboard-component-chart-holder .ant-alert-error, .dashboard-component-chart-holder [role=alert]"
            )
            name = dashboard["slug"] or str(dashboard["id"])
            page.screenshot(path=str(artifacts / f"{name}.png"))
            if not page.evaluate(RENDERED):
                problems.append(f"{dashboard['dashboard_title']}: charts not drawn when the screenshot was taken")
            page.set_viewport_size({"width": 1600, "height": 1100})
            if errors:
                problems.append(f"{dashboard['dashboard_title']}: {[e.inner_text()[:200] for e in errors]}")
            empty = [title for title in page.evaluate(EMPTY) if title not in may_be_empty]
            if empty:
                problems.append(f"{dashboard['dashboard_title']}: charts without data {empty}")
            if expected == 0:
                problems.append(f"{dashboard['dashboard_title']}: no charts rendered")
            if console.errors:
                problems.append(f"{dashboard['dashboard_title']}: console errors {console.errors[:3]}")
        browser.close()
    assert not problems, "\n".join(problems)
    assert console.pixel_blocked > 0, "the CSP did not block the tracking pixel: is Talisman on?"
    assert sorted(p.name for p in artifacts.glob("*.png")) >= sorted(
        f"{d['slug']}.png" for d in dashboards if d["slug"]
    )


def logged_in_page(browser, superset: RunningSuperset, username: str):
    """A new page of `browser`, logged in as `username` through Superset's login form."""
    page = browser.new_page(viewport={"width": 1600, "height": 1100}, locale="zh-CN")
    page.goto(f"{superset.url}/login/")
    page.fill("[data-test=username-input]", username)
    page.fill("[data-test=password-input]", superset.instance.logins()[username])
    page.click("[data-test=login-button]")
    page.wait_for_url("**/superset/welcome/**", timeout=60_000)
    return page


def wait_rendered(page, title: str, timeout_s: float = 120.0) -> None:
    """Wait until every chart finished; on timeout, name the charts still unfinished."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(RENDERED, timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        pytest.fail(f"{title}: charts not finished after {timeout_s:.0f}s: {page.evaluate(UNFINISHED)}")


def _fonts() -> str:
    import subprocess

    return subprocess.run(["fc-list"], capture_output=True, text=True).stdout
