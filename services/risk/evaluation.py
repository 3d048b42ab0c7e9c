"""Evaluating a household (rules §1-§3, §5): risk types, kind, rigid expenditure, green channel.

Pure: facts in, an Evaluation with its reasons out. Nothing here reads a clock or a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from services.risk.consistency import consistency_flags
from services.risk.thresholds import ThresholdEntry
from shared.events import Guarantees, Member, Reason

RISK_TYPES = (
    "illness", "disability", "schooling", "disaster", "accident", "business_failure",
    "unstable_employment", "lack_of_labour", "housing_unsafe", "water_unsafe", "other",
)  # fmt: skip
DISASTER_SUBTYPES = (
    "flood", "geological", "drought", "biological", "meteorological", "earthquake", "other",
)  # fmt: skip
SHOCK_TYPES = frozenset({"illness", "disaster", "accident"})  # rules §1: what makes `sudden`
# rules §5.2: the provisional help each green-channel risk asks for at once
PROVISIONAL_MEASURES = {
    "illness": "medical_aid",
    "disaster": "temporary_assistance",
    "accident": "temporary_assistance",
}


@dataclass(frozen=True)
class Policy:
    """The configurable values the evaluation needs (defaults of rules §2.3 and §5)."""

    rigid_expenditure_share: float = 0.40
    green_channel_risk_types: frozenset[str] = frozenset({"disaster", "accident", "illness"})
    green_channel_loss_threshold: float = 10_000


@dataclass(frozen=True)
class HouseholdFacts:
    """What is known of a household when it is evaluated; None means not known."""

    baseline_status: str | None = None  # formerly_poor | ordinary
    per_capita_income: float | None = None
    annual_income: float | None = None  # the household's, this year
    previous_year_income: float | None = None  # the household's, last year
    medical_spending: float = 0  # compliant out-of-pocket medical spending
    schooling_spending: float = 0
    loss_amount: float = 0
    members: tuple[Member, ...] = ()
    guarantees: Guarantees = field(default_factory=Guarantees)
    basic_living_seriously_difficult: bool = False
    facts_verified: bool = False
    disaster_subtype: str | None = None
    social_security: bool = False  # 低保 / 特困 cover (civil affairs), context for rules §7.3

    def household_income(self) -> float | None:
        """Annual household income, from the figure or per-capita income x members."""
        if self.annual_income is not None:
            return self.annual_income
        if self.per_capita_income is not None and self.members:
            return self.per_capita_income * len(self.members)
        return None

    def with_updates(self, **changes: object) -> HouseholdFacts:
        """A copy with some facts replaced (None values are ignored: unknown keeps the old)."""
        known = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **known) if known else self  # type: ignore[arg-type]


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating a household: what is wrong, of which kind, and why."""

    risk_types: list[str]
    reasons: list[Reason]
    flags: list[Reason]
    in_range: bool | None
    rigid_expenditure: bool
    kind: str | None
    green_channel: bool
    provisional_measures: list[str]


def within_range(
    per_capita_income: float | None, threshold: ThresholdEntry | None
) -> tuple[bool | None, Reason]:
    """rules §2.1: inside the range when per-capita income is below the threshold in force."""
    if threshold is None:
        return None, Reason(rule="rules §2.1", detail="no monitoring threshold configured")
    if per_capita_income is None:
        return None, Reason(
            rule="rules §2.1",
            detail="per-capita income not known yet",
            threshold=threshold.annual_yuan,
        )
    inside = per_capita_income < threshold.annual_yuan
    return inside, Reason(
        rule="rules §2.1",
        detail=f"per-capita income {'below' if inside else 'not below'} the threshold "
        f"({threshold.label or threshold.region_prefix}, {threshold.form})",
        value=per_capita_income,
        threshold=threshold.annual_yuan,
    )


def rigid_expenditure(
    facts: HouseholdFacts, *, share: float, threshold_yuan: float | None = None
) -> list[Reason]:
    """rules §2.3: medical spending above `share` of income, or rigid spending above last year's.

    Holdline reading for a household whose income is not known yet (most households a
    department record is the first news of): its income is taken as the monitoring threshold
    `threshold_yuan` (per capita, the highest a household inside the range earns) times its
    members known, at least one, so spending that would be rigid for a household at the line
    is a risk to verify, and a small claim is not. With no threshold either, any spending is."""
    reasons = []
    income = facts.household_income()
    if income is not None and facts.medical_spending > share * income:
        reasons.append(
            Reason(
                rule="rules §2.3",
                detail=f"out-of-pocket medical spending above {share:.0%} of annual income",
                value=facts.medical_spending,
                threshold=round(share * income, 2),
            )
        )
    elif income is None and facts.medical_spending > 0:
        line = None if threshold_yuan is None else threshold_yuan * max(len(facts.members), 1)
        if line is None or facts.medical_spending > share * line:
            reasons.append(
                Reason(
                    rule="rules §2.3",
                    detail=f"income not known: out-of-pocket medical spending above {share:.0%} "
                    "of the income of a household at the monitoring threshold",
                    value=facts.medical_spending,
                    threshold=None if line is None else round(share * line, 2),
                )
            )
    rigid = facts.medical_spending + facts.schooling_spending
    if facts.previous_year_income is not None and rigid > facts.previous_year_income:
        reasons.append(
            Reason(
                rule="rules §2.3",
                detail="medical plus schooling spending above the previous year's income",
                value=rigid,
                threshold=facts.previous_year_income,
            )
        )
    return reasons


