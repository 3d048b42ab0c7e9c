"""Message templates (zh-CN by default, en), short enough for SMS, with IDs and phones masked.

A message names the household by its head's name when notify knows it ("农户张三户", "the
household of 张三"; rules §4.13: names may be shown), else by its id ("农户hh-…", "household
hh-…")."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, tzinfo

from shared.events import Payload
from shared.logs import redact

DEFAULT_LANGUAGE = "zh-CN"
# one SMS segment holds 160 GSM-7 characters, or 70 UCS-2 ones as soon as one character of the
# text is not in the GSM-7 alphabet (any Chinese character: a zh-CN message, or an English one
# naming 张三); the ack link comes on top. The budget follows the text produced (segment_budget)
GSM_SEGMENT, UCS2_SEGMENT = 160, 70
# GSM 03.38: the basic alphabet, and the extension table whose characters take two septets
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVW"
    "XYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

# rules §4.13 and architecture (security): messages never carry a full resident ID or phone;
# every text goes through shared.logs.redact, the platform's one masking

TEMPLATES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "case_opened": "【防返贫】农户{household}报{risks}风险，"
        "请{by_visit_due}入户核实，{by_deadline}完成认定",
        "home_visit_due": "【防返贫】农户{household}自主申报{risks}风险（案件已在认定），"
        "请{by_deadline}入户核实",
        "deadline_approaching": "【防返贫】农户{household}认定{deadline}到期，请乡镇尽快审核",
        "case_overdue": "【防返贫预警】农户{household}认定已超期（限{deadline}），请县级督办",
        "green_channel": "【紧急】农户{household}{risks}开通绿色通道，"
        "请立即救助，{by_deadline}补办认定",
        "cadre_assigned": "【防返贫】您为农户{household}帮扶责任人，请{by_deadline}首次走访",
        "plan_created": "【防返贫】农户{household}帮扶计划已建（{measures}），请{by_deadline}落实",
        "visit_overdue": "【防返贫】农户{household}应于{deadline}前走访，已逾期，请尽快入户",
        "visit_overdue_township": "【防返贫预警】农户{household}走访逾期"
        "（限{deadline}），请乡镇督促",
        "escalation": "【紧急升级】农户{household}的提醒无人确认，请督办，期限{deadline}",
        # {kinds}: what the alerts are (KINDS), so a new responsibility is not hidden in a count
        "digest": "【防返贫汇总】{count}条提醒{kinds}：农户{households}，请{by_deadline}处理",
        # the events below carry no date: their messages say "now" instead of naming one
        "review_due": "【防返贫】农户{household}案件已完成村级评议，待乡镇审核，请尽快办理",
        "approval_due": "【防返贫】农户{household}案件已通过乡镇审核，待县级审定，请尽快办理",
        # the same steps when the event names the decision (PURPOSE_VARIANTS)
        "review_due_identification": "【防返贫】农户{household}已完成村级评议，"
        "待乡镇审核是否认定为监测对象，请尽快办理",
        "review_due_elimination": "【防返贫】监测户{household}已完成村级评议，"
        "待乡镇审核是否风险消除，请尽快办理",
        "approval_due_identification": "【防返贫】农户{household}已通过乡镇审核，"
        "待县级审定是否认定为监测对象，请尽快办理",
        "approval_due_elimination": "【防返贫】监测户{household}已通过乡镇审核，"
        "待县级审定是否风险消除，请尽快办理",
        "elimination_check": "【防返贫】监测户{household}拟风险消除，请尽快入户核实后组织村级评议",
        "village_assigned": "【防返贫】农户{household}的风险案件已由县级划归本村，"
        "请尽快入户核实并收取签字承诺书",
        "identified": "【防返贫】农户{household}已认定为监测对象（{risks}），请尽快告知农户",
        "rejected": "【防返贫】农户{household}未认定为监测对象：{reason}。请尽快告知农户",
        "risk_eliminated": "【防返贫】监测户{household}风险已消除，请告知农户，延续措施照常落实",
        "reassessed_green_channel": "【紧急】监测户{household}{risks}符合绿色通道，"
        "请立即给予临时救助：{measures}",
        "reassessed_new_risk": "【防返贫】监测户{household}新增{new_risks}风险，"
        "请尽快入户并补充帮扶措施",
    },
    "en": {
        "case_opened": "Holdline: {household} reports {risks} risk. "
        "Visit {by_visit_due}; finish identification {by_deadline}.",
        "home_visit_due": "Holdline: {household} declared {risks} risk on a case "
        "already open. Visit {by_deadline}.",
        "deadline_approaching": "Holdline: identification of {household} is due "
        "{deadline}. Township, please review now.",
        "case_overdue": "Holdline WARNING: identification of {household} is overdue "
        "(due {deadline}). County, please intervene.",
        "green_channel": "URGENT: green channel for {household} ({risks}). Give relief "
        "now; paperwork {by_deadline}.",
        "cadre_assigned": "Holdline: you are the responsible cadre of {household}. "
        "First visit {by_deadline}.",
        "plan_created": "Holdline: plan for {household} ({measures}). Carry it out {by_deadline}.",
        "visit_overdue": "Holdline: your visit to {household} was due {deadline}. "
        "Please visit now.",
        "visit_overdue_township": "Holdline WARNING: visit to {household} overdue "
        "(due {deadline}). Township, please follow up.",
        "escalation": "URGENT: nobody acknowledged the alert on {household}. Please "
        "act; due {deadline}.",
        "digest": "Holdline: {count} alerts{kinds} ({households}); handle {by_deadline}.",
        "review_due": "Holdline: the case of {household} passed village appraisal "
        "and awaits township review. Please review it soon.",
        "approval_due": "Holdline: the case of {household} passed township review "
        "and awaits county approval. Please decide soon.",
        "review_due_identification": "Holdline: {household} passed village appraisal "
        "and awaits township review of its identification. Please review it soon.",
        "review_due_elimination": "Holdline: {household} (monitored) passed village "
        "appraisal and awaits township review of its risk elimination. Please review it soon.",
        "approval_due_identification": "Holdline: {household} passed township review "
        "and awaits county approval of its identification. Please decide soon.",
        "approval_due_elimination": "Holdline: {household} (monitored) passed township "
        "review and awaits county approval of its risk elimination. Please decide soon.",
        "elimination_check": "Holdline: risk elimination proposed for {household}. "
        "Please visit soon, then hold the village appraisal.",
        "village_assigned": "Holdline: the county placed the case of {household} "
        "in your village. Please visit soon to verify it and collect the signed form.",
        "identified": "Holdline: {household} is now a monitoring object ({risks}). "
        "Please tell the household.",
        "rejected": "Holdline: {household} was not identified: {reason}. Please tell "
        "the household.",
        "risk_eliminated": "Holdline: the risk of {household} is eliminated. Please "
        "tell the household; continuing measures go on.",
        "reassessed_green_channel": "URGENT: green channel for {household} (monitored; "
        "{risks}). Give relief now: {measures}",
        "reassessed_new_risk": "Holdline: {household} (monitored) has a new {new_risks} "
        "risk. Please visit and extend its plan soon.",
    },
}

# "{by_deadline}" and "{by_visit_due}" ask for something by a date ("3月17日前", "by
# 2026-03-17") or, without one, soon ("尽快", "soon"). A message stating its date as a fact
# ("认定3月17日到期", "限3月17日") has this twin, sent when the event has no date: never
# "尽快前" or "限尽快"
UNDATED: dict[str, dict[str, str]] = {
    "zh-CN": {
        "deadline_approaching": "【防返贫】农户{household}认定即将到期，请乡镇尽快审核",
        "case_overdue": "【防返贫预警】农户{household}认定已超期，请县级督办",
        "visit_overdue": "【防返贫】农户{household}走访已逾期，请尽快入户",
        "visit_overdue_township": "【防返贫预警】农户{household}走访逾期，请乡镇督促",
        "escalation": "【紧急升级】农户{household}的提醒无人确认，请立即督办",
    },
    "en": {
        "deadline_approaching": "Holdline: identification of {household} is due "
        "soon. Township, please review now.",
        "case_overdue": "Holdline WARNING: identification of {household} is overdue. "
        "County, please intervene.",
        "visit_overdue": "Holdline: your visit to {household} is overdue. Please visit now.",
        "visit_overdue_township": "Holdline WARNING: visit to {household} overdue. "
        "Township, please follow up.",
        "escalation": "URGENT: nobody acknowledged the alert on {household}. Please act now.",
    },
}

# what a digest's alerts are, counted by the event that made each (the low-priority routes:
# rules §6.8 a new responsibility, a plan; rules §7 an elimination; any other a route override
# made low); shown in this order, those that do not fit one segment folded into "等" / "etc."
KINDS: dict[str, dict[str, tuple[str, str]]] = {
    "zh-CN": {
        "CadreAssigned": ("新任帮扶责任人{n}户", "新任帮扶责任人{n}户"),
        "PlanCreated": ("帮扶计划{n}项", "帮扶计划{n}项"),
        "RiskEliminated": ("风险消除{n}户", "风险消除{n}户"),
        "other": ("其他提醒{n}条", "其他提醒{n}条"),
    },
    "en": {
        "CadreAssigned": ("1 household newly in your care", "{n} households newly in your care"),
        "PlanCreated": ("1 plan", "{n} plans"),
        "RiskEliminated": ("1 risk eliminated", "{n} risks eliminated"),
        "other": ("1 other", "{n} others"),
    },
}
KINDS_AROUND = {"zh-CN": "（{kinds}）", "en": ": {kinds}"}

# an alert that could not be delivered (every attempt spent): the level above reads whom it
# did not reach and what that alert asked, quoted without its tag (escalation.report_undelivered)
UNDELIVERED = {
    "zh-CN": "【送达失败】{whom}未收到提醒，请代为跟进：{asked}",
    "en": "Holdline: could not reach {whom}. Please follow up: {asked}",
}
TAG = re.compile(r"^(【[^】]*】|Holdline WARNING: |Holdline: |URGENT: )")
WHOM_CHARS = {"zh-CN": 8, "en": 24}

# a completed step's event names the case's purpose (schema 1.3): the township and county
# then read which decision awaits them, identification (rules §4.5) or risk elimination (rules
# §7.2); without it (an older producer) the template of the route fits both
PURPOSE_VARIANTS: dict[str, frozenset[str]] = {
    "review_due": frozenset({"identification", "elimination"}),
    "approval_due": frozenset({"identification", "elimination"}),
}

RISK_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "illness": "因病", "disability": "因残", "schooling": "因学", "disaster": "因灾",
        "accident": "意外", "business_failure": "产业失败", "unstable_employment": "务工不稳",
        "lack_of_labour": "缺劳力", "housing_unsafe": "住房", "water_unsafe": "饮水",
        "other": "其他",
    },
    "en": {},
}  # fmt: skip
# rules §6 measure codes as a cadre reads them; unknown codes are shown cut short
MEASURE_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "medical_aid": "医疗救助", "medical_insurance_subsidy": "医保资助",
        "serious_illness_insurance": "大病保险", "social_assistance": "社会救助",
        "temporary_assistance": "临时救助", "education_aid": "教育资助",
        "compulsory_education_guarantee": "控辍保学", "disability_subsidy": "残疾补贴",
        "employment_placement": "就业帮扶", "public_welfare_job": "公益岗位",
        "skills_training": "技能培训", "microcredit": "小额信贷", "industry_support": "产业帮扶",
        "startup_support": "创业扶持", "minimum_living_allowance": "低保",
        "extreme_poverty_support": "特困供养", "pension": "养老保险",
        "dangerous_house_renovation": "危房改造", "relocation": "易地搬迁",
        "drinking_water_project": "饮水工程", "insurance_claim": "保险理赔",
        "rain_and_dew": "雨露计划",
    },
    "en": {},
}  # fmt: skip
SOON = {"zh-CN": "尽快", "en": "soon"}
# how `{household}` reads: the head's name when known (rules §4.13), else the household id. A
# name is cut to keep one SMS segment: the named phrase is never longer than the id's
NAMED_HOUSEHOLD = {"zh-CN": "{name}户", "en": "the household of {name}"}
HOUSEHOLD_ID = {"zh-CN": "{id}", "en": "household {id}"}
NAME_CHARS = {"zh-CN": 12, "en": 16}
# an official's free-text reason (a rejection, rules §4.7) is cut to keep one SMS segment
REASON_CHARS = {"zh-CN": 20, "en": 60}
CUT = {"zh-CN": "…", "en": "..."}  # GSM-7 has no "…": it would make an English SMS UCS-2
LIST_SEP = {"zh-CN": "、", "en": ", "}
MORE = {"zh-CN": "等", "en": " etc."}


def sms_units(text: str) -> tuple[int, int]:
    """What `text` takes of one SMS segment, and the segment's size: GSM-7 septets out of 160
    when every character is in the GSM-7 alphabet (an extension character takes two), else
    UTF-16 units out of 70 (one Chinese character, "…" or "’" is enough for UCS-2)."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        return sum(2 if c in GSM_EXTENSION else 1 for c in text), GSM_SEGMENT
    return len(text.encode("utf-16-le")) // 2, UCS2_SEGMENT


