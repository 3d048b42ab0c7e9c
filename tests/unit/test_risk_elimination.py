"""rules §7.1 and §7.3: the elimination criteria, with six-month time travel."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from services.risk.elimination import EliminationFacts, add_months, elimination_check
from shared.events import Member

TODAY = date(2026, 9, 1)


def member(capacity: str) -> Member:
    return Member(
        person_id_hash=f"h{capacity}",
        person_id_masked="530102***********1",
        age=50,
        labour_capacity=capacity,  # type: ignore[arg-type]
    )


READY = EliminationFacts(
    per_capita_income=9_500,
    income_above_since=date(2026, 3, 1),
    monitored_since=date(2026, 3, 1),
    measures_completed=1,
    guarantees_secure=True,
    original_risk_resolved=True,
    members=(member("full"), member("none")),
)


def check(facts: EliminationFacts, today: date = TODAY) -> tuple[bool, list[str]]:
    ok, reasons = elimination_check(
        facts, threshold_yuan=8_700, today=today, stable_income_months=6, min_monitoring_months=6
    )
    return ok, [r.rule for r in reasons]


def test_rules_7_1_every_condition_holds() -> None:
    assert check(READY)[0]


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"per_capita_income": 8_699}, "rules §7.1 income"),
        ({"per_capita_income": 8_700}, "rules §7.1 income"),  # at the threshold is not above it
        ({"income_above_since": date(2026, 3, 2)}, "rules §7.1 income"),
        ({"income_above_since": None}, "rules §7.1 income"),
        ({"monitored_since": date(2026, 3, 2)}, "rules §7.1 monitoring time"),
        ({"measures_completed": 0}, "rules §7.1 measures"),
        ({"guarantees_secure": False}, "rules §7.1 guarantees"),
        ({"original_risk_resolved": False}, "rules §7.1 original risk"),
        ({"new_risk_types": ("illness",)}, "rules §7.1 new risk"),
    ],
)
def test_rules_7_1_any_failed_condition_blocks(change: dict[str, object], rule: str) -> None:
    ok, rules = check(replace(READY, **change))  # type: ignore[arg-type]
    assert not ok
    assert rule in rules


def test_rules_7_1_six_months_time_travel() -> None:
    """Income above since 1 March: not on 31 August, yes on 1 September."""
    assert not check(READY, date(2026, 8, 31))[0]
    assert check(READY, date(2026, 9, 1))[0]


def test_rules_7_3_no_labour_under_social_security_is_never_eliminated() -> None:
    facts = replace(READY, members=(member("none"), member("none")), social_security=True)
    ok, rules = check(facts)
    assert not ok and rules == ["rules §7.3"]
    # without social-security cover the household is judged by §7.1 as usual
    assert check(replace(facts, social_security=False))[0]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [(date(2026, 8, 31), 6, date(2027, 2, 28)), (date(2026, 1, 15), 6, date(2026, 7, 15)),
     (date(2025, 12, 31), 2, date(2026, 2, 28))],
)  # fmt: skip
def test_add_months_clamps_to_month_end(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected
