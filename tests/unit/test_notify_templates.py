"""Messages (rules §4.13, §9): short, naming household and deadline, never a full ID or phone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notify import templates
from shared.identity import check_character
from shared.logs import redact

ZONE = ZoneInfo("Asia/Shanghai")
HOUSEHOLD = "hh-0123456789abcdef0123"  # the shape intake gives a household id
RISKS = ["illness", "disability", "schooling", "disaster", "accident", "housing_unsafe"]


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.from_regex(r"[1-6][0-9]{5}", fullmatch=True))
    born = draw(
        st.dates(min_value=datetime(1930, 1, 1).date(), max_value=datetime(2020, 1, 1).date())
    )
    first17 = f"{region}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    return first17 + check_character(first17)


phones = st.from_regex(r"1[3-9]\d{9}", fullmatch=True)
households = st.one_of(
    st.just(HOUSEHOLD),
    resident_ids(),  # a caller may use a resident ID as the household id
    phones,
    st.builds(lambda i, p: f"户{i}电话{p}", resident_ids(), phones),
)


@given(
    household=households,
    template=st.sampled_from(sorted(templates.TEMPLATES["zh-CN"])),
    language=st.sampled_from(["zh-CN", "en"]),
    risks=st.lists(st.sampled_from(RISKS), max_size=4),
    extra=st.lists(st.one_of(resident_ids(), phones), max_size=3),
)
def test_no_message_ever_carries_an_unmasked_id_or_phone(
    household: str, template: str, language: str, risks: list[str], extra: list[str]
) -> None:
    text = templates.render(
        template,
        language=language,
        zone=ZONE,
        household=household,
        deadline=datetime(2026, 3, 17, 1, 30, tzinfo=UTC),
        visit_due=datetime(2026, 3, 4, 1, 30, tzinfo=UTC),
        risks=risks,
        measures=extra,
        households=[household, *extra],
        count=3,
        new_risks=risks,
        reason="收入 " + " ".join(extra),
    )
    secrets = [household, *extra]
    for secret in re.findall(r"\d{17}[\dX]|1\d{10}", " ".join(secrets)):
        assert secret not in text, (secret, text)


def test_masking_keeps_region_and_last_character() -> None:
    assert redact("身份证110101199003071234，电话13812345678") == (
        "身份证110101***********4，电话138****5678"
    )


def test_masking_leaves_household_ids_alone() -> None:
    assert redact(HOUSEHOLD) == HOUSEHOLD


def test_case_opened_names_household_visit_and_deadline_in_chinese() -> None:
    text = templates.render(
        "case_opened",
        language="zh-CN",
        zone=ZONE,
        household=HOUSEHOLD,
        # 2026-03-16 17:00 UTC is already the 17th in Beijing
        deadline=datetime(2026, 3, 16, 17, 0, tzinfo=UTC),
        visit_due=datetime(2026, 3, 4, 1, 0, tzinfo=UTC),
        risks=["illness"],
    )
    assert text == f"【防返贫】农户{HOUSEHOLD}报因病风险，请3月4日前入户核实，3月17日前完成认定"


def test_english_is_available() -> None:
    text = templates.render("case_overdue", language="en", zone=ZONE, household=HOUSEHOLD,
                            deadline=datetime(2026, 3, 17, 1, 0, tzinfo=UTC))  # fmt: skip
    assert HOUSEHOLD in text and "2026-03-17" in text and "overdue" in text


def test_unknown_language_falls_back_to_chinese() -> None:
    text = templates.render("digest", language="fr", zone=ZONE, household=HOUSEHOLD, count=2)
    assert text.startswith("【防返贫汇总】2条提醒")


@pytest.mark.parametrize("dated", [True, False])
def test_every_template_fits_one_sms_segment(dated: bool) -> None:
    for language, table in templates.TEMPLATES.items():
        for name in table:
            text = templates.render(
                name,
                language=language,
                zone=ZONE,
                household=HOUSEHOLD,
                deadline=datetime(2026, 12, 17, 1, 0, tzinfo=UTC) if dated else None,
                visit_due=datetime(2026, 12, 14, 1, 0, tzinfo=UTC) if dated else None,
                risks=["business_failure", "unstable_employment", "illness"],
                measures=["dangerous_house_renovation", "x"],
                households=[HOUSEHOLD, HOUSEHOLD + "b"],
                count=20,
                new_risks=["business_failure", "unstable_employment", "illness"],
                reason="人均纯收入高于监测范围且无刚性支出风险，不符合认定条件" * 4,
            )
            assert templates.fits_one_segment(text), (name, len(text), text)


# messages about events that carry no date (a completed step, an outcome, a reassessment):
# they say "soon" or "now" in words, never "by soon"
UNDATED = {
    "review_due", "approval_due", "elimination_check", "identified", "rejected",
    "risk_eliminated", "reassessed_green_channel", "reassessed_new_risk", "village_assigned",
    "review_due_identification", "review_due_elimination", "approval_due_identification",
    "approval_due_elimination",
}  # fmt: skip


def test_each_template_names_the_household_and_a_deadline() -> None:
    for table in templates.TEMPLATES.values():
        for name, pattern in table.items():
            dated = "{deadline}" in pattern or "{by_deadline}" in pattern
            assert dated is (name not in UNDATED), name
            assert "{household}" in pattern or "{households}" in pattern, name


def test_a_template_stating_its_date_has_an_undated_twin_without_one() -> None:
    """A "{deadline}" that is not "by" a date ("认定3月17日到期", "限3月17日") has no "soon" form:
    the message without a date is its twin, in every language."""
    for language, table in templates.TEMPLATES.items():
        twins = templates.UNDATED[language]
        assert set(twins) == {name for name, pattern in table.items() if "{deadline}" in pattern}
        for name, twin in twins.items():
            assert "{deadline}" not in twin and "{household}" in twin, (language, name)


H = HOUSEHOLD
DEADLINE = datetime(2026, 3, 17, 1, 0, tzinfo=UTC)
VISIT_DUE = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
# every template with a date, with it (as before: unchanged) and without (the event or the
# digest's members carry none: a CadreAssigned, a PlanCreated without case_deadline, an
# escalation of an undated urgent alert), read as zh-CN and en officials would write them; a
# digest lists its households cut short
WITH_AND_WITHOUT_A_DATE = {
    ("zh-CN", "case_opened"): (
        f"【防返贫】农户{H}报因病风险，请3月4日前入户核实，3月17日前完成认定",
        f"【防返贫】农户{H}报因病风险，请尽快入户核实，尽快完成认定",
    ),
    ("zh-CN", "home_visit_due"): (
        f"【防返贫】农户{H}自主申报因病风险（案件已在认定），请3月17日前入户核实",
        f"【防返贫】农户{H}自主申报因病风险（案件已在认定），请尽快入户核实",
    ),
    ("zh-CN", "deadline_approaching"): (
        f"【防返贫】农户{H}认定3月17日到期，请乡镇尽快审核",
        f"【防返贫】农户{H}认定即将到期，请乡镇尽快审核",
    ),
    ("zh-CN", "case_overdue"): (
        f"【防返贫预警】农户{H}认定已超期（限3月17日），请县级督办",
        f"【防返贫预警】农户{H}认定已超期，请县级督办",
    ),
    ("zh-CN", "green_channel"): (
        f"【紧急】农户{H}因病开通绿色通道，请立即救助，3月17日前补办认定",
        f"【紧急】农户{H}因病开通绿色通道，请立即救助，尽快补办认定",
    ),
    ("zh-CN", "cadre_assigned"): (
        f"【防返贫】您为农户{H}帮扶责任人，请3月17日前首次走访",
        f"【防返贫】您为农户{H}帮扶责任人，请尽快首次走访",
    ),
    ("zh-CN", "plan_created"): (
        f"【防返贫】农户{H}帮扶计划已建（医疗救助），请3月17日前落实",
        f"【防返贫】农户{H}帮扶计划已建（医疗救助），请尽快落实",
    ),
    ("zh-CN", "visit_overdue"): (
        f"【防返贫】农户{H}应于3月17日前走访，已逾期，请尽快入户",
        f"【防返贫】农户{H}走访已逾期，请尽快入户",
    ),
    ("zh-CN", "visit_overdue_township"): (
        f"【防返贫预警】农户{H}走访逾期（限3月17日），请乡镇督促",
        f"【防返贫预警】农户{H}走访逾期，请乡镇督促",
    ),
    ("zh-CN", "escalation"): (
        f"【紧急升级】农户{H}的提醒无人确认，请督办，期限3月17日",
        f"【紧急升级】农户{H}的提醒无人确认，请立即督办",
    ),
    ("zh-CN", "digest"): (
        f"【防返贫汇总】2条提醒：农户{H[:12]}，请3月17日前处理",
        f"【防返贫汇总】2条提醒：农户{H[:12]}，请尽快处理",
    ),
    ("en", "case_opened"): (
        f"Holdline: household {H} reports illness risk. Visit by 2026-03-04; finish "
        "identification by 2026-03-17.",
        f"Holdline: household {H} reports illness risk. Visit soon; finish identification soon.",
    ),
    ("en", "home_visit_due"): (
        f"Holdline: household {H} declared illness risk on a case already open. Visit by "
        "2026-03-17.",
        f"Holdline: household {H} declared illness risk on a case already open. Visit soon.",
    ),
    ("en", "deadline_approaching"): (
        f"Holdline: identification of household {H} is due 2026-03-17. Township, please review "
        "now.",
        f"Holdline: identification of household {H} is due soon. Township, please review now.",
    ),
    ("en", "case_overdue"): (
        f"Holdline WARNING: identification of household {H} is overdue (due 2026-03-17). "
        "County, please intervene.",
        f"Holdline WARNING: identification of household {H} is overdue. County, please intervene.",
    ),
    ("en", "green_channel"): (
        f"URGENT: green channel for household {H} (illness). Give relief now; paperwork by "
        "2026-03-17.",
        f"URGENT: green channel for household {H} (illness). Give relief now; paperwork soon.",
    ),
    ("en", "cadre_assigned"): (
        f"Holdline: you are the responsible cadre of household {H}. First visit by 2026-03-17.",
        f"Holdline: you are the responsible cadre of household {H}. First visit soon.",
    ),
    ("en", "plan_created"): (
        f"Holdline: plan for household {H} (medical_aid). Carry it out by 2026-03-17.",
        f"Holdline: plan for household {H} (medical_aid). Carry it out soon.",
    ),
    ("en", "visit_overdue"): (
        f"Holdline: your visit to household {H} was due 2026-03-17. Please visit now.",
        f"Holdline: your visit to household {H} is overdue. Please visit now.",
    ),
    ("en", "visit_overdue_township"): (
        f"Holdline WARNING: visit to household {H} overdue (due 2026-03-17). Township, please "
        "follow up.",
        f"Holdline WARNING: visit to household {H} overdue. Township, please follow up.",
    ),
    ("en", "escalation"): (
        f"URGENT: nobody acknowledged the alert on household {H}. Please act; due 2026-03-17.",
        f"URGENT: nobody acknowledged the alert on household {H}. Please act now.",
    ),
    ("en", "digest"): (
        f"Holdline: 2 alerts (household {H[:12]}); handle by 2026-03-17.",
        f"Holdline: 2 alerts (household {H[:12]}); handle soon.",
    ),
}


def _dated(name: str, language: str, deadline: datetime | None, visit_due: datetime | None) -> str:
    return templates.render(
        name, language=language, zone=ZONE, household=H, deadline=deadline,
        visit_due=visit_due, risks=["illness"], measures=["medical_aid"], households=[H],
        count=2,
    )  # fmt: skip


@pytest.mark.parametrize(("language", "name"), sorted(WITH_AND_WITHOUT_A_DATE))
def test_a_message_reads_naturally_with_its_date_and_without_one(language: str, name: str) -> None:
    with_date, without = WITH_AND_WITHOUT_A_DATE[language, name]
    assert _dated(name, language, DEADLINE, VISIT_DUE) == with_date
    assert _dated(name, language, None, None) == without


def test_every_dated_template_is_checked_with_and_without_its_date() -> None:
    dated = {(lang, name) for lang, table in templates.TEMPLATES.items() for name in table}
    assert set(WITH_AND_WITHOUT_A_DATE) == {key for key in dated if key[1] not in UNDATED}


def test_a_new_case_without_a_home_visit_date_asks_for_the_visit_soon() -> None:
    """CaseOpened's home_visit_due is set for a self-declaration only (rules §4.10)."""
    assert _dated("case_opened", "zh-CN", DEADLINE, None) == (
        f"【防返贫】农户{H}报因病风险，请尽快入户核实，3月17日前完成认定"
    )
    assert _dated("case_opened", "en", DEADLINE, None) == (
        f"Holdline: household {H} reports illness risk. Visit soon; finish identification by "
        "2026-03-17."
    )