def fits_one_segment(text: str) -> bool:
    """Whether `text` goes as one SMS segment, in the encoding its characters need."""
    used, size = sms_units(text)
    return used <= size


def short_list(
    items: Iterable[str], language: str, names: Mapping[str, str], keep: int, width: int = 12
) -> str:
    """At most `keep` items, translated where a name is known (else cut to `width`), then
    "etc."."""
    items = list(items)
    shown = LIST_SEP[language].join(names.get(i, i[:width]) for i in items[:keep])
    return shown + (MORE[language] if len(items) > keep else "")


def short_text(text: str, language: str, keep: int) -> str:
    """Free text on one line, masked before it is cut (a cut ID would escape the mask)."""
    text = " ".join(redact(text).split())
    if len(text) <= keep:
        return text
    return text[: keep - len(CUT[language])].rstrip() + CUT[language]


def household_label(household_id: str, name: str | None, language: str) -> str:
    """The household as a message names it: "张三户" / "the household of 张三" when its head's
    name is known (masked, then cut: a resident ID or phone typed as a name stays hidden), else
    its id."""
    shown = short_text(name or "", language, NAME_CHARS[language])
    if shown:
        return NAMED_HOUSEHOLD[language].format(name=shown)
    return HOUSEHOLD_ID[language].format(id=household_id)


