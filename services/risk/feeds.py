"""Department feed facts (rules §8) mapped to risk types and household facts.

Intake validates each department's row and passes it on as `FeedRecordReceived.facts`
(services/intake/feeds.py, identity columns removed). The fields read here are intake's names,
with the alternative names of the first draft accepted too; unknown fields are ignored and
values are read defensively (booleans as true/1/yes, amounts as numbers or numeric strings):

| department | fields read (alternatives) |
|---|---|
| medical_insurance | out_of_pocket_spending (out_of_pocket; a risk as rules §2.3 judges it), |
|  | serious_illness_claim |
| health | serious (diagnosis_serious), chronic (diagnosis_chronic) |
| education | dropped_out (dropout), student_aid |
| housing | house_rating (A-D) |
| water | supply_interrupted_days > 0 (supply_disrupted), water_quality_safe false |
|  | (quality_unsafe) |
| human_resources | job_lost, employment_status == unemployed |
| civil_affairs | assistance_status in dibao/tekun (dibao, tekun) |
| agriculture | failed (project_failed), loss_amount |
| public_security | change == death (death) |
| disabled_persons_federation | disability_grade (1-4), change != revoked |
| emergency_management | event (accident / disaster), disaster_subtype (disaster_type), |
|  | loss_amount |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.risk.evaluation import DISASTER_SUBTYPES
from shared.events import Reason

_TRUE = {"true", "1", "yes", "y", "是"}
COMPULSORY_STAGES = ("primary", "junior")  # rules §3: compulsory education, ages 6 to 15


def flag(facts: dict[str, Any], name: str) -> bool:
    """A boolean fact, tolerant of strings and numbers; missing is False."""
    value = facts.get(name)
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def amount(facts: dict[str, Any], name: str) -> float:
    """A non-negative amount in yuan; missing or unreadable is 0 (rules §9.5)."""
    try:
        return max(float(facts.get(name) or 0), 0.0)
    except (TypeError, ValueError):
        return 0.0


def either(facts: dict[str, Any], *names: str) -> bool:
    """A boolean fact under any of its names."""
    return any(flag(facts, n) for n in names)


def text(facts: dict[str, Any], *names: str) -> str:
    """A text fact under the first of its names present, lower case."""
    for name in names:
        if facts.get(name) not in (None, ""):
            return str(facts[name]).strip().lower()
    return ""


@dataclass(frozen=True)
class FeedFacts:
    """What one feed record says about a household."""

    risk_types: list[str] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    medical_spending: float = 0
    loss_amount: float = 0
    disaster_subtype: str | None = None
    guarantees: dict[str, Any] = field(default_factory=dict)  # Guarantees fields to set
    social_security: bool | None = None
    member_died: bool = False
    disability_grade: int | None = None
    if_rigid: list[str] = field(default_factory=list)  # risk types if spending is rigid (§2.3)


def _reason(department: str, detail: str, value: Any = None) -> Reason:
    return Reason(rule=f"rules §8 {department}", detail=detail, value=value)


def map_feed(department: str, facts: dict[str, Any]) -> FeedFacts:
    """rules §8: the risk types and facts of one department record."""
    match department:
        case "medical_insurance":
            spent = max(amount(facts, "out_of_pocket_spending"), amount(facts, "out_of_pocket"))
            serious = flag(facts, "serious_illness_claim")
            # the spending is a risk when it is rigid expenditure for this household (rules
            # §2.3, judged by the evaluation against its income), not whatever its amount: a
            # 100-yuan record must not open a 15-day identification case
            return FeedFacts(
                risk_types=["illness"] if serious else [],
                if_rigid=["illness"],
                reasons=[_reason(department, "out-of-pocket medical spending", spent)]
                + ([_reason(department, "serious-illness claim", True)] if serious else []),
                medical_spending=spent,
            )
        case "health":
            serious = either(facts, "serious", "diagnosis_serious")
            chronic = either(facts, "chronic", "diagnosis_chronic")
            if not (serious or chronic):
                return FeedFacts()
            which = "serious" if serious else "chronic"
            return FeedFacts(["illness"], [_reason(department, f"{which} illness diagnosed")])
        case "education":
            if not either(facts, "dropped_out", "dropout"):
                return FeedFacts()
            stage = str(facts.get("schooling_stage") or "").strip().lower()
            if stage and stage not in COMPULSORY_STAGES:
                # rules §3: the guarantee is compulsory education (ages 6-15); leaving senior,
                # vocational or higher education is a schooling risk to look at, not a failure
                return FeedFacts(["schooling"], [_reason(department, "dropout", stage)])
            return FeedFacts(
                ["schooling"],
                [_reason(department, "dropout from compulsory education", stage or None)],
                guarantees={"compulsory_education_secure": False},
            )
        case "housing":
            rating = str(facts.get("house_rating") or "").strip().upper()
            if rating not in ("A", "B", "C", "D"):
                return FeedFacts()
            unsafe = rating in ("C", "D")
            return FeedFacts(
                ["housing_unsafe"] if unsafe else [],
                [_reason(department, "house safety rating", rating)],
                guarantees={"house_rating": rating},
            )
        case "water":
            disrupted = amount(facts, "supply_interrupted_days") > 0 or flag(
                facts, "supply_disrupted"
            )
            unsafe = flag(facts, "quality_unsafe") or text(facts, "water_quality_safe") in (
                "false", "0", "no",
            )  # fmt: skip
            if not (disrupted or unsafe):
                return FeedFacts(guarantees={"drinking_water_safe": True})
            detail = "supply disrupted" if disrupted else "water quality unsafe"
            return FeedFacts(
                ["water_unsafe"],
                [_reason(department, detail)],
                guarantees={"drinking_water_safe": False},
            )
        case "human_resources":
            if not (flag(facts, "job_lost") or text(facts, "employment_status") == "unemployed"):
                return FeedFacts()
            return FeedFacts(["unstable_employment"], [_reason(department, "job lost")])
        case "civil_affairs":
            covered = either(facts, "dibao", "tekun") or text(facts, "assistance_status") in (
                "dibao", "tekun",
            )  # fmt: skip
            # rules §8: context only (for §6 and §7.3), never a risk type by itself
            return FeedFacts(
                reasons=[_reason(department, "social-security cover", covered)],
                social_security=covered,
            )
        case "agriculture":
            if not either(facts, "failed", "project_failed"):
                return FeedFacts()
            loss = amount(facts, "loss_amount")
            return FeedFacts(
                ["business_failure"],
                [_reason(department, "farming or business project failed", loss)],
                loss_amount=loss,
            )
        case "public_security":
            # rules §8: membership only; a death may change lack_of_labour on re-evaluation
            died = flag(facts, "death") or text(facts, "change") == "death"
            return FeedFacts(
                reasons=[_reason(department, "membership change", "death" if died else "other")],
                member_died=died,
            )
        case "disabled_persons_federation":
            try:
                grade = int(facts.get("disability_grade") or 0)
            except (TypeError, ValueError):
                grade = 0
            if not 1 <= grade <= 4 or text(facts, "change") == "revoked":
                return FeedFacts()
            return FeedFacts(
                ["disability"],
                [_reason(department, "new or changed disability grade", grade)],
                disability_grade=grade,
            )
        case "emergency_management":
            kind = text(facts, "disaster_subtype", "disaster_type")
            loss = amount(facts, "loss_amount")
            if kind == "accident" or text(facts, "event") == "accident":
                return FeedFacts(
                    ["accident"], [_reason(department, "accident", loss)], loss_amount=loss
                )
            if not kind and not loss and text(facts, "event") != "disaster":
                return FeedFacts()
            # rules §3.4: a disaster always carries a subtype, `other` when unknown
            subtype = kind if kind in DISASTER_SUBTYPES else "other"
            return FeedFacts(
                ["disaster"],
                [_reason(department, f"disaster ({subtype})", loss)],
                loss_amount=loss,
                disaster_subtype=subtype,
            )
    return FeedFacts(reasons=[_reason(department, "unknown department: no mapping")])
