"""A household a department record names without a village is held by the county of the
person's resident ID until the county places it (rules §9.1, §9.2, §9.4)."""

from __future__ import annotations

import pytest

from shared.auth import Official, outside_message
from shared.identity import county_placeholder, is_unplaced, village_problem


@pytest.mark.parametrize(
    ("masked", "held"),
    [
        ("530102***********1", "530102000000"),  # rules §9.1: the region of registration
        ("11010119900307123X", "110101000000"),  # an unmasked ID reads the same
        ("530100***********X", "530100000000"),  # registered at the city: held by the city
        ("999999***********1", ""),  # rules §9.2: a placeholder names no region
        ("000000***********1", ""),
        ("123456***********1", ""),
        ("001234***********1", ""),  # no province is 00
        ("53010***********1", ""),  # five digits, then a mask
        ("５３０１０２***********1", ""),  # fullwidth digits name no region (rules §9 reading)
        ("", ""),
    ],
)
def test_a_household_without_village_is_held_by_its_county(masked: str, held: str) -> None:
    assert county_placeholder(masked) == held


def test_what_counts_as_placed() -> None:
    assert is_unplaced("") and is_unplaced("530102000000") and is_unplaced("530102001000")
    assert not is_unplaced("530102001001")
    assert village_problem("530102001001") is None
    for code in ("530102000000", "530102001000", "530102000001"):
        assert "not 000" in (village_problem(code) or ""), code
    for code in ("53010200100", "5301020010011", "53010200100X", ""):
        assert village_problem(code) == "must be a 12-digit village code", code


def test_a_refusal_says_the_case_has_no_village_yet() -> None:
    township = Official("t-1", "township", "530102001")
    assert outside_message(township, "530102000000") == (
        "village_code: no village yet (530102000000); county 530102 holds it until it places "
        "it, outside your jurisdiction 530102001"
    )
    county = Official("k-1", "county", "530102")
    assert outside_message(county, "").startswith("village_code: no village yet, and no county")
    assert "an admin can place it" in outside_message(county, "")
    # a placed village, or a region prefix that is not a 12-digit code, reads as before
    assert outside_message(township, "530102002001") == (
        "village_code: 530102002001 is outside your jurisdiction 530102001"
    )
    assert outside_message(county, "530000", "region") == (
        "region: 530000 is outside your jurisdiction 530102"
    )
