"""Region codes name a place (rules §9.2, §9.4): a placeholder region or a province part that is
no province-level division is refused as a region code, a village code and a jurisdiction."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.auth import AuthError, mint_token
from shared.clock import SystemClock
from shared.identity import (
    PROVINCES,
    county_placeholder,
    is_region_prefix,
    region_problem,
    village_problem,
)

# rules §9.4: the province-level divisions, as the statistical division codes number them
EXPECTED = {
    *range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55),
    *range(61, 66), 71, 81, 82,
}  # fmt: skip


def test_the_provinces_are_chinas_province_level_divisions() -> None:
    assert {int(p) for p in PROVINCES} == EXPECTED and len(PROVINCES) == 34


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("999999001001", "region 999999 is a placeholder"),
        ("000000001001", "placeholder"),
        ("123456001001", "placeholder"),
        ("999901001001", "province 99"),
        ("830102001001", "province 83"),
        ("101010001001", "province 10"),
        ("001234001001", "province 00"),
    ],
)
def test_a_code_that_names_no_place_is_refused(code: str, words: str) -> None:
    for problem in (region_problem(code), village_problem(code)):
        assert problem is not None and words in problem and "rules §9" in problem


@pytest.mark.parametrize("code", ["530102001001", "110105001001", "820001001001", "441900003001"])
def test_real_codes_are_accepted(code: str) -> None:
    assert region_problem(code) is None and village_problem(code) is None


def test_a_jurisdiction_is_a_prefix_some_real_code_starts_with() -> None:
    for good in ("1", "5", "8", "53", "530102", "530102001", "530102001001", "82"):
        assert is_region_prefix(good), good
    for bad in ("0", "9", "00", "99", "83", "10", "999999", "123456", "999999001"):
        assert not is_region_prefix(bad), bad
    with pytest.raises(AuthError):
        mint_token(subject="x", role="county", jurisdiction="999999", secret="s" * 32,
                   clock=SystemClock(), ttl=timedelta(hours=1))  # fmt: skip


def test_an_id_registered_in_no_province_is_held_by_no_county() -> None:
    """rules §9.4: a case is held by the county of the person's ID only when it is a county."""
    assert county_placeholder("530102***********1") == "530102000000"
    assert county_placeholder("830000***********1") == ""  # a residence permit's 83
    assert county_placeholder("999999***********1") == ""
