"""Consistency rules (rules §3.1-§3.4): a signal that breaks one is flagged, never dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.events import Reason

if TYPE_CHECKING:
    from services.risk.evaluation import HouseholdFacts

LACK_OF_LABOUR_MAX_SHARE = 0.25  # rules §3.1: "more than one quarter"


def able_to_work(labour_capacity: str) -> bool:
    """rules §3 reading: `full` or `partial` labour capacity can work."""
    return labour_capacity in ("full", "partial")


def consistency_flags(facts: HouseholdFacts, risk_types: list[str]) -> list[Reason]:
    """Every consistency rule the risk types break, given what is known of the members."""
    flags: list[Reason] = []
    members = facts.members
    able = sum(able_to_work(m.labour_capacity) for m in members)
    # rules §3.1 and §3.2 need the members; with none known there is nothing to check against
    share = able / len(members) if members else 0.0
    if "lack_of_labour" in risk_types and members and share > LACK_OF_LABOUR_MAX_SHARE:
        flags.append(
            Reason(
                rule="rules §3.1",
                detail="lack_of_labour with more than a quarter of members able to work",
                value=round(share, 4),
                threshold=LACK_OF_LABOUR_MAX_SHARE,
            )
        )
    if "unstable_employment" in risk_types and members:
        if able == 0:
            flags.append(
                Reason(
                    rule="rules §3.2",
                    detail="unstable_employment but no member can work",
                    value=0,
                )
            )
        elif not any(m.has_employment_record or m.employed for m in members):
            flags.append(
                Reason(
                    rule="rules §3.2",
                    detail="unstable_employment but no member has an employment record",
                )
            )
    if "illness" in risk_types and facts.medical_spending <= 0:
        flags.append(
            Reason(
                rule="rules §3.3",
                detail="illness without out-of-pocket medical spending",
                value=facts.medical_spending,
                threshold=0,
            )
        )
    if "disaster" in risk_types and not facts.disaster_subtype:
        flags.append(
            Reason(rule="rules §3.4", detail="disaster without a subtype: recorded as other")
        )
    return flags
