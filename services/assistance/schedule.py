"""Visit schedule and must-visit flags (rules §6.10-6.11) as pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from shared.events import Member

NON_COMPULSORY = ("senior", "vocational", "higher_vocational", "higher")


def next_due(last: date, *, interval_days: int) -> date:
    """rules §6.10: the next visit is due `interval_days` after the last one (or identification)."""
    return last + timedelta(days=interval_days)


def latest_missed(due_on: date, today: date, *, interval_days: int) -> date | None:
    """The latest due date already passed without a visit, or None when nothing is missed.

    A household left unvisited for months misses one due date per interval; only the newest
    is warned about, so a job that was down does not flood cadres with stale warnings.
    """
    if today <= due_on:
        return None
    periods = (today - due_on).days // interval_days
    missed = due_on + timedelta(days=periods * interval_days)
    return missed if missed < today else missed - timedelta(days=interval_days)


def overdue_levels(missed_on: date, today: date, *, escalation_days: int) -> list[str]:
    """rules §6.10: a missed visit warns the cadre, then (after the grace) the township."""
    if today <= missed_on:
        return []
    if today > missed_on + timedelta(days=escalation_days):
        return ["cadre", "township"]
    return ["cadre"]


def period(due_on: date) -> str:
    """The month a due date belongs to: warnings are unique per household, month and level."""
    return f"{due_on.year:04d}-{due_on.month:02d}"


def must_visit_flags(
    *,
    risk_types: Iterable[str],
    members: Sequence[Member],
    measure_codes: Iterable[str],
    per_capita_income: float | None,
    previous_income: float | None,
    low_income_yuan: float,
) -> list[str]:
    """rules §6.11: why a household must be visited (empty when it is not a must-visit one)."""
    risks = set(risk_types)
    codes = set(measure_codes)
    flags: list[str] = []
    if per_capita_income is not None and per_capita_income < low_income_yuan:
        flags.append("low_income")
    if None not in (per_capita_income, previous_income) and per_capita_income < previous_income:  # type: ignore[operator]
        flags.append("falling_income")
    if any(m.serious_illness or m.chronic_illness for m in members):
        flags.append("serious_or_chronic_illness")
    if len(members) == 1 and "extreme_poverty_support" in codes:
        flags.append("single_extreme_poverty")
    if "minimum_living_allowance" in codes:
        flags.append("minimum_living_allowance")
    if "disability" in risks or any(m.disability_grade in (1, 2) for m in members):
        flags.append("new_or_severe_disability")
    if sum(m.schooling_stage in NON_COMPULSORY for m in members) >= 2:
        flags.append("several_children_in_non_compulsory_schooling")
    if "unstable_employment" in risks:
        flags.append("unstable_migrant_work")
    if risks & {"disaster", "accident"}:
        flags.append("disaster_or_upheaval")
    return flags
