"""The pages through a plain TestClient: login, scoping, CSRF, bad input (a clear message, nothing changed),
both languages, and that every text the templates use exists in both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from accounts_support import PASSWORD
from pages_support import B_SECRETS, NOW, World, build_world, session_client

from api.pages.common import PAGE_STATUSES
from api.pages.i18n import TEXTS, Translator
from shouwang.domain import AlertStatus, Outcome, Severity

TEMPLATES = Path(__file__).resolve().parent.parent / "api" / "pages" / "templates"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = build_world(str(tmp_path_factory.mktemp("pages") / "pages.db"))
    yield w
    w.store.close()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def test_every_text_the_templates_use_exists_in_both_languages():
    used = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_]+)'(?!\s*~)", path.read_text()))
    prefixed = {k for k in TEXTS if k.startswith(("st_", "ast_", "out_", "sev_", "role_", "tier_", "ev_", "done_"))}
    assert used, "no texts found: the pattern no longer matches the templates"
    assert not used - set(TEXTS), f"texts missing from api/pages/i18n.py: {sorted(used - set(TEXTS))}"
    for key, (zh, en) in TEXTS.items():
        assert zh and en and zh != en or key in ("alert", "alerts") or zh == en == "", key
    assert prefixed  # outcome, status and event names are looked up by prefix
    for o in Outcome:
        assert f"out_{o}" in TEXTS
    for s in AlertStatus:
        assert f"ast_{s}" in TEXTS
    for name in (*PAGE_STATUSES, *(f"sev_{v}" for v in Severity), "role_family", "role_volunteer", "role_team",
                 "tier_ordinary", "tier_hard"):
        assert (f"st_{name}" if not name.startswith(("sev_", "role_", "tier_")) else name) in TEXTS, name


def test_a_browser_without_a_session_is_sent_to_login_and_back(world):
    client = world_client(world)
    r = client.get("/dashboard/households/H001?x=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/dashboard/households/H001%3Fx%3D1"
    page = client.get(r.headers["location"])
    token = _csrf(page.text)
    r = client.post("/login", data={"username": "manager", "password": PASSWORD, "csrf": token,
                                    "next": "/dashboard/households/H001?x=1"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/households/H001?x=1"
    assert "shouwang_session" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


def world_client(world):
    from fastapi.testclient import TestClient

    return TestClient(world.app, headers={"Accept": "text/html"})


def test_api_clients_still_get_401_json(world):
    from fastapi.testclient import TestClient

    r = TestClient(world.app).get("/dashboard")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("lang, wrong, throttled", [
    ("zh", "账号或密码错误。", "登录失败次数过多"), ("en", "Wrong user id or password.", "Too many failed logins")])
def test_login_errors_in_the_users_language(world, lang, wrong, throttled):
    client = world_client(world)
    user = f"nobody-{lang}"
    for _ in range(5):
        page = client.get(f"/login?lang={lang}")
        r = client.post(f"/login?lang={lang}", data={"username": user, "password": "x", "csrf": _csrf(page.text)})
        assert r.status_code == 401 and wrong in r.text
    page = client.get(f"/login?lang={lang}")
    r = client.post(f"/login?lang={lang}", data={"username": user, "password": "x", "csrf": _csrf(page.text)})
    assert r.status_code == 429 and throttled in r.text


def test_login_form_without_its_token_is_refused(world):
    client = world_client(world)
    client.get("/login")
    r = client.post("/login", data={"username": "manager", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403 and "shouwang_session" not in r.headers.get("set-cookie", "")
    r = client.post("/login", data={"username": "", "password": "", "csrf": _csrf(client.get("/login").text)})
    assert r.status_code == 422 and "请填写账号和密码" in r.text


def test_login_redirect_never_leaves_the_site(world):
    client = world_client(world)
    page = client.get("/login?next=//evil.example/x")
    assert "evil" not in page.text
    r = client.post("/login", data={"username": "manager", "password": PASSWORD, "csrf": _csrf(page.text),
                                    "next": "https://evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/dashboard"


def test_page_forms_need_the_csrf_token(world):
    client, _ = session_client(world.app, "worker")
    alert_id = world.alerts["h001"]
    r = client.post(f"/m/alerts/{alert_id}/acknowledge", data={"back": "/m"})
    assert r.status_code == 403 and "页面已过期" in r.text
    r = client.post(f"/m/alerts/{alert_id}/acknowledge", data={"back": "/m", "csrf": "wrong"})
    assert r.status_code == 403
    assert world.store.alert(alert_id).status is not AlertStatus.ACKNOWLEDGED
    r = client.post("/language", data={"language": "en"})
    assert r.status_code == 403 and world.store.user("worker").language == "zh"


def test_each_user_sees_only_their_own_on_every_page(world):
    for user, visible, hidden in (("manager", ["H001", "H002", "H003"], ["H010"]),
                                  ("worker", ["H001", "H002"], ["H003", "H010"]),
                                  ("family", ["H003"], ["H001", "H002", "H010"]),
                                  ("manager-b", ["H010"], ["H001", "H002", "H003"])):
        client, _ = session_client(world.app, user)
        page = client.get("/dashboard").text
        shown = re.findall(r'data-household="([^"]+)"', page)
        assert sorted(shown) == visible, user
        for h in hidden:
            assert client.get(f"/dashboard/households/{h}").status_code == 404, (user, h)
        if user != "manager-b":
            assert not any(s in client.get("/m").text for s in B_SECRETS), user
            assert client.get(f"/m/alerts/{world.alerts['h010']}").status_code == 404, user
            assert client.get(f"/dashboard/alerts/{world.alerts['gw_c']}").status_code == 404, user


def test_reports_are_for_managers_and_only_their_communities(world):
    manager, _ = session_client(world.app, "manager")
    page = manager.get("/dashboard/reports")
    assert page.status_code == 200 and 'data-community="qingdao-a"' in page.text and "jinan-b" not in page.text
    worker, _ = session_client(world.app, "worker")
    assert worker.get("/dashboard/reports").status_code == 403
    assert manager.get("/dashboard/reports?months=abc").status_code == 422
    rows = manager.get("/api/reports/communities").json()
    assert {r["community"] for r in rows} == {"qingdao-a"}
    total = next(r for r in rows if r["grid"] is None and r["month"] is None)
    page_total = re.search(r"合计</th><td class=\"num\">(\d+)<", page.text.replace("\n", ""))
    assert page_total and int(page_total.group(1)) == total["alerts"]  # the page shows what the API returns


def test_bad_input_gets_a_message_and_changes_nothing(world):
    client, csrf = session_client(world.app, "worker")
    alert_id = world.alerts["h001"]
    before = world.store.alert(alert_id)
    events = len(world.store.alert_events(alert_id))
    cases = [({"outcome": ""}, "请选择一个结果"), ({"outcome": "device_recovered"}, "请选择一个结果"),
             ({"outcome": "exploded"}, "请选择一个结果"), ({"outcome": "safe", "note": "x" * 2001}, "备注最长"),
             ({"outcome": "away", "expected_return": "next tuesday"}, "日期格式不对"),
             ({"outcome": "away", "expected_return": "2020-01-01"}, "日期必须在今天之后")]
    for data, message in cases:
        r = client.post(f"/m/alerts/{alert_id}/resolve", data={"csrf": csrf, **data})
        assert r.status_code == 422 and message in r.text, (data, r.status_code)
        assert 'name="outcome"' in r.text  # the form is shown again
    r = client.post(f"/m/alerts/{alert_id}/acknowledge", data={"csrf": csrf, "note": "y" * 2001})
    assert r.status_code == 422
    r = client.post(f"/m/alerts/{alert_id}/tier", data={"csrf": csrf, "tier": "hard"})
    assert r.status_code == 403  # workers may not tier a case
    r = client.post("/language", data={"csrf": csrf, "language": "fr"})
    assert r.status_code == 422
    r = client.post("/dashboard/households/H001/away", data={"csrf": csrf, "end": "31/12/2026"})
    assert r.status_code == 422 and "日期格式不对" in r.text
    assert world.store.away_periods("H001") == []
    r = client.get("/m/alerts/not-a-number")
    assert r.status_code == 422 and "请求有误" in r.text
    assert world.store.alert(alert_id) == before and len(world.store.alert_events(alert_id)) == events
    r = client.get("/dashboard?status=exploded&grid=nowhere/g0")
    assert r.status_code == 422 and "筛选条件无效" in r.text


def test_a_conflict_is_explained(world):
    client, csrf = session_client(world.app, "family")
    alert_id = world.alerts["h003"]  # already acknowledged
    r = client.post(f"/m/alerts/{alert_id}/acknowledge", data={"csrf": csrf})
    assert r.status_code == 409 and "someone may have been quicker" in r.text


def test_manager_closes_a_case_from_the_dashboard_and_registers_an_absence(world):
    client, csrf = session_client(world.app, "manager")
    alert_id = world.alerts["h003"]
    back = f"/dashboard/alerts/{alert_id}"
    r = client.post(f"/m/alerts/{alert_id}/tier", data={"csrf": csrf, "tier": "hard", "back": back},
                    follow_redirects=False)
    assert r.status_code in (303, 409)  # 409 when the case has no running escalation (no policy step yet)
    r = client.post(f"/m/alerts/{alert_id}/resolve", data={"csrf": csrf, "outcome": "leak_fixed",
                                                           "note": "tap replaced", "back": back},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{back}?done=done_resolve"
    closed = world.store.alert(alert_id)
    assert (closed.outcome, closed.resolved_by, closed.note) == (Outcome.LEAK_FIXED, "manager", "tap replaced")
    page = client.get(r.headers["location"])
    assert "已办结" in page.text and "漏水已修" in page.text
    r = client.post("/dashboard/households/H002/away", data={"csrf": csrf, "end": "2026-12-03", "note": "女儿家"},
                    follow_redirects=False)
    assert r.status_code == 303
    (period,) = world.store.away_periods("H002")
    assert period.start == NOW and period.end is not None and period.end > NOW and period.note == "女儿家"
    assert "女儿家" in client.get("/dashboard/households/H002").text
    world.store.cancel_away(period.id, NOW)  # type: ignore[arg-type]


def test_both_languages_on_every_page(world):
    client, csrf = session_client(world.app, "manager")
    pages = ["/dashboard", "/dashboard/households/H001", f"/dashboard/alerts/{world.alerts['h001']}",
             "/dashboard/reports", "/m", "/m/history", f"/m/alerts/{world.alerts['h001']}"]
    zh = {p: client.get(p) for p in pages}
    r = client.post("/language", data={"csrf": csrf, "language": "en", "back": "/dashboard"},
                    follow_redirects=False)
    assert r.headers["location"] == "/dashboard" and world.store.user("manager").language == "en"
    en = {p: client.get(p) for p in pages}
    client.post("/language", data={"csrf": csrf, "language": "zh"})
    for p in pages:
        assert zh[p].status_code == en[p].status_code == 200, p
        assert '<html lang="zh-CN">' in zh[p].text and '<html lang="en">' in en[p].text, p
        assert "Log out" in en[p].text and "退出" in zh[p].text, p
    assert "Households" in en["/dashboard"].text and "住户" in zh["/dashboard"].text
    assert "Hourly use, last 7 days" in en["/dashboard/households/H001"].text


def test_pages_take_nothing_from_other_sites(world):
    client, _ = session_client(world.app, "manager")
    r = client.get("/dashboard/households/H001")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r'(src|href)="(https?:)?//', r.text)  # no script, style, font or image from elsewhere
    assert r.text.count("<svg") >= 5  # the charts are inline SVG, drawn by the server


def test_manifest_and_service_worker_need_no_login(world):
    client = world_client(world)
    manifest = client.get("/manifest.webmanifest").json()
    assert manifest["start_url"] == "/m" and {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    for icon in manifest["icons"]:
        assert client.get(icon["src"]).status_code == 200
    sw = client.get("/sw.js")
    assert sw.status_code == 200 and "caches" in sw.text and sw.headers["content-type"].startswith("text/javascript")


def test_logout_ends_the_session_and_clears_the_pages(world):
    client, csrf = session_client(world.app, "worker")
    r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["clear-site-data"] == '"cache", "storage"'
    assert client.get("/m", follow_redirects=False).status_code == 303


def test_durations_and_shares_read_naturally():
    zh, en = Translator("zh"), Translator("en")
    assert (zh.duration(90), en.duration(90)) == ("1 分钟", "1 min")
    assert (zh.duration(3 * 3600 + 600), en.duration(3 * 3600 + 600)) == ("3 小时 10 分", "3 h 10 min")
    assert en.duration(86400 + 7200) == "1 d 2 h" and en.duration(5 * 86400 + 7200) == "5 d"
    assert en.share(2 / 3) == "67%" and en.share(None) == "—"
    assert en.ago(NOW - 7200, NOW) == "2 h ago" and zh.ago(NOW - 7200, NOW) == "2 小时前"
