"""Identity checks (rules §9) and masking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.identity import (
    check_character,
    is_region_prefix,
    mask_phone,
    mask_resident_id,
    phone_problem,
    region_problem,
    resident_id_problem,
)

first17 = st.builds(
    lambda region, y, m, d, seq: f"{region}{y}{m:02d}{d:02d}{seq:03d}",
    st.sampled_from(["110105", "530102", "350526"]),
    st.integers(1930, 2020),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 999),
)


def test_known_valid_id() -> None:
    assert resident_id_problem("11010519491231002X") is None


@given(first17)
def test_generated_ids_with_their_check_character_are_valid(body: str) -> None:
    assert resident_id_problem(body + check_character(body)) is None


@given(first17, st.integers(0, 16), st.integers(1, 9))
def test_changing_one_digit_is_caught(body: str, position: int, bump: int) -> None:
    good = body + check_character(body)
    digit = (int(good[position]) + bump) % 10
    bad = good[:position] + str(digit) + good[position + 1 :]
    assert resident_id_problem(bad) is not None


def test_placeholders_and_shapes_are_refused() -> None:
    assert "placeholder" in (resident_id_problem("999999199001010011") or "")
    assert resident_id_problem("11010519491231002") is not None
    assert resident_id_problem("110105194913310021") == "has an impossible birth date"


def test_phone_and_region() -> None:
    assert phone_problem("13800138000") is None
    assert phone_problem("23800138000") is not None
    assert phone_problem("1380013800") is not None
    assert region_problem("530102001001") is None
    assert region_problem("5301020010") is not None


@given(first17)
def test_masks_hide_the_middle(body: str) -> None:
    rid = body + check_character(body)
    masked = mask_resident_id(rid)
    assert masked[:6] == rid[:6] and masked[-1] == rid[-1] and rid[6:17] not in masked
    assert mask_phone("13812345678") == "138****5678"


def test_only_ascii_digits_make_a_resident_id() -> None:
    """rules §9: other scripts' digits are not GB 11643 digits, even if Python calls them digits."""
    arabic = "٥٣٠١٠٢١٩٨٠٠١٠١١٢٣٤"  # the same digits, Arabic-Indic
    assert resident_id_problem(arabic) == "must be 17 digits followed by a digit or X"


FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def test_only_ascii_digits_make_a_region_code_or_a_phone() -> None:
    """rules §9.3, §9.4: Python's \\d and str.isdigit take other scripts' digits; a region code
    of fullwidth digits would be stored and then match no jurisdiction."""
    for script in (FULLWIDTH, ARABIC_INDIC):
        assert region_problem("530102001001".translate(script)) is not None
        assert region_problem("530102001" + "001".translate(script)) is not None
        assert phone_problem("1" + "3800138000".translate(script)) is not None
        assert not is_region_prefix("530102".translate(script))
    assert region_problem("530102001001\n") is not None, "a trailing newline is not a digit"
    assert phone_problem("13800138000\n") is not None
    assert is_region_prefix("53") and is_region_prefix("530102001001")
    assert not is_region_prefix("") and not is_region_prefix("5301020010011")
