"""Alerts name the household by its head's name when notify knows it (rules §4.13: names may be
shown), with the household id left out of the text; without a name, by the id as before. Every
message still fits one SMS segment, and an ID or phone typed as a name is masked."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notify import templates

ZONE = ZoneInfo("Asia/Shanghai")
H = "hh-6c66ab2455cd09bb70ee"
DEADLINE = datetime(2026, 12, 10, 1, 0, tzinfo=UTC)
NAMED = {H: "张三"}


def _render(name: str, language: str, names: dict[str, str] | None, **extra: object) -> str:
    fields: dict[str, object] = {
        "deadline": DEADLINE, "visit_due": DEADLINE, "risks": ["illness"],
        "measures": ["medical_aid"], "households": [H], "count": 2, "new_risks": ["schooling"],
        "reason": "收入高于监测范围", "purpose": None,
    } | extra  # fmt: skip
    return templates.render(
        name,
        language=language,
        zone=ZONE,
        household=H,
        names=names,
        **fields,  # type: ignore[arg-type]
    )


LATIN = {H: "Zhang San"}  # a name in the GSM-7 alphabet: an English SMS stays GSM-7
NAME_OF = {"zh-CN": NAMED, "en": LATIN}
LABEL = {"zh-CN": "张三户", "en": "the household of Zhang San"}


def test_a_new_case_names_the_family_in_both_languages() -> None:
    assert _render("case_opened", "zh-CN", NAMED) == (
        "【防返贫】农户张三户报因病风险，请12月10日前入户核实，12月10日前完成认定"
    )
    assert _render("case_opened", "en", LATIN) == (
        "Holdline: the household of Zhang San reports illness risk. Visit by 2026-12-10; finish "
        "identification by 2026-12-10."
    )


def test_an_english_message_naming_a_chinese_name_would_be_ucs2_so_it_names_the_id() -> None:
    """One Chinese character makes the whole SMS UCS-2: 70 characters, not 160. An English
    message that would not fit names the household by its id (GSM-7) instead."""
    named = "Holdline: the household of 张三 reports illness risk."
    assert templates.sms_units(named) == (len(named), templates.UCS2_SEGMENT)
    assert templates.sms_units("x[1]") == (6, templates.GSM_SEGMENT)  # "[", "]" take two
    assert _render("case_opened", "en", NAMED) == (
        f"Holdline: household {H} reports illness risk. Visit by 2026-12-10; finish "
        "identification by 2026-12-10."
    )
    # the digest is short enough for the name even as UCS-2
    text = _render("digest", "en", NAMED, households=[H, "hh-2"])
    assert text == "Holdline: 2 alerts (the household of 张三 etc.); handle by 2026-12-10."
    assert templates.fits_one_segment(text)


@pytest.mark.parametrize("language", sorted(templates.TEMPLATES))
@pytest.mark.parametrize("name", sorted(templates.TEMPLATES["zh-CN"]))
def test_a_message_fits_the_segment_of_the_encoding_it_needs(language: str, name: str) -> None:
    for names in (NAMED, LATIN, {H: "Łukasz Żółć"}, None):
        text = _render(name, language, names)
        used, size = templates.sms_units(text)
        assert used <= size and size == (160 if text.isascii() else 70), (size, text)


def test_without_a_name_the_household_id_stays() -> None:
    assert _render("case_opened", "zh-CN", None) == (
        f"【防返贫】农户{H}报因病风险，请12月10日前入户核实，12月10日前完成认定"
    )
    assert _render("plan_created", "en", {}).startswith(f"Holdline: plan for household {H} (")


@pytest.mark.parametrize("language", sorted(templates.TEMPLATES))
@pytest.mark.parametrize("name", sorted(templates.TEMPLATES["zh-CN"]))
def test_every_message_names_the_family_and_leaves_the_id_out(language: str, name: str) -> None:
    text = _render(name, language, NAME_OF[language])
    assert H not in text and "hh-" not in text, text
    assert LABEL[language] in text, text


@pytest.mark.parametrize("dated", [True, False])
def test_a_long_name_is_cut_to_keep_one_sms_segment(dated: bool) -> None:
    long_names = {H: "欧阳" + "长" * 98, H + "b": "Ouyang Changming Xiaoxiao Ma"}
    for language, table in templates.TEMPLATES.items():
        for name in table:
            for household in long_names:
                text = templates.render(
                    name, language=language, zone=ZONE, household=household,
                    deadline=DEADLINE if dated else None, visit_due=DEADLINE if dated else None,
                    risks=["business_failure", "unstable_employment", "illness"],
                    measures=["dangerous_house_renovation", "x"], households=[household, H],
                    count=20, new_risks=["business_failure", "unstable_employment"],
                    reason="人均纯收入高于监测范围且无刚性支出风险，不符合认定条件" * 4,
                    names=long_names,
                )  # fmt: skip
                assert templates.fits_one_segment(text), (language, name, text)


def test_a_digest_names_its_first_household() -> None:
    names = {H: "张三", "hh-2": "李四"}
    text = _render("digest", "zh-CN", names, households=[H, "hh-2"])
    assert text == "【防返贫汇总】2条提醒：农户张三户等，请12月10日前处理"
    en = _render("digest", "en", names, households=[H, "hh-2"])
    assert en == "Holdline: 2 alerts (the household of 张三 etc.); handle by 2026-12-10."


def test_an_id_or_phone_typed_as_a_name_is_masked() -> None:
    assert _render("identified", "zh-CN", {H: "13812345678"}) == (
        "【防返贫】农户138****5678户已认定为监测对象（因病），请尽快告知农户"
    )
    # masked before it is cut: cut first, the ID's first 11 digits would show, unmasked
    text = _render("identified", "zh-CN", {H: "11010119900307123X"})
    assert "19900307" not in text and text.startswith("【防返贫】农户110101*****…户")


phones = st.from_regex(r"1[3-9]\d{9}", fullmatch=True)
ids = st.from_regex(r"[1-6]\d{16}[\dX]", fullmatch=True)


@given(
    before=st.text(max_size=4),
    secret=st.one_of(phones, ids),
    template=st.sampled_from(sorted(templates.TEMPLATES["zh-CN"])),
    language=st.sampled_from(sorted(templates.TEMPLATES)),
)
def test_no_name_ever_carries_an_id_or_phone_into_a_message(
    before: str, secret: str, template: str, language: str
) -> None:
    text = _render(template, language, {H: before + secret})
    assert secret not in text and secret[:11] not in text, text
