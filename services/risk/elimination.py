"""Risk elimination criteria (风险消除, rules §7.1, §7.3), pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.risk.consistency import able_to_work
from shared.events import Member, Reason


def add_months(day: date, months: int) -> date:
    """The same day `months` later (clamped to the month's end)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class IncomeRecord:
    """One per-capita income figure, dated by when it was recorded (a visit's day, a feed's
    record date, the home verification's), not by when it reached risk."""

    on: date
    income: float | None
    above: bool  # strictly above the threshold in force on `on` (rules §7.1)
    restart: bool = False  # a rollback: nothing before it counts again (rules §7.4)


def income_run(records: list[IncomeRecord]) -> tuple[IncomeRecord, date | None]:
    """rules §7.1 "has stayed above the threshold": the latest record by date (the income
    known now) and the first day of the unbroken run of records above the threshold that
    ends with it (None when the latest is not above). A record below, wherever it falls in
    time, breaks the run: a figure arriving late and backdated is placed at its date, and
    never stretches the run back past a lower figure recorded after it. Records of the same
    day keep their order of arrival. `records` must not be empty."""
    ordered = sorted(records, key=lambda r: r.on)  # stable: a day's records in arrival order
    since: date | None = None
    for record in reversed(ordered):
        if not record.above:
            break
        since = record.on
        if record.restart:
            break
    return ordered[-1], since


@dataclass(frozen=True)
class EliminationFacts:
    """What the assistance side has told the engine about a monitoring object."""

    per_capita_income: float | None
    income_above_since: date | None  # first day of the current run above the threshold
    monitored_since: date
    measures_completed: int
    guarantees_secure: bool  # three guarantees and drinking water (rules §3)
    original_risk_resolved: bool
    new_risk_types: tuple[str, ...] = ()
    members: tuple[Member, ...] = ()
    social_security: bool = False


def no_labour_support(members: tuple[Member, ...] | list[Member], social_security: bool) -> bool:
    """rules §7.3: nobody can work and social security covers the household."""
    return (
        bool(members)
        and social_security
        and not any(able_to_work(m.labour_capacity) for m in members)
    )


def elimination_check(
    facts: EliminationFacts,
    *,
    threshold_yuan: float | None,
    today: date,
    stable_income_months: int,
    min_monitoring_months: int,
) -> tuple[bool, list[Reason]]:
    """rules §7.1: eligible only when every condition holds; the reasons say which failed."""
    reasons: list[Reason] = []
    ok = True

    def check(passed: bool, reason: Reason) -> None:
        nonlocal ok
        ok = ok and passed
        reasons.append(reason)

    if no_labour_support(facts.members, facts.social_security):
        return False, [
            Reason(
                rule="rules §7.3",
                detail="no labour capacity under social security: stays a support household",
            )
        ]
    stable_from = (
        add_months(facts.income_above_since, stable_income_months)
        if facts.income_above_since
        else None
    )
    check(
        threshold_yuan is not None
        and facts.per_capita_income is not None
        and facts.per_capita_income > threshold_yuan  # rules §7.1: above, not at
        and stable_from is not None
        and stable_from <= today,
        Reason(
            rule="rules §7.1 income",
            detail=f"income above the threshold for {stable_income_months} months "
            f"(since {facts.income_above_since or 'never'})",
            value=facts.per_capita_income,
            threshold=threshold_yuan,
        ),
    )
    monitored_until = add_months(facts.monitored_since, min_monitoring_months)
    check(
        monitored_until <= today,
        Reason(
            rule="rules §7.1 monitoring time",
            detail=f"monitored since {facts.monitored_since}, needs {min_monitoring_months} months",
            value=facts.monitored_since.isoformat(),
            threshold=monitored_until.isoformat(),
        ),
    )
    check(
        facts.measures_completed >= 1,
        Reason(
            rule="rules §7.1 measures",
            detail="at least one assistance measure carried out",
            value=facts.measures_completed,
            threshold=1,
        ),
    )
    check(
        facts.guarantees_secure,
        Reason(rule="rules §7.1 guarantees", detail="three guarantees and drinking water secured"),
    )
    check(
        facts.original_risk_resolved,
        Reason(rule="rules §7.1 original risk", detail="original risk resolved at the last visit"),
    )
    check(
        not facts.new_risk_types,
        Reason(
            rule="rules §7.1 new risk",
            detail="no new risk",
            value=",".join(facts.new_risk_types) or None,
        ),
    )
    return ok, reasons
