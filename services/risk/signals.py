"""What each signal type contributes to a household's facts (rules §4 channels 1-4), pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from services.risk.evaluation import HouseholdFacts
from services.risk.feeds import map_feed
from shared.events import (
    FEED_CHANNEL,
    CadreReportSubmitted,
    DeclarationSubmitted,
    FeedRecord,
    FeedRecordReceived,
    FeedRecordsReceived,
    Guarantees,
    Reason,
    RegistryRecordReceived,
)


@dataclass(frozen=True)
class Signal:
    """One signal's contribution, whatever channel it came through."""

    channel: str
    village_code: str | None
    risk_types: list[str]
    submission_id: str | None = None
    rigid_risk_types: list[str] = field(default_factory=list)  # evaluation.evaluate's
    head_name: str | None = None
    self_declared: bool = False
    reasons: list[Reason] = field(default_factory=list)
    updates: dict[str, Any] = field(default_factory=dict)  # HouseholdFacts fields to set
    spending: dict[str, float] = field(default_factory=dict)  # the highest figure is kept
    guarantees: dict[str, Any] = field(default_factory=dict)
    died_person_hash: str | None = None
    disability: tuple[str, int] | None = None  # person hash, grade
    # the day the facts were seen, when the signal says (a visit's day); else the event's
    observed_on: date | None = None


def from_declaration(payload: DeclarationSubmitted) -> Signal:
    """rules §4 channel 1: a self-declaration."""
    return Signal(
        channel=payload.channel[:20] or "app",
        village_code=payload.village_code,
        risk_types=list(payload.risk_types),
        submission_id=payload.submission_id,
        head_name=payload.declarant_name,
        self_declared=True,
        spending={
            "medical_spending": payload.medical_spending,
            "schooling_spending": payload.schooling_spending,
            "loss_amount": payload.loss_amount,
        },
    )


def from_cadre_report(payload: CadreReportSubmitted) -> Signal:
    """rules §4 channel 2: a cadre's investigation report (members and guarantees included)."""
    updates: dict[str, Any] = {
        "per_capita_income": payload.per_capita_income,
        "previous_year_income": payload.previous_year_income,
        "annual_income": payload.annual_income,
        "basic_living_seriously_difficult": payload.basic_living_seriously_difficult,
        "facts_verified": payload.facts_verified,
    }
    if payload.members:
        updates["members"] = tuple(payload.members)
    return Signal(
        channel="cadre",
        village_code=payload.village_code,
        risk_types=list(payload.risk_types),
        submission_id=payload.submission_id,
        updates=updates,
        spending={
            "medical_spending": payload.medical_spending,
            "schooling_spending": payload.schooling_spending,
            "loss_amount": payload.loss_amount,
        },
        guarantees=payload.guarantees.model_dump(exclude_none=True),
    )


def from_feed(payload: FeedRecordReceived) -> Signal:
    """rules §4 channel 3 and §8: a department data-comparison record."""
    return _feed_signal(payload.department, payload.batch_id, payload)


def from_feed_record(slice_: FeedRecordsReceived, record: FeedRecord) -> Signal:
    """rules §4 channel 3 and §8: one record of a feed slice."""
    return _feed_signal(slice_.department, slice_.batch_id, record)


def _feed_signal(
    department: str, batch_id: str, payload: FeedRecord | FeedRecordReceived
) -> Signal:
    mapped = map_feed(department, payload.facts)
    updates: dict[str, Any] = {
        "disaster_subtype": mapped.disaster_subtype,
        "social_security": mapped.social_security,
    }
    return Signal(
        channel=FEED_CHANNEL,
        village_code=payload.village_code,
        risk_types=mapped.risk_types,
        rigid_risk_types=mapped.if_rigid,
        submission_id=batch_id,
        reasons=mapped.reasons,
        updates=updates,
        spending={"medical_spending": mapped.medical_spending, "loss_amount": mapped.loss_amount},
        guarantees=mapped.guarantees,
        died_person_hash=payload.person_id_hash if mapped.member_died else None,
        disability=(payload.person_id_hash, mapped.disability_grade)
        if mapped.disability_grade
        else None,
    )


def from_registry(payload: RegistryRecordReceived) -> Signal:
    """rules §1: the baseline registry sets members, baseline status and income."""
    return Signal(
        channel="registry",
        village_code=payload.village_code,
        risk_types=[],
        submission_id=payload.submission_id,
        updates={
            "baseline_status": payload.baseline_status,
            "per_capita_income": payload.per_capita_income,
            "previous_year_income": payload.previous_year_income,
            "members": tuple(payload.members),
        },
    )


def apply_signal(facts: HouseholdFacts, signal: Signal) -> HouseholdFacts:
    """The household's facts once `signal` is taken into account."""
    changed = facts.with_updates(**signal.updates)
    spending = {
        name: max(getattr(changed, name), value)
        for name, value in signal.spending.items()
        if value and value > 0
    }
    if spending:
        changed = replace(changed, **spending)
    if signal.guarantees:
        merged = changed.guarantees.model_dump() | signal.guarantees
        changed = replace(changed, guarantees=Guarantees.model_validate(merged))
    if signal.died_person_hash:
        # rules §8 public security: a death leaves the household (may change §3.1)
        changed = replace(
            changed,
            members=tuple(
                m for m in changed.members if m.person_id_hash != signal.died_person_hash
            ),
        )
    if signal.disability:
        person, grade = signal.disability
        changed = replace(
            changed,
            members=tuple(
                m.model_copy(update={"disability_grade": grade})
                if m.person_id_hash == person
                else m
                for m in changed.members
            ),
        )
    return changed
