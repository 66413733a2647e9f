"""The pages in a real browser: headless Chromium (Debian's) against the real app served by uvicorn.

Logs in as a manager and as a worker, checks what each sees, acknowledges and resolves an alert from the phone
page at a phone-size viewport, reads a page offline from the service worker's cache, and saves a screenshot
of each page under var/test-output/screenshots/. When CI is set a missing browser fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from accounts_support import PASSWORD
from pages_support import B_SECRETS, World, build_world

from shouwang.domain import AlertStatus, Outcome

CHROMIUM = os.environ.get("SHOUWANG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parent.parent / "var" / "test-output" / "screenshots"
PHONE = {"width": 390, "height": 844}
SW_READY = ("Promise.race([navigator.serviceWorker.ready.then(() => true),"
            " new Promise(r => setTimeout(() => r(false), 10000))])")


def _need_browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the playwright package is required in CI: {exc}")
        pytest.skip("playwright is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI ({CHROMIUM}); .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return sync_playwright


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    w = build_world(str(tmp_path_factory.mktemp("pages") / "pages.db"))
    yield w
    w.store.close()


@pytest.fixture(scope="module")
def base_url(world) -> Iterator[str]:
    """The real app served by uvicorn on a free port, in a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def playwright():
    sync_playwright = _need_browser()
    with sync_playwright() as p:
        yield p


@pytest.fixture
def open_context(playwright, tmp_path):
    """Open a browser with a fresh profile; each call may choose a viewport (a phone or a desk)."""
    contexts = []

    def _open(viewport: dict | None = None, mobile: bool = False, locale: str = "zh-CN"):
        profile = tmp_path / f"profile-{len(contexts)}"
        ctx = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS, locale=locale,
            viewport=viewport or {"width": 1280, "height": 900}, is_mobile=mobile, has_touch=mobile,
            device_scale_factor=2 if mobile else 1, service_workers="allow")
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        return ctx

    yield _open
    for ctx in contexts:
        ctx.close()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _login(page, base_url: str, user: str, target: str = "") -> None:
    page.goto(f"{base_url}/login{target}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_login_page_shows_errors_in_the_users_language(open_context, base_url):
    page = open_context(locale="en-GB").new_page()
    page.goto(f"{base_url}/dashboard")
    assert "/login" in page.url  # no session: a browser is sent to the login page
    assert page.locator("h1").inner_text() == "Log in to Shouwang"
    page.fill("input[name=username]", "manager")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert page.get_by_test_id("login-error").inner_text() == "Wrong user id or password."
    _shot(page, "login-error-en")
    page.click("text=中文")
    assert page.locator("h1").inner_text() == "登录守望"
    _shot(page, "login-zh")


def test_manager_sees_the_community_and_its_figures(open_context, base_url, world):
    page = open_context().new_page()
    _login(page, base_url, "manager")
    assert page.url.endswith("/dashboard")
    rows = page.locator("[data-household]")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.household)")) == ["H001", "H002", "H003"]
    assert page.locator("tr[data-household=H001] .chip").inner_text() == "告警"
    assert page.locator("tr[data-household=H003] .chip").inner_text() == "关注"  # acknowledged warning
    assert not any(s in page.content() for s in B_SECRETS)
    _shot(page, "dashboard-zh")

    page.select_option("select[name=status]", "alert")
    page.click("form.filters button[type=submit]")
    assert page.locator("[data-household]").evaluate_all("rs => rs.map(r => r.dataset.household)") == ["H001"]

    page.click("text=H001")
    page.wait_for_url("**/dashboard/households/H001")
    assert page.locator("svg.chart").count() == 4  # water and electricity, hourly and daily
    assert page.locator("svg.chart path.usual").count() == 4  # the usual pattern beside the actual
    assert page.locator("svg.grid-chart rect.on").count() > 0
    assert "耳背" in page.content()
    _shot(page, "household-zh")

    page.click(f"a[href='/dashboard/alerts/{world.alerts['h001']}']")
    page.wait_for_url(f"**/dashboard/alerts/{world.alerts['h001']}")
    _shot(page, "alert-dashboard-zh")

    page.click("a[href='/dashboard/reports']")
    assert page.locator("section[data-community=qingdao-a]").count() == 1
    assert page.locator("section[data-community=jinan-b]").count() == 0
    _shot(page, "reports-zh")

    page.click("header button:text('English')")  # the language switch saves the user's language
    assert page.locator("h1").first.inner_text().startswith("Community figures")
    assert world.store.user("manager").language == "en"
    _shot(page, "reports-en")
    page.goto(f"{base_url}/dashboard")
    _shot(page, "dashboard-en")
    page.click("header button:text('中文')")
    page.click("header button:text('退出')")
    assert "/login" in page.url
    page.goto(f"{base_url}/dashboard")
    assert "/login" in page.url