@pytest.mark.parametrize("language", sorted(templates.TEMPLATES))
@pytest.mark.parametrize("deadline", [DEADLINE, None])
@pytest.mark.parametrize("visit_due", [VISIT_DUE, None])
def test_no_message_puts_soon_where_a_date_belongs(
    language: str, deadline: datetime | None, visit_due: datetime | None
) -> None:
    """Whatever template a route names (HOLDLINE_NOTIFY_ROUTES may give any event any of
    them), a missing date never reads "请尽快前落实", "限尽快" or "by soon"."""
    wrong = [
        "尽快前",
        "限尽快",
        "期限尽快",
        "于尽快",
        "认定尽快",
        "by soon",
        "due soon)",
        "; due soon",
    ]
    for name in templates.TEMPLATES[language]:
        text = _dated(name, language, deadline, visit_due)
        assert not [w for w in wrong if w in text], (name, text)


def test_a_rejection_names_its_reason_masked_before_it_is_cut() -> None:
    """rules §4.7: the reason reaches the village; an official's free text may hold an ID or
    a phone, and a cut ID would no longer look like one to the mask."""
    pid = "11010119900307123X"
    text = templates.render(
        "rejected", language="zh-CN", zone=ZONE, household=HOUSEHOLD, reason=f"不符 身份证{pid}"
    )
    # cut first, 13 of the 18 characters would be left, birth date and all, unmasked
    assert text == (
        f"【防返贫】农户{HOUSEHOLD}未认定为监测对象：不符 身份证110101*******…。请尽快告知农户"
    )
    assert templates.fits_one_segment(text)
    short = templates.render(
        "rejected", language="en", zone=ZONE, household=HOUSEHOLD, reason="income\nabove range"
    )
    assert short == (
        f"Holdline: household {HOUSEHOLD} was not identified: income above range. Please tell "
        "the household."
    )
    long = templates.render(
        "rejected", language="en", zone=ZONE, household=HOUSEHOLD, reason="x " * 100
    )
    assert "..." in long and "…" not in long and templates.fits_one_segment(long)


