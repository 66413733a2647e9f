"""Chinese and English texts of the pages, and the formatting of times, durations and figures per language."""

from __future__ import annotations

from dataclasses import dataclass

from alerts import messages
from shouwang.domain import Alert, AlertCategory

LANGUAGES = ("zh", "en")

# key: (Chinese, English). Placeholders use str.format names.
TEXTS: dict[str, tuple[str, str]] = {
    "app_name": ("守望", "Shouwang"),
    "tagline": ("独居老人水电守望", "Watching over elders who live alone"),
    "dashboard": ("总览", "Dashboard"),
    "phone_page": ("我的任务", "My alerts"),
    "reports": ("社区统计", "Community figures"),
    "logout": ("退出", "Log out"),
    "login": ("登录", "Log in"),
    "login_title": ("登录守望", "Log in to Shouwang"),
    "user_id": ("账号", "User id"),
    "password": ("密码", "Password"),
    "wrong_password": ("账号或密码错误。", "Wrong user id or password."),
    "throttled": ("登录失败次数过多，请 15 分钟后再试。", "Too many failed logins for this account; try again in 15 minutes."),
    "login_expired": ("登录页面已过期，请重新输入。", "The login form expired; please enter your details again."),
    "login_missing": ("请填写账号和密码。", "Enter your user id and password."),
    "logged_out": ("您已退出。", "You have logged out."),
    "switch_to": ("English", "中文"),
    "error_title": ("出错了", "Something went wrong"),
    "not_found": ("没有找到，或您无权查看。", "Not found, or not yours to see."),
    "forbidden": ("您的账号无权进行此操作。", "Your account may not do this."),
    "csrf": ("页面已过期，请刷新后重试。", "The page expired; reload it and try again."),
    "bad_request": ("请求有误。", "The request was not understood."),
    "back": ("返回", "Back"),
    "home": ("首页", "Home"),
    "offline_banner": ("网络不通：这是 {at} 保存的页面，操作将无法提交。",
                       "No connection: this is the copy saved at {at}; actions cannot be sent."),
    "loaded_at": ("页面时间 {at}", "Page as of {at}"),
    "none": ("无", "none"),
    "unknown": ("未知", "unknown"),
    "never": ("从未", "never"),
    "ago": ("{d}前", "{d} ago"),
    "in": ("{d}后", "in {d}"),
    # statuses of households
    "status": ("状态", "Status"),
    "st_ok": ("正常", "OK"),
    "st_attention": ("关注", "Attention"),
    "st_alert": ("告警", "Alert"),
    "st_device": ("设备离线", "Device offline"),
    "st_away": ("外出", "Away"),
    "st_unknown": ("暂无数据", "No data yet"),
    "st_help_attention": ("已有人处理，或仅为提醒", "someone is on it, or a warning only"),
    "st_help_alert": ("需要有人马上处理", "needs someone now"),
    # dashboard
    "households": ("住户", "Households"),
    "all_grids": ("全部网格", "All grids"),
    "all_statuses": ("全部状态", "All statuses"),
    "search": ("搜索", "Search"),
    "search_placeholder": ("编号、姓名或地址", "id, name or address"),
    "filter": ("筛选", "Filter"),
    "clear_filter": ("清除", "Clear"),
    "n_households": ("共 {n} 户", "{n} households"),
    "no_households": ("没有符合条件的住户。", "No household matches."),
    "household": ("住户", "Household"),
    "name": ("姓名", "Name"),
    "address": ("地址", "Address"),
    "grid": ("网格", "Grid"),
    "community": ("社区", "Community"),
    "last_activity": ("最后用水用电", "Last activity"),
    "open_alerts": ("未结告警", "Open alerts"),
    "away_until": ("外出至 {at}", "away until {at}"),
    "bad_filter": ("筛选条件无效：{what}", "Invalid filter: {what}"),
    "page": ("页码", "page"),
    "per": ("每页条数", "rows per page"),
    "page_range": ("页码须为 1 到 {pages} 的整数。", "The page must be a whole number from 1 to {pages}."),
    "per_range": ("每页条数须为 1 到 {max} 的整数。", "Rows per page must be a whole number from 1 to {max}."),
    "pages": ("分页", "Pages"),
    "range": ("第 {first}–{last} 户，共 {n} 户", "{first}–{last} of {n}"),
    "page_of": ("第 {page}/{pages} 页", "page {page} of {pages}"),
    "prev_page": ("上一页", "Previous"),
    "next_page": ("下一页", "Next"),
    # household page
    "phone": ("电话", "Phone"),
    "notes": ("注意事项", "Notes"),
    "usage": ("用水用电", "Water and electricity use"),
    "usage_hourly": ("最近 7 天每小时用量", "Hourly use, last 7 days"),
    "usage_daily": ("最近 90 天每日用量", "Daily use, last 90 days"),
    "water": ("用水", "Water"),
    "electricity": ("用电", "Electricity"),
    "actual": ("实际", "actual"),
    "usual": ("平常", "usual"),
    "no_data": ("无数据", "no data"),
    "usual_explained": ("灰线为平常用量：前 4 周同一小时（或前 28 天每日）用量的中位数，数据不足 7 天时不显示。",
                        ("The line is the usual use: the median of the same hour over the previous 4 weeks "
                        "(for days: of the previous 28 days); shown once 7 values are known.")),
    "activity_timeline": ("活动时间线", "Activity timeline"),
    "activity_explained": ("每格为一小时：深色为有用水（≥1 升）或用电高于基础负荷，浅色为无活动，斜纹为无数据。",
                           ("One cell per hour: dark when water (≥ 1 L) or electricity above the base load was used, "
                           "light when quiet, hatched when no data.")),
    "active": ("有活动", "active"),
    "quiet": ("无活动", "quiet"),
    "events": ("事件", "Events"),
    "alerts_outcomes": ("告警与结果", "Alerts and outcomes"),
    "no_alerts": ("没有告警。", "No alerts."),
    "away_periods": ("外出登记", "Away periods"),
    "no_away": ("没有外出登记。", "No away periods."),
    "from": ("开始", "From"),
    "until": ("结束", "Until"),
    "until_activity": ("直到有用水用电", "until activity"),
    "source": ("登记人", "Registered by"),
    "cancelled": ("已取消", "cancelled"),
    "device_health": ("设备状况", "Device health"),
    "meter": ("表计", "Meter"),
    "kind": ("类型", "Kind"),
    "gateway": ("网关", "Gateway"),
    "last_reading": ("最后读数", "Last reading"),
    "value": ("读数", "Value"),
    "base_load": ("基础负荷", "Base load"),
    "online": ("在线", "online"),
    "offline": ("离线", "offline"),
    "no_status": ("未上报", "not reported"),
    "care_network": ("照护网络", "Care network"),
    "role_family": ("家属", "Family"),
    "role_volunteer": ("志愿者", "Volunteer"),
    "role_team": ("小组成员", "Team"),
    "register_away": ("登记外出", "Register an absence"),
    "expected_return": ("预计返回日期", "Expected back on"),
    "optional": ("可不填", "optional"),
    "save": ("保存", "Save"),
    "away_saved": ("已登记外出。", "Absence registered."),
    "away_state": ("状态", "State"),
    "away_ongoing": ("外出中", "away now"),
    "away_upcoming": ("尚未开始", "not begun yet"),
    "away_over": ("已结束", "over"),
    "away_ended_early": ("已提前结束", "ended early"),
    "away_ended_explained": ("提前结束的时间和操作人记录在审计日志中。",
                             "When an absence was ended early, and by whom, is kept in the audit log."),
    "end_away": ("结束这次外出", "End this absence"),
    "done_away_ended": ("外出已结束，告警恢复正常守望。", "Absence ended; alerts are no longer held."),
    "err_away_over": ("这次外出已经结束了。", "This absence has already ended."),
    "bad_date": ("日期格式不对，请用 年-月-日。", "Not a date; use YYYY-MM-DD."),
    "date_in_past": ("日期必须在今天之后。", "The date must be after today."),
    # alerts
    "alert": ("告警", "Alert"),
    "alerts": ("告警", "Alerts"),
    "opened": ("发起", "Opened"),
    "since": ("起始", "Since"),
    "what_was_seen": ("发现的情况", "What was seen"),
    "severity": ("级别", "Severity"),
    "sev_critical": ("紧急", "critical"),
    "sev_warning": ("提醒", "warning"),
    "sev_info": ("信息", "info"),
    "alert_status": ("处理状态", "Progress"),
    "ast_open": ("待处理", "open"),
    "ast_notified": ("已通知", "notified"),
    "ast_acknowledged": ("处理中", "being handled"),
    "ast_resolved": ("已办结", "closed"),
    "acknowledged_by": ("{who} 于 {at} 确认前往", "{who} on the way since {at}"),
    "resolved_by": ("{who} 于 {at} 办结", "closed by {who} at {at}"),
    "cleared_at": ("{at} 起已恢复用水用电", "activity again since {at}"),
    "outcome": ("结果", "Outcome"),
    "out_safe": ("平安", "safe"),
    "out_away": ("外出", "away"),
    "out_needed_help": ("需要帮助", "needed help"),
    "out_hospitalised": ("已送医", "hospitalised"),
    "out_leak_fixed": ("漏水已修", "leak fixed"),
    "out_device_fault": ("设备故障", "device fault"),
    "out_false_alarm": ("误报", "false alarm"),
    "out_device_recovered": ("设备已恢复", "device recovered"),
    "note": ("备注", "Note"),
    "note_placeholder": ("看到的情况、做了什么", "what you found, what you did"),
    "ack_button": ("确认前往", "On my way"),
    "resolve_button": ("记录结果并办结", "Record outcome and close"),
    "reopen_button": ("重新打开", "Reopen"),
    "tier": ("难度", "Tier"),
    "tier_ordinary": ("普通（24 小时内办结）", "ordinary (close within 24 h)"),
    "tier_hard": ("疑难（3 个工作日）", "hard (3 working days)"),
    "set_tier": ("设定难度", "Set tier"),
    "timeline": ("处理记录", "Timeline"),
    "deliveries": ("通知发送", "Notifications"),
    "recipient": ("接收人", "Recipient"),
    "attempts": ("尝试次数", "Attempts"),
    "state": ("状态", "State"),
    "err_outcome": ("请选择一个结果。", "Choose an outcome."),
    "err_note": ("备注最长 2000 字。", "The note may be at most 2000 characters."),
    "err_tier": ("请选择普通或疑难。", "Choose ordinary or hard."),
    "err_conflict": ("此告警当前状态不能这样操作（可能已有人处理）。",
                     "This step does not apply to the alert as it is now (someone may have been quicker)."),
    "done_ack": ("已确认前往。", "Acknowledged: you are on your way."),
    "done_resolve": ("已办结。", "Case closed."),
    "done_reopen": ("已重新打开。", "Case reopened."),
    "done_tier": ("已设定难度。", "Tier set."),
    "done_language": ("语言已切换。", "Language changed."),
    # phone page
    "my_open_alerts": ("待我处理", "My open alerts"),
    "no_open_alerts": ("暂时没有待处理的告警。", "No open alerts for you."),
    "history": ("我的记录", "My history"),
    "no_history": ("还没有处理记录。", "Nothing handled yet."),
    "details": ("详情", "Details"),
    "call_resident": ("打电话给老人", "Call the resident"),
    "call": ("拨打 {name}", "Call {name}"),
    "open_map": ("在地图中打开", "Open in maps"),
    "open_web_map": ("网页地图", "Web map"),
    "no_phone": ("没有登记电话", "no phone number registered"),
    "device_alert_at": ("网关 {gateway}", "gateway {gateway}"),
    # reports
    "figures_title": ("社区统计（最近 {months} 个月）", "Community figures (last {months} months)"),
    "period": ("统计期", "Period"),
    "months_n": ("{n} 个月", "{n} months"),
    "month": ("月份", "Month"),
    "all_period": ("合计", "Total"),
    "n_alerts": ("告警数", "Alerts"),
    "n_device": ("设备告警", "Device alerts"),
    "n_closed": ("已办结", "Closed"),
    "n_open": ("未办结", "Open"),
    "median_ack": ("响应时间中位数", "Median time to acknowledge"),
    "median_close": ("办结时间中位数", "Median time to close"),
    "sla_share": ("按时办结率", "Closed within SLA"),
    "false_share": ("误报率", "False alarms"),
    "by_month": ("按月", "By month"),
    "by_grid": ("按网格", "By grid"),
    "no_figures": ("此期间没有告警。", "No alerts in this period."),
    "definitions": ("口径说明", "Definitions"),
    "def_text": (
        ("只统计住户的关怀类告警（无用水用电、长时间用水、用量异常）；设备告警单列。"
        "响应时间：从告警发起到有人确认前往（未确认直接办结的，算到办结）。办结时间：从发起到有人办结。"
        "按时办结率：已办结或已超期未办结的告警中，在时限内（按社区升级策略，普通或疑难）办结的比例。"
        "误报率：已办结告警中结果为“平安”“外出”或“误报”的比例。月份按社区当地时间的发起月份。"),
        ("Only welfare alerts of households count (no activity, water running, unusual use); device alerts are "
        "counted apart. Time to acknowledge: from opening to the first 'on my way' (or to the closing, if closed "
        "without one). Time to close: from opening to the closing by a person. Closed within SLA: of the cases "
        "closed, or open past their deadline, the share closed by the deadline (the community's escalation "
        "policy, ordinary or hard tier). False alarms: of the closed cases, the share closed as safe, away or "
        "false alarm. Month: the month of opening in the community's time zone.")),
    # timeline events
    "ev_opened": ("发起", "opened"),
    "ev_notified": ("已通知", "notified"),
    "ev_notify_failed": ("通知失败", "notification failed"),
    "ev_undeliverable": ("无法送达", "undeliverable"),
    "ev_not_sent": ("已办结，未发送", "not sent: case closed"),
    "ev_escalation_step": ("升级", "escalated"),
    "ev_reminder": ("提醒", "reminder"),
    "ev_acknowledged": ("确认前往", "on the way"),
    "ev_sla_missed": ("超时未办结", "SLA missed"),
    "ev_tier": ("设定难度", "tier set"),
    "ev_cleared": ("恢复用水用电", "activity again"),
    "ev_resolved": ("办结", "closed"),
    "ev_reopened": ("重新打开", "reopened"),
    "ev_away": ("外出", "away"),
    "ev_back": ("预计返回", "expected back"),
    # durations
    "d_min": ("{m} 分钟", "{m} min"),
    "d_h": ("{h} 小时", "{h} h"),
    "d_hm": ("{h} 小时 {m} 分", "{h} h {m} min"),
    "d_d": ("{d} 天", "{d} d"),
    "d_dh": ("{d} 天 {h} 小时", "{d} d {h} h"),
}