def local_date(value: datetime | None, zone: tzinfo, language: str) -> str:
    """A deadline as the local date; "soon" when there is none."""
    if value is None:
        return SOON[language]
    day = value.astimezone(zone).date()
    return f"{day.month}月{day.day}日" if language == "zh-CN" else day.isoformat()


def by_date(value: datetime | None, zone: tzinfo, language: str) -> str:
    """A deadline to act by ("3月17日前", "by 2026-03-17"); "soon" when there is none."""
    if value is None:
        return SOON[language]
    day = local_date(value, zone, language)
    return f"{day}前" if language == "zh-CN" else f"by {day}"


def for_purpose(template: str, purpose: str | None) -> str:
    """The template naming the case's decision, when there is one for it; else `template`."""
    if purpose in PURPOSE_VARIANTS.get(template, ()):
        return f"{template}_{purpose}"
    return template


def render(
    template: str,
    *,
    language: str,
    zone: tzinfo,
    household: str,
    deadline: datetime | None = None,
    visit_due: datetime | None = None,
    risks: Iterable[str] = (),
    measures: Iterable[str] = (),
    households: Iterable[str] = (),
    count: int = 0,
    new_risks: Iterable[str] = (),
    reason: str = "",
    purpose: str | None = None,
    names: Mapping[str, str] | None = None,
    kinds: Mapping[str, int] | None = None,
) -> str:
    """The text of one message, masked, in one SMS segment; `purpose` (a case's) picks the
    variant naming its decision where the template has one, and a message without `deadline`
    its undated twin. `names`: the head's name of the households known by one (household id ->
    name); `kinds`: a digest's alerts counted by event type."""
    language = language if language in TEMPLATES else DEFAULT_LANGUAGE
    template = for_purpose(template, purpose)
    pattern = TEMPLATES[language][template]
    if deadline is None:
        pattern = UNDATED[language].get(template, pattern)
    households = list(households)
    fields = {
        "deadline": local_date(deadline, zone, language),
        "by_deadline": by_date(deadline, zone, language),
        "by_visit_due": by_date(visit_due, zone, language),
        "risks": short_list(risks, language, RISK_NAMES[language], 2),
        "new_risks": short_list(new_risks, language, RISK_NAMES[language], 2),
        "reason": short_text(reason, language, REASON_CHARS[language]),
        "measures": short_list(measures, language, MEASURE_NAMES[language], 1),
        "count": str(count),
        "kinds": "",
    }
    # the family by name (rules §4.13) unless that does not fit one segment: an English
    # message naming 张三 goes as UCS-2, 70 characters, and then names the household by its id
    # (GSM-7, 160); the webhook body still carries `household_name`. An official's free text
    # that makes the message UCS-2 (a Chinese reason in English) is cut to the room left, and
    # left out ("...") when there is none
    options = []
    for known in (names or {}, {}):
        # a digest's households: an id cut as any listed item is, a name short already
        listed = [household_label(h[:12], known.get(h), language) for h in households]
        labels = {
            "household": household_label(household, known.get(household), language),
            "households": short_list(listed, language, {}, 1, width=60),
        }
        # a digest's kinds: as many as fit, the rest folded into "等" / "etc."
        for shown in range(len(kinds or {}), -1, -1):
            options.append(fields | labels | {"kinds": kinds_phrase(kinds or {}, language, shown)})
    for option in options:
        text = redact(pattern.format(**option))
        if fits_one_segment(text):
            return text
    for leave_out in (False, True):
        for option in options:
            text = fit_free_text(pattern, option, "reason", language, leave_out=leave_out)
            if fits_one_segment(text):
                return text
    return text