def test_a_monitored_household_in_the_green_channel_names_the_provisional_help() -> None:
    text = templates.render(
        "reassessed_green_channel", language="zh-CN", zone=ZONE, household=HOUSEHOLD,
        risks=["illness"], measures=["medical_aid", "temporary_assistance"],
    )  # fmt: skip
    assert text == f"【紧急】监测户{HOUSEHOLD}因病符合绿色通道，请立即给予临时救助：医疗救助等"


def test_ack_link_is_appended() -> None:
    assert (
        templates.with_ack_link("急", "http://h/v1/acks/t", "zh-CN") == "急 确认:http://h/v1/acks/t"
    )
    assert templates.with_ack_link("x", None, "en") == "x"


def _step(template: str, language: str, purpose: str | None) -> str:
    return templates.render(
        template, language=language, zone=ZONE, household=HOUSEHOLD, purpose=purpose
    )


def test_a_case_waiting_for_township_or_county_names_the_decision_that_awaits_them() -> None:
    """rules §4.5, §7.2: the same two steps decide an identification or a risk elimination;
    the official it waits for reads which one."""
    assert _step("review_due", "zh-CN", "identification") == (
        f"【防返贫】农户{HOUSEHOLD}已完成村级评议，待乡镇审核是否认定为监测对象，请尽快办理"
    )
    assert _step("review_due", "zh-CN", "elimination") == (
        f"【防返贫】监测户{HOUSEHOLD}已完成村级评议，待乡镇审核是否风险消除，请尽快办理"
    )
    assert _step("approval_due", "zh-CN", "identification") == (
        f"【防返贫】农户{HOUSEHOLD}已通过乡镇审核，待县级审定是否认定为监测对象，请尽快办理"
    )
    assert _step("approval_due", "zh-CN", "elimination") == (
        f"【防返贫】监测户{HOUSEHOLD}已通过乡镇审核，待县级审定是否风险消除，请尽快办理"
    )
    assert "township review of its identification" in _step("review_due", "en", "identification")
    assert "township review of its risk elimination" in _step("review_due", "en", "elimination")
    assert "county approval of its identification" in _step("approval_due", "en", "identification")
    assert "county approval of its risk elimination" in _step("approval_due", "en", "elimination")


