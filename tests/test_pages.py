"""The pages through a plain TestClient: login, scoping, CSRF, bad input (a clear message, nothing changed),
both languages, and that every text the templates use exists in both."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from accounts_support import PASSWORD
from pages_support import (
    B_SECRETS,
    BACKENDS,
    CITY_ALERTS,
    CITY_AWAY,
    CITY_SIZE,
    DAY,
    NOW,
    World,
    build_city,
    build_world,
    city_household,
    database,
    session_client,
)

from api.pages.common import PAGE_STATUSES
from api.pages.i18n import TEXTS, Translator
from shouwang.away import AwayPeriod
from shouwang.domain import AlertStatus, Outcome, Severity

TEMPLATES = Path(__file__).resolve().parent.parent / "api" / "pages" / "templates"


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory) -> World:
    """The small watched world, on SQLite and on a fresh PostgreSQL database."""
    with database(request.param, tmp_path_factory.mktemp("pages")) as url:
        w = build_world(url)
        yield w
        w.store.close()


@pytest.fixture(scope="module", params=BACKENDS)
def city(request, tmp_path_factory) -> World:
    """A street office of 10,000 households, on SQLite and on a fresh PostgreSQL database."""
    with database(request.param, tmp_path_factory.mktemp("city")) as url:
        w = build_city(url)
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
    for bad in ("abc", "²", "0", "37"):  # "²".isdigit() holds, and int("²") fails
        assert manager.get(f"/dashboard/reports?months={bad}").status_code == 422, bad
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
             ({"outcome": "away", "expected_return": "2020-01-01"}, "日期必须在今天之后"),
             ({"outcome": "away", "expected_return": "9999-12-31"}, "日期格式不对")]  # no next day to end it at
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
    for end in ("31/12/2026", "9999-12-31"):
        r = client.post("/dashboard/households/H001/away", data={"csrf": csrf, "end": end})
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


def _ids(page: str) -> list[str]:
    return re.findall(r'data-household="([^"]+)"', page)


def _counts(page: str) -> dict[str, int]:
    return {s: int(n) for s, n in re.findall(r'data-testid="count-(\w+)">\s*<b>(\d+)</b>', page)}


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return html.unescape(found.group(1)) if found else None


def _range(page: str) -> str:
    return re.search(r'data-testid="range">([^<]+)<', page).group(1)  # type: ignore[union-attr]


def _city_order() -> list[str]:
    """The dashboard's order of the city: alerts, then away, then ok, then no data; by id within each."""
    special = set(CITY_ALERTS) | set(CITY_AWAY)
    ok = [f"C{i:05d}" for i in range(2, CITY_SIZE + 1, 2)]
    no_data = [f"C{i:05d}" for i in range(1, CITY_SIZE + 1, 2) if f"C{i:05d}" not in special]
    return sorted(CITY_ALERTS) + sorted(CITY_AWAY) + ok + no_data