def test_worker_acknowledges_and_closes_from_the_phone(open_context, base_url, world):
    alert_id = world.alerts["h001"]
    page = open_context(PHONE, mobile=True).new_page()
    _login(page, base_url, "worker")
    assert page.url.endswith("/m")
    cards = page.locator("[data-alert]").evaluate_all("cs => cs.map(c => Number(c.dataset.alert))")
    assert cards == [alert_id]  # H001 is in the worker's grid; H003 (g2) and H010 (community B) are not
    assert "自" in page.locator(".seen").first.inner_text()  # what was seen, in Chinese
    assert page.evaluate(SW_READY), "the service worker did not install"
    _shot(page, "phone-list-zh")

    page.get_by_test_id(f"ack-{alert_id}").click()  # one tap: "on my way"
    page.wait_for_url("**/m?done=done_ack")
    acknowledged = world.store.alert(alert_id)
    assert acknowledged.status is AlertStatus.ACKNOWLEDGED and acknowledged.acknowledged_by == "P-W1"

    page.click(f"a[href='/m/alerts/{alert_id}'] >> nth=0")
    page.wait_for_url(f"**/m/alerts/{alert_id}")
    assert page.locator("a[href='tel:13800000001']").count() == 1  # the resident
    assert page.locator("a[href='tel:13600000001']").count() == 1  # the family
    assert page.locator("a[href^='geo:0,0?q=']").count() == 1
    _shot(page, "phone-alert-zh")

    # weak connection: what was loaded stays readable from the service worker's cache
    page.reload()
    page.context.set_offline(True)
    page.reload()
    assert page.locator("body").get_attribute("data-offline") == "1"
    assert page.locator(".offline-banner").is_visible()
    assert "王秀英" in page.content()
    _shot(page, "phone-alert-offline-zh")
    page.context.set_offline(False)
    page.reload()
    assert page.locator("body").get_attribute("data-offline") == "0"

    page.click("button[data-testid=resolve]")  # no outcome chosen: a clear message, nothing changes
    assert page.get_by_test_id("form-error").inner_text() == "请选择一个结果。"
    assert world.store.alert(alert_id).status is AlertStatus.ACKNOWLEDGED
    page.check("input[name=outcome][value=safe]")
    page.fill("textarea[name=note]", "老人在家，助听器没电了")
    page.click("button[data-testid=resolve]")
    page.wait_for_url("**done=done_resolve")
    closed = world.store.alert(alert_id)
    assert (closed.status, closed.outcome, closed.resolved_by) == (AlertStatus.RESOLVED, Outcome.SAFE, "P-W1")
    assert closed.note == "老人在家，助听器没电了"
    _shot(page, "phone-alert-closed-zh")

    page.click("a[href='/m/history']")
    assert "助听器没电了" in page.content()
    _shot(page, "phone-history-zh")
    page.click("a[href='/m']")
    _shot(page, "phone-list-empty-zh")


def test_family_member_sees_their_relative_in_english(open_context, base_url, world):
    page = open_context(PHONE, mobile=True).new_page()
    _login(page, base_url, "family")
    assert page.url.endswith("/m")
    cards = page.locator("[data-alert]").evaluate_all("cs => cs.map(c => Number(c.dataset.alert))")
    assert cards == [world.alerts["h003"]]
    assert "Water running" in page.content() and "My open alerts" in page.content()
    _shot(page, "phone-list-family-en")


def test_manager_pages_forward_through_the_dashboard(open_context, base_url, world):
    page = open_context().new_page()
    _login(page, base_url, "manager", "?next=/dashboard%3Fper%3D2")
    assert page.url.endswith("/dashboard?per=2")
    ids = "rs => rs.map(r => r.dataset.household)"
    first = page.locator("[data-household]").evaluate_all(ids)
    assert len(first) == 2 and page.get_by_test_id("range").first.inner_text() == "第 1–2 户，共 3 户"
    page.locator("[data-testid=pager-top] a[rel=next]").click()
    page.wait_for_url("**/dashboard?per=2&page=2")
    second = page.locator("[data-household]").evaluate_all(ids)
    assert sorted(first + second) == ["H001", "H002", "H003"]  # every household once, over the two pages
    assert page.get_by_test_id("range").first.inner_text() == "第 3–3 户，共 3 户"
    assert page.locator("[data-testid=pager-top] a[rel=next]").count() == 0
    _shot(page, "dashboard-page-2-zh")

    page.select_option("select[name=grid]", "qingdao-a/g1")  # the filter form keeps the page size
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/dashboard?grid=qingdao-a%2Fg1&status=&q=&per=2")
    assert sorted(page.locator("[data-household]").evaluate_all(ids)) == ["H001", "H002"]
    page.goto(f"{base_url}/dashboard?grid=qingdao-a/g1&per=1")
    page.locator("[data-testid=pager-top] a[rel=next]").click()
    page.wait_for_url("**/dashboard?grid=qingdao-a%2Fg1&per=1&page=2")  # the grid survives paging
    assert len(page.locator("[data-household]").evaluate_all(ids)) == 1
    assert page.locator("select[name=grid]").input_value() == "qingdao-a/g1"