def test_without_a_purpose_the_step_messages_fit_both_decisions() -> None:
    """An event from an older producer (schema < 1.3) or an unknown purpose: today's wording."""
    for purpose in (None, "reassessment"):
        assert _step("review_due", "zh-CN", purpose) == (
            f"【防返贫】农户{HOUSEHOLD}案件已完成村级评议，待乡镇审核，请尽快办理"
        )
        assert _step("approval_due", "en", purpose) == (
            f"Holdline: the case of household {HOUSEHOLD} passed township review and awaits "
            "county approval. Please decide soon."
        )
    # a template without variants ignores the purpose
    assert _step("elimination_check", "zh-CN", "elimination") == _step(
        "elimination_check", "zh-CN", None
    )


def test_a_digest_says_what_its_alerts_are() -> None:
    """A cadre who takes over another's households reads that they are now in their care, not
    only "5条提醒"; the kinds that do not fit one segment are folded into "等" / "etc."."""
    kinds = {"PlanCreated": 3, "CadreAssigned": 2}
    names = {H: "张三"}
    zh = templates.render(
        "digest", language="zh-CN", zone=ZONE, household=H, households=[H, "hh-2"], count=5,
        kinds=kinds, names=names,
    )  # fmt: skip
    assert zh == "【防返贫汇总】5条提醒（新任帮扶责任人2户、帮扶计划3项）：农户张三户等，请尽快处理"
    en = templates.render(
        "digest", language="en", zone=ZONE, household=H, households=[H, "hh-2"], count=6,
        kinds=kinds | {"RiskEliminated": 1}, deadline=DEADLINE,
    )  # fmt: skip
    assert en == (
        "Holdline: 6 alerts: 2 households newly in your care, 3 plans, 1 risk eliminated "
        f"(household {H[:12]} etc.); handle by 2026-03-17."
    )
    crowded = templates.render(
        "digest", language="zh-CN", zone=ZONE, household=H, households=[H, "hh-2"], count=99,
        kinds={"CadreAssigned": 20, "PlanCreated": 40, "RiskEliminated": 30, "VisitOverdue": 9},
        deadline=DEADLINE,
    )  # fmt: skip
    assert crowded.startswith("【防返贫汇总】99条提醒（新任帮扶责任人20户、帮扶计划40项")
    assert "等）" in crowded and templates.fits_one_segment(crowded), crowded