def kinds_phrase(kinds: Mapping[str, int], language: str, shown: int) -> str:
    """A digest's alerts counted by kind ("新任帮扶责任人2户、帮扶计划3项"), the first `shown`
    kinds in KINDS' order, then "等" / "etc." for the rest; "" without kinds."""
    if not kinds:
        return ""
    table = KINDS[language]
    order = sorted(kinds, key=lambda k: list(table).index(k) if k in table else len(table))
    parts = []
    for kind in order[:shown]:
        one, many = table.get(kind, table["other"])
        parts.append((one if kinds[kind] == 1 else many).format(n=kinds[kind]))
    phrase = LIST_SEP[language].join(parts) + (MORE[language] if shown < len(order) else "")
    return KINDS_AROUND[language].format(kinds=phrase.strip()) if parts else ""


def fit_free_text(
    pattern: str, fields: Mapping[str, str], key: str, language: str, *, leave_out: bool = True
) -> str:
    """The message with its free-text field `key` cut to the room one segment leaves, in the
    encoding the whole text needs; with no room for any of it, "..." / "…" in its place
    (`leave_out`), else the message as it is."""
    text = redact(pattern.format(**fields))
    if fits_one_segment(text) or "{" + key + "}" not in pattern:
        return text
    base = redact(pattern.format(**(dict(fields) | {key: ""})))
    _, size = sms_units(text)
    room = size - len(base.encode("utf-16-le")) // 2
    if room > len(CUT[language]) + 1:
        return redact(
            pattern.format(**(dict(fields) | {key: short_text(fields[key], language, room)}))
        )
    return redact(pattern.format(**(dict(fields) | {key: CUT[language]}))) if leave_out else text


def undelivered(whom: str, asked: str, *, language: str) -> str:
    """The notice to the level above of an alert nobody received: whom it did not reach, and
    what it asked (its text without tag or ack link), cut to fit one segment."""
    language = language if language in UNDELIVERED else DEFAULT_LANGUAGE
    asked = TAG.sub("", asked.split(" 确认:")[0].split(" Ack: ")[0]).strip()
    fields = {"whom": short_text(whom, language, WHOM_CHARS[language]), "asked": asked}
    return fit_free_text(UNDELIVERED[language], fields, "asked", language)


def with_ack_link(text: str, link: str | None, language: str) -> str:
    """Append the acknowledgement link of an urgent message."""
    if not link:
        return text
    return f"{text} 确认:{link}" if language == "zh-CN" else f"{text} Ack: {link}"


def deadline_of(payload: Payload) -> datetime | None:
    """The date a message names: the case deadline, paperwork date or visit due date (a
    monthly visit's, or the home visit of a declaration that joined an open case)."""
    for name in ("deadline", "case_deadline", "paperwork_due", "due_on", "home_visit_due"):
        value = payload.get(name)
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            # a due day counts until its end in local time; noon UTC keeps the same date there
            return datetime.combine(value, time(12), tzinfo=UTC)
    return None
