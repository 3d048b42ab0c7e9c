"""The plan consistency checker (rules §6): any plan, built or edited by hand, held to the rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.assistance.catalogue import Catalogue, MeasureSpec
from services.assistance.planner import (
    ABLE,
    LabourClass,
    PlannedMeasure,
    household_ineligibility,
    labour_class,
    normalise_risks,
    person_ineligibility,
)
from shared.events import Member

# rules §6.3: the development measures for work; one answering another cause (Rain-and-Dew
# answers schooling, §6.6) is not a development measure the labour rule asks for
WORK_CAUSES = frozenset({"business_failure", "unstable_employment"})


@dataclass(frozen=True)
class Violation:
    """One broken rule: which rule, which measure (index in the plan, or None) and what is wrong."""

    rule: str
    problem: str
    measure: int | None = None


def _measure_problems(
    catalogue: Catalogue,
    measures: Sequence[PlannedMeasure],
    members: dict[str, Member],
    labour: LabourClass,
    risks: list[str],
) -> list[Violation]:
    found: list[Violation] = []
    seen: set[tuple[str, str | None]] = set()
    for i, m in enumerate(measures):
        spec = catalogue.measures.get(m.code)
        if spec is None:
            found.append(Violation("catalogue", f"{m.code} is not in the catalogue", i))
            continue
        if m.category != spec.category:
            found.append(
                Violation("catalogue", f"{m.code} is {spec.category}, not {m.category}", i)
            )
        if not m.reason.strip():
            found.append(Violation("rules §6 explainable", f"{m.code} carries no reason", i))
        if m.key in seen:
            found.append(Violation("rules §6.2 fill the gap", f"{m.code} assigned twice", i))
        seen.add(m.key)
        why = household_ineligibility(spec, labour)
        if why:
            found.append(Violation("rules §6.6 eligibility", f"{m.code}: {why}", i))
        if m.person_id_hash is None:
            if spec.scope == "person" and _names_nobody(catalogue, m, risks, labour):
                found.append(Violation("rules §6.1", f"{m.code} is for a person and names none", i))
            continue
        if spec.scope == "household":
            found.append(Violation("rules §6.1", f"{m.code} is a household measure", i))
        member = members.get(m.person_id_hash)
        if member is None:
            found.append(
                Violation("rules §6.1", f"{m.code} names a person not in the household", i)
            )
        elif why := person_ineligibility(spec, member):
            found.append(Violation("rules §6.6 eligibility", f"{m.code}: {why}", i))
    return found


def _names_nobody(
    catalogue: Catalogue, m: PlannedMeasure, risks: list[str], labour: LabourClass
) -> bool:
    """rules §6.1: a person's measure given to the whole household is green-channel help
    (§5.2), or the planner's fallback when the members' details do not show who has a cause it
    answers; any other names nobody. Members unknown (before identification): nobody to name."""
    if m.provisional or labour == "unknown":
        return False
    return not any(_answers(catalogue, m, r, labour) for r in risks)


def person_problem(
    spec: MeasureSpec, person_id_hash: str | None, members: Sequence[Member]
) -> str | None:
    """Why a measure added by hand names the wrong person (rules §6.1), or None.

    A measure for a person names a member of the household, one for the household nobody."""
    if spec.scope == "household":
        if person_id_hash is not None:
            return f"{spec.code} is for the whole household; name no person"
        return None
    if person_id_hash is None:
        return f"{spec.code} is for a person: name the member of the household it is for"
    if not members:
        return "the plan does not know the household's members yet (before identification)"
    if all(m.person_id_hash != person_id_hash for m in members):
        return "is not one of the household's members"
    return None


def _answers(catalogue: Catalogue, measure: PlannedMeasure, risk: str, labour: LabourClass) -> bool:
    spec = catalogue.measures.get(measure.code)
    if spec is None:
        return False
    if risk in spec.risk_types:
        return True
    substitutes = catalogue.no_labour_substitutes.get(risk, frozenset())
    return labour == "none" and measure.code in substitutes


def _justified(
    catalogue: Catalogue, m: PlannedMeasure, risks: list[str], labour: LabourClass
) -> bool:
    """rules §6.2: a measure answers a cause of the plan, or the labour rule asks for its kind:
    a development measure for work where someone can work (§6.3, §6.5), social security where
    not everyone can (§6.4, §6.5)."""
    if m.provisional or any(_answers(catalogue, m, r, labour) for r in risks):
        return True
    spec = catalogue.measures[m.code]
    if m.category == "development" and labour in (*ABLE, "unknown"):
        return spec.risk_types <= WORK_CAUSES
    return m.category == "social_security" and labour in ("none", "partial", "unknown")


def check_plan(
    *,
    catalogue: Catalogue,
    risk_types: Iterable[str],
    members: Sequence[Member],
    measures: Sequence[PlannedMeasure],
) -> list[Violation]:
    """Every violation of rules §6 in a plan's active measures, in plan order (empty when fine)."""
    labour = labour_class(members)
    by_person = {m.person_id_hash: m for m in members}
    risks = normalise_risks(risk_types)
    found = _measure_problems(catalogue, measures, by_person, labour, risks)
    for risk in risks:
        if not any(_answers(catalogue, m, risk, labour) for m in measures):
            found.append(Violation("rules §6 cause table", f"risk {risk} has no measure"))
    categories = [m.category for m in measures]
    if labour in ABLE and "development" not in categories:
        rule = "rules §6.3" if labour == "full" else "rules §6.5"
        found.append(Violation(rule, f"a {labour}-capacity household has no development measure"))
    if labour == "none" and not any(m.code in catalogue.basic_living for m in measures):
        found.append(Violation("rules §6.4", "a household nobody can work in has no basic living"))
    if labour == "partial" and "social_security" not in categories:
        found.append(Violation("rules §6.5", "a partial-capacity household has no social security"))
    if labour == "full":
        ranked = [c for c in categories if c in ("development", "social_security")]
        if "development" in ranked and ranked[0] != "development":
            found.append(Violation("rules §6.3", "development measures must come first"))
    for i, m in enumerate(measures):
        if m.code in catalogue.measures and not _justified(catalogue, m, risks, labour):
            found.append(Violation("rules §6.2 fill the gap", f"{m.code} answers no cause", i))
    return found
