"""Responsible-cadre assignment (rules §6.8-6.9), visit schedule (§6.10-6.11), measure lifecycle."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.assistance.assignment import CadreLoad, assign_all, choose_cadre, township_of
from services.assistance.catalogue import CatalogueError, load_catalogue, parse_catalogue
from services.assistance.schedule import latest_missed, must_visit_flags, overdue_levels, period
from services.assistance.workflow import end_on_elimination, roll_back, transition_problem
from shared.events import Member

CAPS: dict[str, int | None] = {
    "county_leader": 3, "section": 2, "general": 1, "township": None, "village": None,
}  # fmt: skip
TOWN = "530102001"
VILLAGE = TOWN + "001"


def cadre(
    cid: str, rank: str, load: int = 0, town: str = TOWN, villages: tuple[str, ...] = ()
) -> CadreLoad:
    return CadreLoad(cid, rank, town, villages, load)


def test_township_is_the_first_nine_digits() -> None:
    assert township_of("530102001001") == "530102001"


@pytest.mark.parametrize(
    ("cadres", "expected"),
    [
        ([cadre("a", "general"), cadre("b", "village")], "a"),  # capped ranks first (rules §6.9)
        ([cadre("a", "general", 1), cadre("b", "village")], "b"),  # general is full at 1
        ([cadre("a", "section", 1), cadre("b", "county_leader", 0)], "b"),  # least loaded
        ([cadre("a", "section", 1), cadre("b", "county_leader", 1)], "b"),  # tie: higher rank
        ([cadre("b", "section"), cadre("a", "section")], "a"),  # tie: cadre id
        ([cadre("a", "county_leader", 3), cadre("b", "section", 2)], None),  # all full
        ([cadre("a", "general", town="530102002")], None),  # other township (rules §6.8)
        ([cadre("a", "township", 0), cadre("b", "village", 5, villages=(VILLAGE,))], "b"),
    ],
)
def test_rules_6_8_6_9_choice(cadres: list[CadreLoad], expected: str | None) -> None:
    chosen = choose_cadre(cadres=cadres, village_code=VILLAGE, capacities=CAPS)
    assert (chosen.cadre_id if chosen else None) == expected


def test_rules_6_9_capacities_are_configurable() -> None:
    caps = CAPS | {"general": 2}
    chosen = choose_cadre(cadres=[cadre("a", "general", 1)], village_code=VILLAGE, capacities=caps)
    assert chosen is not None and chosen.cadre_id == "a"


def test_reassignment_excludes_the_leaver() -> None:
    cadres = [cadre("leaver", "county_leader"), cadre("b", "general"), cadre("c", "village")]
    plan = assign_all(
        households=[("h1", VILLAGE), ("h2", VILLAGE)], cadres=cadres, capacities=CAPS,
        exclude=frozenset({"leaver"}),
    )  # fmt: skip
    assert plan == {"h1": "b", "h2": "c"}


ranks = st.sampled_from(["county_leader", "section", "general", "township", "village"])
rosters = st.lists(
    st.builds(lambda i, r, t, load: cadre(f"c{i}", r, load, town=f"53010200{t}"),
              st.integers(0, 30), ranks, st.integers(1, 2), st.integers(0, 3)),
    max_size=8, unique_by=lambda c: c.cadre_id,
)  # fmt: skip
homes = st.lists(
    st.tuples(st.text("abcdef", min_size=1, max_size=4), st.sampled_from(["1", "2"])),
    max_size=20, unique_by=lambda h: h[0],
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(cadres=rosters, homes=homes)
def test_property_capacity_never_exceeded_and_deterministic(
    cadres: list[CadreLoad], homes: list[tuple[str, str]]
) -> None:
    """rules §6.8-6.9: same township, never over capacity, same answer whatever the input order."""
    households = [(h, f"53010200{t}001") for h, t in homes]
    plan = assign_all(households=households, cadres=cadres, capacities=CAPS)
    again = assign_all(households=list(reversed(households)), cadres=cadres[::-1], capacities=CAPS)
    assert plan == again
    by_id = {c.cadre_id: c for c in cadres}
    added: dict[str, int] = {}
    for household, village in households:
        chosen = plan[household]
        if chosen is None:
            continue
        assert by_id[chosen].township_code == township_of(village)
        added[chosen] = added.get(chosen, 0) + 1
    for cid, extra in added.items():
        cap = CAPS[by_id[cid].rank]
        assert cap is None or by_id[cid].load + extra <= cap


@pytest.mark.parametrize(
    ("due", "today", "missed", "levels"),
    [
        (date(2026, 3, 31), date(2026, 3, 31), None, []),  # due today is not late
        (date(2026, 3, 31), date(2026, 4, 1), date(2026, 3, 31), ["cadre"]),
        (date(2026, 3, 31), date(2026, 4, 8), date(2026, 3, 31), ["cadre", "township"]),
        (date(2026, 3, 31), date(2026, 5, 2), date(2026, 4, 30), ["cadre"]),  # next month
    ],
)
def test_rules_6_10_missed_visits_warn_cadre_then_township(
    due: date, today: date, missed: date | None, levels: list[str]
) -> None:
    assert latest_missed(due, today, interval_days=30) == missed
    assert (overdue_levels(missed, today, escalation_days=7) if missed else []) == levels


def test_period_is_the_month_of_the_due_date() -> None:
    assert period(date(2026, 4, 30)) == "2026-04"


def _m(**facts: object) -> Member:
    return Member(person_id_hash="x", person_id_masked="x", age=facts.pop("age", 40), **facts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"per_capita_income": 4000}, "low_income"),
        ({"per_capita_income": 7000, "previous_income": 8000}, "falling_income"),
        ({"members": [_m(chronic_illness=True)]}, "serious_or_chronic_illness"),
        ({"members": [_m(labour_capacity="none")], "measure_codes": ["extreme_poverty_support"]},
         "single_extreme_poverty"),
        ({"measure_codes": ["minimum_living_allowance"]}, "minimum_living_allowance"),
        ({"members": [_m(disability_grade=1)]}, "new_or_severe_disability"),
        ({"risk_types": ["disability"]}, "new_or_severe_disability"),
        ({"members": [_m(schooling_stage="senior"), _m(schooling_stage="vocational")]},
         "several_children_in_non_compulsory_schooling"),
        ({"risk_types": ["unstable_employment"]}, "unstable_migrant_work"),
        ({"risk_types": ["disaster"]}, "disaster_or_upheaval"),
    ],
)  # fmt: skip
def test_rules_6_11_must_visit_flags(kwargs: dict[str, object], flag: str) -> None:
    base: dict[str, object] = {
        "risk_types": [], "members": [_m()], "measure_codes": [], "per_capita_income": 9000,
        "previous_income": None, "low_income_yuan": 6000,
    }  # fmt: skip
    assert must_visit_flags(**(base | kwargs)) == [flag]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [
        ("planned", "in_progress", True), ("planned", "cancelled", True),
        ("planned", "completed", False), ("in_progress", "completed", True),
        ("in_progress", "cancelled", True), ("completed", "cancelled", False),
        ("cancelled", "in_progress", False), ("planned", "done", False),
    ],
)  # fmt: skip
def test_measure_lifecycle(current: str, target: str, ok: bool) -> None:
    assert (transition_problem(current, target) is None) is ok


def test_rules_6_7_elimination_spares_measures_that_outlive_it() -> None:
    assert end_on_elimination("in_progress", outlives=True) is None
    assert end_on_elimination("in_progress", outlives=False) == "completed"
    assert end_on_elimination("planned", outlives=False) == "cancelled"
    assert end_on_elimination("completed", outlives=False) is None


def test_rules_5_4_rollback_keeps_given_help_as_temporary_assistance() -> None:
    assert roll_back("planned") == ("cancelled", None)
    assert roll_back("in_progress") == ("completed", "temporary_assistance")
    assert roll_back("cancelled") is None


def test_catalogue_has_every_rules_6_measure_and_a_version() -> None:
    cat = load_catalogue()
    assert cat.version
    assert len(cat.measures) == 23
    assert {m.code for m in cat.measures.values() if m.outlives_elimination} == {
        "microcredit", "public_welfare_job", "education_aid",
    }  # fmt: skip
    pwj = cat.measures["public_welfare_job"]
    assert (pwj.age_min, pwj.age_max) == (16, 69)
    assert cat.measures["yulu_plan_subsidy"].schooling_stages == {"vocational", "higher_vocational"}
    for risk in ("illness", "schooling", "disability", "housing_unsafe", "water_unsafe",
                 "disaster", "accident", "business_failure", "unstable_employment"):  # fmt: skip
        assert cat.addressing(risk), risk


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"measures": []}, "version"),
        ({"version": "1", "measures": [{"code": "x", "category": "magic", "scope": "household",
                                        "agency": "a"}]}, "measures.x.category"),
        ({"version": "1", "measures": [], "no_labour_substitutes": {"illness": ["nope"]}},
         "no_labour_substitutes.illness"),
    ],
)  # fmt: skip
def test_catalogue_errors_name_the_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(CatalogueError, match=field):
        parse_catalogue(doc)
