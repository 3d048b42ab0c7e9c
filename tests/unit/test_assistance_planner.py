"""Plan builder and consistency checker (rules §6): table-driven cases and a property."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.assistance.catalogue import load_catalogue
from services.assistance.checker import check_plan, person_problem
from services.assistance.planner import (
    RISK_ORDER,
    PlannedMeasure,
    build_plan,
    labour_class,
    ordered,
    provisional_measures,
)
from shared.events import Member

CAT = load_catalogue()
STAGES = (None, "preschool", "primary", "junior", "senior", "vocational", "higher")


def person(n: int, age: int = 40, labour: str = "full", **facts: object) -> Member:
    return Member(
        person_id_hash=f"h{n}",
        person_id_masked=f"5301***{n}",
        age=age,
        labour_capacity=labour,  # type: ignore[arg-type]
        **facts,  # type: ignore[arg-type]
    )


WORKER = person(1, 40, "full")
PARTIAL = person(2, 58, "partial")
ELDER = person(3, 78, "none")
SICK = person(4, 50, "none", serious_illness=True)
DISABLED = person(5, 30, "none", disability_grade=2)
DROPOUT = person(6, 13, "none")
VOCATIONAL = person(7, 17, "none", schooling_stage="vocational")
SENIOR = person(8, 16, "none", schooling_stage="senior")


def plan_of(risks: list[str], members: list[Member]) -> list[PlannedMeasure]:
    return build_plan(catalogue=CAT, risk_types=risks, members=members)


def codes(plan: list[PlannedMeasure]) -> list[tuple[str, str | None]]:
    return [m.key for m in plan]


# every cause (rules §6 table), with the labour class it meets and what must be chosen
CASES = [
    ("illness, able household", ["illness"], [WORKER, SICK],
     [("employment_placement", "h1"), ("medical_aid", "h4")]),
    ("disability, able household", ["disability"], [WORKER, DISABLED],
     [("employment_placement", "h1"), ("disability_subsidy", "h5")]),
    ("schooling dropout", ["schooling"], [WORKER, DROPOUT],
     [("employment_placement", "h1"), ("compulsory_education_guarantee", "h6")]),
    ("schooling vocational: Rain-and-Dew is itself development", ["schooling"],
     [WORKER, VOCATIONAL], [("yulu_plan_subsidy", "h7")]),
    ("schooling senior gets education aid", ["schooling"], [WORKER, SENIOR],
     [("employment_placement", "h1"), ("education_aid", "h8")]),
    ("housing", ["housing_unsafe"], [WORKER],
     [("employment_placement", "h1"), ("dangerous_house_renovation", None)]),
    ("water", ["water_unsafe"], [WORKER],
     [("employment_placement", "h1"), ("drinking_water_project", None)]),
    ("disaster: relief then development", ["disaster"], [WORKER],
     [("employment_placement", "h1"), ("temporary_assistance", None)]),
    ("accident: relief then development", ["accident"], [WORKER],
     [("employment_placement", "h1"), ("temporary_assistance", None)]),
    ("business failure: one job measure answers both", ["business_failure"], [WORKER],
     [("employment_placement", "h1")]),
    ("unstable employment", ["unstable_employment"], [WORKER, ELDER],
     [("employment_placement", "h1")]),
    ("lack of labour, one person alone", ["lack_of_labour"], [ELDER],
     [("extreme_poverty_support", "h3")]),
    ("lack of labour, several", ["lack_of_labour"], [ELDER, SICK],
     [("minimum_living_allowance", None)]),
    ("other", ["other"], [WORKER],
     [("employment_placement", "h1"), ("temporary_assistance", None)]),
    ("no labour: social security, no development", ["illness"], [ELDER, SICK],
     [("medical_aid", "h4"), ("minimum_living_allowance", None)]),
    ("no labour, business failure: social security stands in", ["business_failure"],
     [ELDER, SICK], [("minimum_living_allowance", None)]),
    ("partial capacity: development and social security", ["illness"], [PARTIAL, SICK],
     [("employment_placement", "h2"), ("medical_aid", "h4")]),
    ("public-welfare job for a 66-year-old (employment placement stops at 64)",
     ["unstable_employment"], [person(9, 66, "full")], [("public_welfare_job", "h9")]),
    ("nobody aged 16-69 can work: microcredit, then industry support",
     ["business_failure"], [person(9, 72, "full")], [("microcredit", None)]),
    ("unknown members: household measures only", ["illness", "housing_unsafe"], [],
     [("dangerous_house_renovation", None), ("medical_aid", None)]),
    ("combined causes get combined measures", ["illness", "housing_unsafe", "water_unsafe"],
     [WORKER, SICK], [("employment_placement", "h1"), ("dangerous_house_renovation", None),
                      ("drinking_water_project", None), ("medical_aid", "h4")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("risks", "members", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rules_6_cause_and_labour_table(
    risks: list[str], members: list[Member], expected: list[tuple[str, str | None]]
) -> None:
    plan = plan_of(risks, members)
    assert codes(plan) == expected
    assert all(m.reason for m in plan)
    assert check_plan(catalogue=CAT, risk_types=risks, members=members, measures=plan) == []


@pytest.mark.parametrize(
    ("age", "allowed"), [(15, False), (16, True), (64, True), (65, True), (69, True), (70, False)]
)
def test_rules_6_6_public_welfare_job_only_16_to_69(age: int, allowed: bool) -> None:
    plan = [PlannedMeasure("public_welfare_job", "development", "hand-picked", "h1")]
    members = [person(1, age, "full")]
    problems = check_plan(catalogue=CAT, risk_types=[], members=members, measures=plan)
    assert any("public_welfare_job: age" in v.problem for v in problems) is not allowed


@pytest.mark.parametrize("stage", STAGES)
def test_rules_6_6_rain_and_dew_only_for_vocational_students(stage: str | None) -> None:
    members = [WORKER, person(7, 17, "none", schooling_stage=stage)]
    plan = [PlannedMeasure("yulu_plan_subsidy", "development", "hand-picked", "h7")]
    problems = check_plan(catalogue=CAT, risk_types=["schooling"], members=members, measures=plan)
    assert any("yulu_plan_subsidy" in v.problem for v in problems) is (stage != "vocational")


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([WORKER, ELDER], "full"),
        ([PARTIAL, ELDER], "partial"),
        ([ELDER, SICK], "none"),
        ([], "unknown"),
    ],
)
def test_labour_class(members: list[Member], expected: str) -> None:
    assert labour_class(members) == expected


def test_rules_6_3_able_household_never_social_security_alone() -> None:
    plan = [PlannedMeasure("medical_aid", "social_security", "hand edit", "h4")]
    problems = check_plan(
        catalogue=CAT, risk_types=["illness"], members=[WORKER, SICK], measures=plan
    )
    assert [v.rule for v in problems] == ["rules §6.3"]


def test_rules_6_3_development_comes_first() -> None:
    plan = [
        PlannedMeasure("medical_aid", "social_security", "x", "h4"),
        PlannedMeasure("employment_placement", "development", "x", "h1"),
    ]
    problems = check_plan(
        catalogue=CAT, risk_types=["illness"], members=[WORKER, SICK], measures=plan
    )
    assert [v.problem for v in problems] == ["development measures must come first"]


def test_hand_edited_plan_reports_each_violation() -> None:
    plan = [
        PlannedMeasure("employment_placement", "development", "x", "h1"),
        PlannedMeasure("employment_placement", "development", "x", "h1"),
        PlannedMeasure("relocation", "guarantee_fix", "", None),
        PlannedMeasure("golden_parachute", "development", "x", None),
        PlannedMeasure("medical_aid", "development", "x", "nobody"),
    ]
    problems = check_plan(
        catalogue=CAT, risk_types=["water_unsafe"], members=[WORKER], measures=plan
    )
    found = {(v.rule, v.measure) for v in problems}
    assert ("rules §6.2 fill the gap", 1) in found  # assigned twice
    assert ("rules §6 explainable", 2) in found  # no reason
    assert ("rules §6.2 fill the gap", 2) in found  # relocation answers no cause here
    assert ("catalogue", 3) in found
    assert ("catalogue", 4) in found  # wrong category
    assert ("rules §6.1", 4) in found  # a stranger
    assert ("rules §6 cause table", None) in found  # water has no measure


def test_rules_6_2_nothing_active_is_assigned_again() -> None:
    first = plan_of(["illness"], [WORKER, SICK])
    again = build_plan(
        catalogue=CAT, risk_types=["illness", "housing_unsafe"], members=[WORKER, SICK],
        active=first,
    )  # fmt: skip
    assert codes(again) == [("dangerous_house_renovation", None)]


def test_rules_5_2_green_channel_measures_count_towards_the_plan() -> None:
    provisional = provisional_measures(catalogue=CAT, codes=["temporary_assistance", "medical_aid"])
    assert [m.category for m in provisional] == ["emergency", "social_security"]
    added = build_plan(
        catalogue=CAT,
        risk_types=["illness", "accident"],
        members=[WORKER, SICK],
        active=provisional,
    )
    assert codes(added) == [("employment_placement", "h1")]
    whole = ordered([*provisional, *added], "full")
    assert (
        check_plan(
            catalogue=CAT,
            risk_types=["illness", "accident"],
            members=[WORKER, SICK],
            measures=whole,
        )
        == []
    )


def test_plan_is_the_same_whatever_the_order_of_causes_and_members() -> None:
    risks = ["water_unsafe", "illness", "schooling"]
    members = [WORKER, SICK, DROPOUT]
    assert plan_of(risks, members) == plan_of(list(reversed(risks)), list(reversed(members)))


members_st = st.builds(
    lambda i, age, labour, chronic, serious, grade, stage: person(
        i,
        age,
        labour,
        chronic_illness=chronic,
        serious_illness=serious,
        disability_grade=grade,
        schooling_stage=stage,
    ),
    st.integers(0, 10_000),
    st.integers(0, 100),
    st.sampled_from(["full", "partial", "none"]),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), st.integers(1, 4)),
    st.sampled_from(STAGES),
)
households_st = st.lists(members_st, max_size=7, unique_by=lambda m: m.person_id_hash)
risks_st = st.lists(st.sampled_from([*RISK_ORDER, "volcano"]), min_size=1, max_size=5)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(risks=risks_st, members=households_st, green=st.booleans())
def test_property_every_generated_plan_passes_the_checker(
    risks: list[str], members: list[Member], green: bool
) -> None:
    """rules §6: whatever the household, the built plan (after any green channel) is consistent."""
    active = (
        provisional_measures(catalogue=CAT, codes=["temporary_assistance", "medical_aid"])
        if green
        else []
    )
    added = build_plan(catalogue=CAT, risk_types=risks, members=members, active=active)
    whole = ordered([*active, *added], labour_class(members))
    assert check_plan(catalogue=CAT, risk_types=risks, members=members, measures=whole) == []
    assert len({m.key for m in whole}) == len(whole)
    # and building again on top of it adds nothing: the gap is filled
    assert build_plan(catalogue=CAT, risk_types=risks, members=members, active=whole) == []


@settings(max_examples=100, deadline=None)
@given(risks=risks_st, members=households_st)
def test_property_checker_catches_a_dropped_measure(
    risks: list[str], members: list[Member]
) -> None:
    """A plan the checker faults is always one the builder knows how to complete."""
    plan = plan_of(risks, members)
    for i in range(len(plan)):
        partial = plan[:i] + plan[i + 1 :]
        problems = check_plan(catalogue=CAT, risk_types=risks, members=members, measures=partial)
        refill = build_plan(catalogue=CAT, risk_types=risks, members=members, active=partial)
        if problems:
            assert refill, problems
            fixed = ordered([*partial, *refill], labour_class(members))
            assert (
                check_plan(catalogue=CAT, risk_types=risks, members=members, measures=fixed) == []
            )


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (15, [("minimum_living_allowance", None)]),  # a minor is not labour: no job measure
        (16, [("employment_placement", "h9")]),
        (64, [("employment_placement", "h9")]),
        (65, [("public_welfare_job", "h9")]),  # placement ends at 64, public-welfare jobs at 69
        (69, [("public_welfare_job", "h9")]),
        (70, [("microcredit", None)]),
    ],
)
def test_rules_6_6_age_rules_pick_the_job_measure(
    age: int, expected: list[tuple[str, str | None]]
) -> None:
    labour = "none" if age < 16 else "full"
    members = [person(9, age, labour)]
    plan = plan_of(["unstable_employment"], members)
    assert codes(plan)[: len(expected)] == expected
    assert (
        check_plan(
            catalogue=CAT, risk_types=["unstable_employment"], members=members, measures=plan
        )
        == []
    )


def test_rules_6_2_a_measure_for_a_cause_the_household_does_not_have_is_flagged() -> None:
    """Rain-and-Dew is a development measure, but for schooling (rules §6.6): in an able
    household with no student and no schooling risk it answers nothing, named or not."""
    members = [WORKER, SICK]
    base = plan_of(["illness"], members)
    for person_id in (None, "h1"):
        yulu = PlannedMeasure("yulu_plan_subsidy", "development", "雨露", person_id)
        problems = check_plan(
            catalogue=CAT, risk_types=["illness"], members=members, measures=[*base, yulu]
        )
        found = {(v.rule, v.problem) for v in problems}
        assert ("rules §6.2 fill the gap", "yulu_plan_subsidy answers no cause") in found
        named = ("rules §6.1", "yulu_plan_subsidy is for a person and names none") in found
        assert named is (person_id is None)
        if person_id:  # the worker is no vocational student
            assert any(v.rule == "rules §6.6 eligibility" for v in problems)


def test_rules_6_3_development_for_work_needs_no_cause_of_its_own() -> None:
    """The labour rule asks for development measures for work (industry support, start-up
    support): they stay justified without a cause of their own."""
    plan = [
        PlannedMeasure("industry_support", "development", "x"),
        PlannedMeasure("business_startup_support", "development", "x", "h1"),
        PlannedMeasure("medical_aid", "social_security", "x", "h4"),
    ]
    assert (
        check_plan(catalogue=CAT, risk_types=["illness"], members=[WORKER, SICK], measures=plan)
        == []
    )


@pytest.mark.parametrize(
    ("code", "person_id", "members", "problem"),
    [
        ("yulu_plan_subsidy", None, [WORKER], "yulu_plan_subsidy is for a person"),
        ("yulu_plan_subsidy", "nobody", [WORKER], "is not one of the household's members"),
        ("medical_aid", "h4", [], "does not know the household's members yet"),
        ("microcredit", "h1", [WORKER], "microcredit is for the whole household"),
        ("yulu_plan_subsidy", "h7", [WORKER, VOCATIONAL], None),
        ("microcredit", None, [WORKER], None),
    ],
)
def test_rules_6_1_a_hand_added_measure_names_the_right_person(
    code: str, person_id: str | None, members: list[Member], problem: str | None
) -> None:
    found = person_problem(CAT.measures[code], person_id, members)
    assert (found is None) if problem is None else (found is not None and problem in found)