def language_of(code: str | None) -> str:
    """A supported language, Chinese by default."""
    return code if code in LANGUAGES else "zh"


def from_accept_language(header: str | None) -> str:
    """The language a browser prefers, among ours (Chinese unless English comes first)."""
    for part in (header or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "zh"


@dataclass(frozen=True, slots=True)
class Translator:
    """Texts and formats in one language, handed to the templates as ``t``."""

    lang: str

    def __call__(self, key: str, **values: object) -> str:
        """The text of ``key``; a missing key is shown as itself (a test checks that none is missing)."""
        pair = TEXTS.get(key)
        text = key if pair is None else pair[0 if self.lang == "zh" else 1]
        return text.format(**values) if values else text

    def event(self, kind: str) -> str:
        """The name of a timeline event (its code if it has no name yet)."""
        return self(f"ev_{kind}") if f"ev_{kind}" in TEXTS else kind

    def time(self, ts: float | None, zone: str, with_year: bool = False) -> str:
        """Local wall time in the community's zone."""
        if ts is None:
            return self("never")
        return messages.local_time(int(ts), zone, "%Y-%m-%d %H:%M" if with_year else "%m-%d %H:%M")

    def date(self, ts: float | None, zone: str) -> str:
        """Local date."""
        return "" if ts is None else messages.local_time(int(ts), zone, "%Y-%m-%d")

    def duration(self, seconds: float | None) -> str:
        """A length of time, rounded to what matters."""
        if seconds is None:
            return "—"
        s = max(int(seconds), 0)
        d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
        if d >= 3:
            return self("d_d", d=d)
        if d:
            return self("d_dh", d=d, h=h)
        if h:
            return self("d_hm", h=h, m=m) if m else self("d_h", h=h)
        return self("d_min", m=m)

    def ago(self, ts: int | None, now: int) -> str:
        """How long ago (or from now) an instant is."""
        if ts is None:
            return self("never")
        return self("ago", d=self.duration(now - ts)) if ts <= now else self("in", d=self.duration(ts - now))

    def share(self, value: float | None) -> str:
        """A share as a percentage."""
        return "—" if value is None else f"{value * 100:.0f}%"

    def category(self, category: AlertCategory | str) -> str:
        """The name of an alert category (the same words as the notifications)."""
        return messages.CATEGORY[self.lang][AlertCategory(category)]

    def seen(self, alert: Alert, zone: str) -> str:
        """What was seen, as the notifications say it."""
        since = self.time(alert.since, zone)
        if self.lang == "zh":
            return f"{messages.SEEN_ZH[AlertCategory(alert.category)].format(since=since)}（{alert.reason}）"
        return f"{alert.reason} (since {since})"