def guarantee_risks(guarantees: Guarantees) -> list[tuple[str, Reason]]:
    """rules §3: a failed no-worry or guarantee (or drinking water) is a risk of its type."""
    g = guarantees
    failures: list[tuple[str, str, object]] = []
    if g.food_clothing_secure is False:
        failures.append(("other", "food and clothing not secure", False))
    if g.compulsory_education_secure is False:
        failures.append(("schooling", "a child aged 6-15 has dropped out", False))
    if g.medical_insured is False:
        failures.append(("illness", "members not medically insured", False))
    if g.medical_affordable is False:
        failures.append(("illness", "medical treatment not affordable", False))
    if g.house_rating in ("C", "D"):
        failures.append(("housing_unsafe", "house rated dangerous", g.house_rating))
    if g.drinking_water_safe is False:
        failures.append(("water_unsafe", "drinking water unsafe or unavailable", False))
    return [
        (risk, Reason(rule="rules §3 guarantees", detail=detail, value=str(value)))
        for risk, detail, value in failures
    ]


def classify_kind(
    *, baseline: str | None, in_range: bool | None, rigid: bool, shock: bool, has_risk: bool
) -> tuple[str | None, Reason]:
    """rules §1: unstable / marginal inside the range, sudden above it after a shock."""
    if not has_risk:
        return None, Reason(rule="rules §1", detail="no risk present: not a monitoring object")
    if in_range is False:
        if rigid or shock:
            return "sudden", Reason(
                rule="rules §1 sudden",
                detail="income above the range, but a shock or rigid expenditure (§2.3)",
            )
        return None, Reason(
            rule="rules §1", detail="income above the range and no rigid expenditure or shock"
        )
    # rules §1.2: unstable needs formerly_poor; an unknown baseline is an ordinary household
    kind = "unstable" if baseline == "formerly_poor" else "marginal"
    # income or the threshold in force not known yet (the §2.1 reason says which): provisional,
    # and county approval refuses it until both are (casework)
    note = (
        "" if in_range else " (not yet compared with a threshold: inside the range until verified)"
    )
    return kind, Reason(
        rule=f"rules §1 {kind}", detail=f"baseline {baseline or 'ordinary'}, risk present{note}"
    )


def green_channel_trigger(
    facts: HouseholdFacts, risk_types: list[str], policy: Policy
) -> tuple[bool, Reason | None]:
    """rules §5.1: a listed risk type and a large loss or a verified seriously-difficult report."""
    listed = sorted(set(risk_types) & policy.green_channel_risk_types)
    if not listed:
        return False, None
    income = facts.household_income()
    bar = policy.green_channel_loss_threshold
    if income is not None:
        bar = min(bar, income)
    amount = max(facts.loss_amount, facts.medical_spending)
    if amount > bar:
        return True, Reason(
            rule="rules §5.1",
            detail=f"{'/'.join(listed)}: loss or out-of-pocket spending above "
            "min(green-channel threshold, annual income)",
            value=amount,
            threshold=bar,
        )
    if facts.basic_living_seriously_difficult and facts.facts_verified:
        return True, Reason(
            rule="rules §5.1",
            detail=f"{'/'.join(listed)}: cadre report, basic living seriously difficult, verified",
        )
    return False, None


def evaluate(
    *,
    facts: HouseholdFacts,
    declared_risk_types: list[str],
    threshold: ThresholdEntry | None,
    policy: Policy,
    rigid_risk_types: Sequence[str] = (),
) -> Evaluation:
    """Evaluate a household: every rule that fires leaves a reason (rules §1-§3, §5).
    `rigid_risk_types`: what the signal reports if, and only if, the household's spending is
    rigid expenditure (rules §2.3)."""
    risk_types = {r for r in declared_risk_types if r in RISK_TYPES}
    reasons = [
        Reason(rule="rules §3", detail="risk type reported by the signal", value=r)
        for r in sorted(risk_types)
    ]
    for risk, reason in guarantee_risks(facts.guarantees):
        risk_types.add(risk)
        reasons.append(reason)
    in_range, range_reason = within_range(facts.per_capita_income, threshold)
    reasons.append(range_reason)
    rigid_reasons = rigid_expenditure(
        facts,
        share=policy.rigid_expenditure_share,
        threshold_yuan=threshold.annual_yuan if threshold is not None else None,
    )
    reasons.extend(rigid_reasons)
    if rigid_reasons:
        # rules §2.3: the risk types a signal reports only if its spending is rigid (a
        # department's medical record: services/risk/feeds.py) join the others
        risk_types.update(r for r in rigid_risk_types if r in RISK_TYPES)
        if not risk_types:
            risk_types.add("illness" if facts.medical_spending else "schooling")
    ordered = sorted(risk_types)
    green, green_reason = green_channel_trigger(facts, ordered, policy)
    if green_reason:
        reasons.append(green_reason)
    kind, kind_reason = classify_kind(
        baseline=facts.baseline_status,
        in_range=in_range,
        rigid=bool(rigid_reasons),
        shock=bool(risk_types & SHOCK_TYPES) and (green or facts.basic_living_seriously_difficult),
        has_risk=bool(ordered),
    )
    reasons.append(kind_reason)
    return Evaluation(
        risk_types=ordered,
        reasons=reasons,
        flags=consistency_flags(facts, ordered),
        in_range=in_range,
        rigid_expenditure=bool(rigid_reasons),
        kind=kind,
        green_channel=green,
        provisional_measures=sorted(
            {PROVISIONAL_MEASURES[r] for r in ordered if r in PROVISIONAL_MEASURES}
        )
        if green
        else [],
    )
