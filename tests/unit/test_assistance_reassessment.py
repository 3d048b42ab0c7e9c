"""What a monitoring object's plan gains from a reassessment (rules §4 channel 4, §5.2, §6)."""

from __future__ import annotations

import pytest

from services.assistance.catalogue import load_catalogue
from services.assistance.checker import check_plan
from services.assistance.planner import PlannedMeasure, build_plan, reassessment_measures
from shared.events import Member

CAT = load_catalogue()


def person(n: int, age: int = 40, labour: str = "full", **facts: object) -> Member:
    return Member(
        person_id_hash=f"h{n}", person_id_masked=f"5301***{n}", age=age,
        labour_capacity=labour,  # type: ignore[arg-type]
        **facts,  # type: ignore[arg-type]
    )  # fmt: skip


WORKER = person(1, 40, "full")
SICK = person(4, 50, "none", serious_illness=True)
ELDER = person(3, 78, "none")


def gained(
    level: str | None,
    new: list[str],
    members: list[Member],
    identified_for: list[str],
    provisional: tuple[str, ...] = (),
) -> tuple[list[PlannedMeasure], list[PlannedMeasure]]:
    """The plan identification made for `identified_for`, and what the reassessment adds."""
    plan = build_plan(catalogue=CAT, risk_types=identified_for, members=members)
    added = reassessment_measures(
        catalogue=CAT, level=level, new_risk_types=new, provisional=provisional,
        members=members, active=plan,
    )  # fmt: skip
    return plan, added


def keys(measures: list[PlannedMeasure]) -> list[tuple[str, str | None]]:
    return [m.key for m in measures]


# (what, level, new risks, members, identified for, provisional, what the plan gains)
CASES = [
    ("rules §6.2 a new cause gets exactly its measure, development is there already",
     "new_risk", ["housing_unsafe"], [WORKER], ["unstable_employment"], (),
     [("dangerous_house_renovation", None)]),
    ("rules §6.2 combined new causes get combined measures, per person where it applies",
     "new_risk", ["illness", "water_unsafe"], [WORKER, SICK], ["unstable_employment"], (),
     [("drinking_water_project", None), ("medical_aid", "h4")]),
    ("rules §6.4 nobody can work: basic living stands in for a job measure",
     "new_risk", ["business_failure"], [ELDER, SICK], ["illness"], (), []),
    ("rules §6.4 nobody can work: a job cause gets the minimum-living allowance, not a job",
     "new_risk", ["business_failure"], [ELDER], ["housing_unsafe"], (),
     [("minimum_living_allowance", None)]),
    ("a cause the plan answers already adds nothing",
     "new_risk", ["business_failure"], [WORKER], ["unstable_employment"], (), []),
    ("rules §5.2 green channel: provisional help first, then what it does not answer",
     "green_channel", ["accident", "housing_unsafe"], [WORKER], ["unstable_employment"],
     ("temporary_assistance", "medical_aid"),
     [("temporary_assistance", None), ("medical_aid", None), ("dangerous_house_renovation", None)]),
    ("green channel: help the plan holds, for a member too, is not given twice; an unknown code "
     "is skipped", "green_channel", ["illness"], [WORKER, SICK], ["illness"],
     ("medical_aid", "temporary_assistance", "no_such_measure"),
     [("temporary_assistance", None)]),
    ("green channel with no new cause: the provisional help only",
     "green_channel", [], [WORKER], ["unstable_employment"], ("temporary_assistance",),
     [("temporary_assistance", None)]),
    ("nothing to do", None, ["housing_unsafe"], [WORKER], ["unstable_employment"],
     ("temporary_assistance",), []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("level", "new", "members", "identified_for", "provisional", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_reassessment_fills_the_new_gap(
    level: str | None,
    new: list[str],
    members: list[Member],
    identified_for: list[str],
    provisional: tuple[str, ...],
    expected: list[tuple[str, str | None]],
) -> None:
    plan, added = gained(level, new, members, identified_for, provisional)
    assert keys(added) == expected
    assert all(m.reason for m in added)
    assert all(m.provisional == m.reason.startswith("rules §5.2") for m in added)
    whole = [*plan, *added]
    assert len({m.key for m in whole}) == len(whole), "nothing the plan holds is added twice"
    if level == "new_risk":
        risks = [*identified_for, *new]
        assert check_plan(catalogue=CAT, risk_types=risks, members=members, measures=whole) == []


def test_the_same_reassessment_again_adds_nothing() -> None:
    plan, added = gained(
        "green_channel", ["accident", "illness"], [WORKER, SICK], ["unstable_employment"],
        ("temporary_assistance", "medical_aid"),
    )  # fmt: skip
    again = reassessment_measures(
        catalogue=CAT, level="green_channel", new_risk_types=["accident", "illness"],
        provisional=("temporary_assistance", "medical_aid"), members=[WORKER, SICK],
        active=[*plan, *added],
    )  # fmt: skip
    assert again == []
