"""Messages (rules §4.13, §9): short, naming household and deadline, never a full ID or phone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.notify import templates
from shared.identity import check_character

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
    assert templates.mask_text("身份证110101199003071234，电话13812345678") == (
        "身份证110101***********4，电话138****5678"
    )


def test_masking_leaves_household_ids_alone() -> None:
    assert templates.mask_text(HOUSEHOLD) == HOUSEHOLD


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


def test_every_template_fits_one_sms_segment() -> None:
    for language, table in templates.TEMPLATES.items():
        for name in table:
            text = templates.render(
                name,
                language=language,
                zone=ZONE,
                household=HOUSEHOLD,
                deadline=datetime(2026, 12, 17, 1, 0, tzinfo=UTC),
                visit_due=datetime(2026, 12, 14, 1, 0, tzinfo=UTC),
                risks=["business_failure", "unstable_employment", "illness"],
                measures=["dangerous_house_renovation", "x"],
                households=[HOUSEHOLD, HOUSEHOLD + "b"],
                count=20,
                new_risks=["business_failure", "unstable_employment", "illness"],
                reason="人均纯收入高于监测范围且无刚性支出风险，不符合认定条件" * 4,
            )
            assert len(text) <= templates.MAX_CHARS[language], (name, len(text), text)


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
            assert ("{deadline}" in pattern) is (name not in UNDATED), name
            assert "{household}" in pattern or "{households}" in pattern, name


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
    assert len(text) <= templates.MAX_CHARS["zh-CN"]
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
    assert "..." in long and "…" not in long and len(long) <= templates.MAX_CHARS["en"]


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