def test_the_dashboard_pages_through_10000_households_alerts_first(city):
    client, _ = session_client(city.app, "city-manager")
    order = _city_order()
    assert len(order) == CITY_SIZE and set(order) == {city_household(i).id for i in range(1, CITY_SIZE + 1)}
    first = client.get("/dashboard")
    assert first.status_code == 200 and _ids(first.text) == order[:100]
    assert _range(first.text) == f"1–100 of {CITY_SIZE}" and "page 1 of 100" in first.text
    assert _link(first.text, "prev") is None and _link(first.text, "next") == "/dashboard?page=2"
    # the counts are over every household, not over the 100 rows shown
    counts = {"alert": 7, "attention": 0, "device": 0, "away": 3, "ok": CITY_SIZE // 2, "unknown": CITY_SIZE // 2 - 10}
    assert _counts(first.text) == counts
    for number in (2, 11, 20):  # the ok households end and those without data begin on page 11
        page = client.get(f"/dashboard?per=500&page={number}")
        assert page.status_code == 200 and _counts(page.text) == counts
        assert _ids(page.text) == order[(number - 1) * 500:number * 500], number
        assert _range(page.text) == f"{(number - 1) * 500 + 1}–{number * 500} of {CITY_SIZE}"
    assert _link(page.text, "next") is None and _link(page.text, "prev") == "/dashboard?per=500&page=19"
    last = client.get("/dashboard?page=100")
    assert _ids(last.text) == order[-100:] and _range(last.text) == f"9901–10000 of {CITY_SIZE}"
    assert _link(last.text, "next") is None and _link(last.text, "prev") == "/dashboard?page=99"


def test_filters_survive_paging_and_the_counts_cover_the_filtered_set(city):
    client, _ = session_client(city.app, "city-manager")
    url: str | None = "/dashboard?grid=city/g20&status=ok&q=Lane&per=50"
    expected = [f"C{i:05d}" for i in range(9502, CITY_SIZE + 1, 2)]  # grid g20 is 9501…10000; even ones are ok
    pages = []
    while url:
        page = client.get(url)
        assert page.status_code == 200, url
        # counts over grid and search (not over the page, nor over the status chosen): g20 has 5 of the alerts
        assert _counts(page.text) == {"alert": 5, "attention": 0, "device": 0, "away": 0, "ok": 250,
                                      "unknown": 245}
        assert 'href="/dashboard?grid=city%2Fg20&amp;status=alert&amp;q=Lane&amp;per=50"' in page.text
        assert 'name="per" value="50"' in page.text  # the filter form keeps the page size
        pages.append(page.text)
        url = _link(page.text, "next")
        if url:
            assert url == f"/dashboard?grid=city%2Fg20&status=ok&q=Lane&per=50&page={len(pages) + 1}"
    assert [_ids(p) for p in pages] == [expected[i:i + 50] for i in range(0, 250, 50)]
    assert [_range(p) for p in pages] == [f"{i + 1}–{i + 50} of 250" for i in range(0, 250, 50)]
    assert _link(pages[2], "prev") == "/dashboard?grid=city%2Fg20&status=ok&q=Lane&per=50&page=2"
    assert _link(pages[1], "prev") == "/dashboard?grid=city%2Fg20&status=ok&q=Lane&per=50"
    search = client.get("/dashboard?q=Lane 777")
    assert sorted(_ids(search.text)) == ["C00777", *(f"C0{i}" for i in range(7770, 7780))]
    assert _range(search.text) == "1–11 of 11" and _link(search.text, "next") is None


def test_bad_page_values_get_a_clear_message(city):
    client, _ = session_client(city.app, "city-manager")
    for query, field in (
            ("page=0", "page “0”"), ("page=101", "page “101”"),
            ("page=1.5", "page “1.5”"), ("page=two", "page “two”"), ("per=0", "rows per page “0”"),
            ("per=501", "rows per page “501”"), ("per=x", "rows per page “x”"),
            ("per=100&page=9" + "9" * 30, "page “9" + "9" * 30 + "”")):
        r = client.get(f"/dashboard?{query}")
        assert r.status_code == 422 and f"Invalid filter: {field}" in r.text, query
        assert ("from 1 to 100." if field.startswith("page") else "from 1 to 500.") in r.text, query
        assert len(_ids(r.text)) == 100  # the first page is shown below the message


def test_paging_in_both_languages_on_a_small_office(world):
    client, csrf = session_client(world.app, "manager")
    first = client.get("/dashboard?per=2")
    assert _range(first.text) == "第 1–2 户，共 3 户" and "第 1/2 页" in first.text and "下一页" in first.text
    second = client.get(_link(first.text, "next"))  # type: ignore[arg-type]
    assert sorted(_ids(first.text) + _ids(second.text)) == ["H001", "H002", "H003"]
    assert _link(second.text, "prev") == "/dashboard?per=2"
    r = client.get("/dashboard?page=3&per=2")
    assert r.status_code == 422 and "筛选条件无效：页码 “3”" in r.text and "1 到 2 的整数" in r.text
    client.post("/language", data={"csrf": csrf, "language": "en"})
    assert _range(client.get("/dashboard?per=2&page=2").text) == "3–3 of 3"
    client.post("/language", data={"csrf": csrf, "language": "zh"})


def _away(world, household: str, start: int, end: int | None) -> int:
    return world.store.add_away(AwayPeriod(household, start, end, "family", "at her son's")).id


def _live(world, household: str) -> set[int]:
    return {p.id for p in world.store.away_periods(household)}


def test_a_manager_ends_an_absence_early_from_the_household_page(world):
    period = _away(world, "H003", NOW - DAY, NOW + 5 * DAY)
    client, csrf = session_client(world.app, "manager")
    page = client.get("/dashboard/households/H003").text
    action = f"/dashboard/households/H003/away/{period}/end"
    assert f'action="{action}"' in page and "外出中" in page
    r = client.post(action, data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/households/H003?done=done_away_ended"
    assert period not in _live(world, "H003")
    shown = client.get(r.headers["location"]).text
    assert "外出已结束" in shown and "已提前结束" in shown and f'action="{action}"' not in shown
    row = re.search(rf'<tr data-away="{period}" class="ended">', shown)
    assert row, "the period is listed as ended"
    entry = next(e for e in world.store.audit(household="H003", limit=50) if e.path == action)
    assert (entry.actor, entry.action, entry.status) == ("manager", "POST", 303)
    again = client.post(action, data={"csrf": csrf})
    assert again.status_code == 409 and "这次外出已经结束了" in again.text


def test_family_may_end_a_future_absence_but_not_a_finished_one(world):
    future = _away(world, "H003", NOW + DAY, NOW + 3 * DAY)
    over = _away(world, "H003", NOW - 5 * DAY, NOW - DAY)
    client, csrf = session_client(world.app, "family")
    page = client.get("/dashboard/households/H003").text
    assert "not begun yet" in page and f"/away/{over}/end" not in page
    r = client.post(f"/dashboard/households/H003/away/{future}/end", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and future not in _live(world, "H003")
    r = client.post(f"/dashboard/households/H003/away/{over}/end", data={"csrf": csrf})
    assert r.status_code == 409 and "already ended" in r.text and over in _live(world, "H003")
    world.store.cancel_away(over, NOW)


def test_ending_an_absence_needs_scope_the_right_household_and_the_token(world):
    period = _away(world, "H003", NOW - DAY, None)
    other = _away(world, "H002", NOW - DAY, None)
    action = f"/dashboard/households/H003/away/{period}/end"
    worker, worker_csrf = session_client(world.app, "worker")  # grid g1: H001 and H002, not H003
    assert worker.post(action, data={"csrf": worker_csrf}).status_code == 404
    outsider, outsider_csrf = session_client(world.app, "manager-b")
    assert outsider.post(action, data={"csrf": outsider_csrf}).status_code == 404
    manager, csrf = session_client(world.app, "manager")
    assert manager.post(action, data={}).status_code == 403  # no CSRF token
    assert manager.post(action, data={"csrf": "forged"}).status_code == 403
    wrong_house = manager.post(f"/dashboard/households/H003/away/{other}/end", data={"csrf": csrf})
    assert wrong_house.status_code == 404 and "没有找到" in wrong_house.text
    assert manager.post("/dashboard/households/H003/away/987654/end", data={"csrf": csrf}).status_code == 404
    assert manager.post("/dashboard/households/H003/away/abc/end", data={"csrf": csrf}).status_code == 422
    assert {period} <= _live(world, "H003") and {other} <= _live(world, "H002")  # nothing changed
    for p in (period, other):
        world.store.cancel_away(p, NOW)
