"""A household a department record names without a village is held by the county of the
person's resident ID until the county places it (rules §9.1, §9.2, §9.4)."""

from __future__ import annotations

import pytest

from services.notify import routing
from services.risk.workflow import (
    CaseState,
    RoleError,
    TransitionError,
    check_placement,
    holding_region,
)
from shared.auth import Official, outside_message
from shared.events import CaseStepCompleted
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


def test_the_county_places_a_case_in_one_of_its_villages() -> None:
    state = CaseState()
    check_placement(state, "county", "530102000000", "530102001001")
    check_placement(state, "admin", "530102001001", "530102002003")  # a correction
    check_placement(state, "admin", "", "110101001001")  # held nowhere: only an admin sees it
    with pytest.raises(RoleError, match=r"^role: township may not assign_village; needs county"):
        check_placement(state, "township", "530102000000", "530102001001")
    with pytest.raises(TransitionError, match=r"^village_code: 530103001001 is not in 530102"):
        check_placement(state, "admin", "530102000000", "530103001001")
    with pytest.raises(TransitionError, match=r"^village_code: the case is already in"):
        check_placement(state, "county", "530102001001", "530102001001")
    closed = CaseState(stage="rejected")
    with pytest.raises(TransitionError, match=r"^case_id: the case is closed \(rejected\)"):
        check_placement(closed, "county", "530102000000", "530102001001")


def test_the_region_holding_a_case() -> None:
    assert holding_region("530102000000") == "530102"
    assert holding_region("530102001001") == "530102"
    assert holding_region("530100000000") == "5301"  # an ID registered at the city
    assert holding_region("530000000000") == "53"
    assert holding_region("") == ""


def _step(step: str, next_steps: list[str]) -> CaseStepCompleted:
    return CaseStepCompleted(
        case_id="c", village_code="530102001001", step=step, actor="k", role="county",
        next_steps=next_steps,
    )  # fmt: skip


def test_a_placed_case_goes_to_its_new_village() -> None:
    """rules §9.4, §4.2: whatever the case waits for, the village it now belongs to hears it."""
    for waiting in ([], ["start_home_verification"], ["approve_township_review"]):
        placed = _step("village_assigned", waiting)
        level = routing.level_of("CaseStepCompleted", placed)
        assert level == "village_assigned"
        route = routing.route_for("CaseStepCompleted", level)
        assert route is not None
        assert (route.targets, route.template) == (("village",), "village_assigned")
    # the other steps route as before
    assert (
        routing.step_level(_step("complete_data_comparison", ["start_home_verification"])) is None
    )
    assert routing.step_level(_step("x", ["approve_county"])) == "county"