def test_a_notice_of_an_undelivered_alert_names_whom_and_quotes_what_it_asked() -> None:
    asked = "【防返贫】农户张三户报因病风险，请12月10日前入户核实，12月23日前完成认定"
    assert templates.undelivered("村干部甲", asked, language="zh-CN") == (
        "【送达失败】村干部甲未收到提醒，请代为跟进：农户张三户报因病风险，请12月10日前入户核实，"
        "12月23日前完成认定"
    )
    # too long for one segment: the quote is cut, never the name of whom it did not reach
    long = templates.undelivered(
        "村干部甲", f"【防返贫】农户{H}" + "报因病风险" * 9, language="zh-CN"
    )
    assert long.startswith(f"【送达失败】村干部甲未收到提醒，请代为跟进：农户{H}报因病")
    assert long.endswith("…") and templates.fits_one_segment(long)
    en = templates.undelivered(
        "Li Si", f"URGENT: green channel for household {H} (illness). Ack: http://h/v1/acks/t",
        language="en",
    )  # fmt: skip
    assert en == (
        f"Holdline: could not reach Li Si. Please follow up: green channel for household {H} "
        "(illness)."
    )
    # a masked ID stays masked in the quote
    assert "19900307" not in templates.undelivered("x", "身份证11010119900307123X", language="en")
