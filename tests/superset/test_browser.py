"""Log in with headless Debian Chromium, open every dashboard, fail on chart errors, save screenshots.

Screenshots go to test-artifacts/superset/<slug>.png (look at them: CJK text needs a font).
"""

from __future__ import annotations

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
IGNORED_CONSOLE = ("net::ERR_NAME_NOT_RESOLVED",)  # the tracking pixel baked into Superset's bundle


def test_dashboards_render_without_errors(superset: RunningSuperset) -> None:
    from playwright.sync_api import sync_playwright

    assert shutil.which("fc-list") is None or "Noto Sans CJK" in _fonts() or "WenQuanYi" in _fonts()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin = superset.client("admin")
    dashboards = sorted(admin.dashboards(), key=lambda d: d["id"])
    assert len(dashboards) == 5
    password = superset.instance.logins()["admin"]
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1100}, locale="zh-CN")
        console: list[str] = []
        page.on(
            "console",
            lambda msg: (
                console.append(msg.text)
                if msg.type == "error" and not any(s in msg.text for s in IGNORED_CONSOLE)
                else None
            ),
        )
        page.goto(f"{superset.url}/login/")
        page.fill("[data-test=username-input]", "admin")
        page.fill("[data-test=password-input]", password)
        page.click("[data-test=login-button]")
        page.wait_for_url("**/superset/welcome/**", timeout=60_000)
        for dashboard in dashboards:
            console.clear()
            page.goto(f"{superset.url}/superset/dashboard/{dashboard['slug'] or dashboard['id']}/?standalone=0")
            page.wait_for_selector(".dashboard-component-chart-holder", timeout=60_000)
            expected = len(page.query_selector_all(".dashboard-component-chart-holder"))
            _wait_rendered(page, dashboard["dashboard_title"])
            # Grow the window to the whole dashboard first: a full-page capture resizes the
            # viewport, and Superset redraws every chart (blank) while it does.
            height = page.evaluate("() => document.documentElement.scrollHeight")
            page.set_viewport_size({"width": 1600, "height": max(1100, height)})
            _wait_rendered(page, dashboard["dashboard_title"])
            page.wait_for_timeout(2000)  # ECharts animation
            errors = page.query_selector_all(
                ".dashboard-component-chart-holder .ant-alert-error, .dashboard-component-chart-holder [role=alert]"
            )
            name = dashboard["slug"] or str(dashboard["id"])
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            if not page.evaluate(RENDERED):
                problems.append(f"{dashboard['dashboard_title']}: charts not drawn when the screenshot was taken")
            page.set_viewport_size({"width": 1600, "height": 1100})
            if errors:
                problems.append(f"{dashboard['dashboard_title']}: {[e.inner_text()[:200] for e in errors]}")
            empty = page.evaluate(EMPTY)
            if empty:
                problems.append(f"{dashboard['dashboard_title']}: charts without data {empty}")
            if expected == 0:
                problems.append(f"{dashboard['dashboard_title']}: no charts rendered")
            if console:
                problems.append(f"{dashboard['dashboard_title']}: console errors {console[:3]}")
        browser.close()
    assert not problems, "\n".join(problems)
    assert sorted(p.name for p in ARTIFACTS.glob("*.png")) >= sorted(
        f"{d['slug']}.png" for d in dashboards if d["slug"]
    )


def _wait_rendered(page, title: str, timeout_s: float = 120.0) -> None:
    """Wait until every chart finished; on timeout, name the charts still unfinished."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(RENDERED, timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        pytest.fail(f"{title}: charts not finished after {timeout_s:.0f}s: {page.evaluate(UNFINISHED)}")


def _fonts() -> str:
    import subprocess

    return subprocess.run(["fc-list"], capture_output=True, text=True).stdout
