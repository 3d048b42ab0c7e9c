"""The plan builder (rules §6), pure and explainable: every measure says why it was chosen."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from services.assistance.catalogue import Catalogue, MeasureSpec
from shared.events import Member

LabourClass = Literal["full", "partial", "none", "unknown"]
ABLE = ("full", "partial")
# the order in which causes are answered, so that a plan is the same whatever the input order
RISK_ORDER = (
    "disaster", "accident", "illness", "disability", "schooling", "housing_unsafe",
    "water_unsafe", "business_failure", "unstable_employment", "lack_of_labour", "other",
)  # fmt: skip
NON_COMPULSORY = ("senior", "vocational", "higher_vocational", "higher")
# rules §6.6: Rain-and-Dew (雨露计划) is for secondary (中职) and higher (高职) vocational
# students only, not for an ordinary university (`higher`); catalogue.json says the same
VOCATIONAL = {"vocational": "secondary vocational", "higher_vocational": "higher vocational"}


@dataclass(frozen=True)
class PlannedMeasure:
    """One measure of a plan: for the household (person None) or one member, and why."""

    code: str
    category: str
    reason: str
    person_id_hash: str | None = None
    provisional: bool = False  # assist first, identify later (rules §5.2)

    @property
    def key(self) -> tuple[str, str | None]:
        """What "the same measure" means: same code for the same person."""
        return self.code, self.person_id_hash


def labour_class(members: Sequence[Member]) -> LabourClass:
    """rules §6.3-6.5: someone fully able -> full; only partial -> partial; nobody -> none."""
    if not members:
        return "unknown"
    capacities = {m.labour_capacity for m in members}
    if "full" in capacities:
        return "full"
    return "partial" if "partial" in capacities else "none"


def person_ineligibility(spec: MeasureSpec, member: Member) -> str | None:
    """Why `member` may not get `spec` (rules §6.6), or None when they may."""
    if spec.age_min is not None and member.age < spec.age_min:
        return f"age {member.age} is below {spec.age_min}"
    if spec.age_max is not None and member.age > spec.age_max:
        return f"age {member.age} is above {spec.age_max}"
    if spec.labour is not None and member.labour_capacity not in spec.labour:
        return f"labour capacity {member.labour_capacity} is not one of {sorted(spec.labour)}"
    if spec.schooling_stages is not None and member.schooling_stage not in spec.schooling_stages:
        stages = sorted(spec.schooling_stages)
        return f"schooling stage {member.schooling_stage} is not one of {stages}"
    if spec.requires == "disability" and member.disability_grade is None:
        return "has no disability"
    if spec.requires == "serious_illness" and not member.serious_illness:
        return "has no serious illness"
    return None


def household_ineligibility(spec: MeasureSpec, labour: LabourClass) -> str | None:
    """Why a household of this labour class may not get `spec`, or None."""
    if spec.household_labour is None or labour == "unknown" or labour in spec.household_labour:
        return None
    return f"household labour class {labour} is not one of {sorted(spec.household_labour)}"


def category_rank(category: str, labour: LabourClass) -> int:
    """rules §6.3: development first for able households; §6.4 social security first otherwise."""
    if labour == "none":
        order = ("social_security", "emergency", "guarantee_fix", "development")
    else:
        order = ("development", "emergency", "guarantee_fix", "social_security")
    return order.index(category) if category in order else len(order)


def ordered(measures: Iterable[PlannedMeasure], labour: LabourClass) -> list[PlannedMeasure]:
    """The plan in the order it is shown and worked on (stable within a category)."""
    return sorted(measures, key=lambda m: category_rank(m.category, labour))


class _Draft:
    """A plan being built: the measures already active plus those added now."""

    def __init__(
        self, catalogue: Catalogue, members: Sequence[Member], active: Sequence[PlannedMeasure]
    ):
        self.catalogue = catalogue
        self.members = list(members)
        self.labour = labour_class(members)
        self.measures = list(active)
        self.added: list[PlannedMeasure] = []

    def has(self, code: str, person: str | None) -> bool:
        return any(m.key == (code, person) for m in self.measures)

    def eligible(self, code: str, member: Member | None) -> bool:
        spec = self.catalogue.measures[code]
        if household_ineligibility(spec, self.labour) is not None:
            return False
        return member is None or person_ineligibility(spec, member) is None

    def add(self, code: str, member: Member | None, reason: str) -> bool:
        person = member.person_id_hash if member is not None else None
        if code not in self.catalogue.measures or self.has(code, person):
            return False
        if not self.eligible(code, member):
            return False
        measure = PlannedMeasure(code, self.catalogue.measures[code].category, reason, person)
        self.measures.append(measure)
        self.added.append(measure)
        return True

    def answers(self, risk: str, person: str | None = None) -> bool:
        """Whether a measure for `person` (or the whole household) already answers `risk`."""
        codes = set(self.catalogue.addressing(risk))
        if self.labour == "none":
            codes |= self.catalogue.no_labour_substitutes.get(risk, frozenset())
        return any(
            m.code in codes and (person is None or m.person_id_hash in (person, None))
            for m in self.measures
        )

    def categories(self) -> set[str]:
        return {m.category for m in self.measures}


def _label(member: Member) -> str:
    return member.person_id_masked or member.person_id_hash[:8]


def _workers(draft: _Draft) -> list[Member]:
    """Members able to work, the fully able and then the youngest first: a stable choice."""
    able = [m for m in draft.members if m.labour_capacity in ABLE]
    return sorted(able, key=lambda m: (m.labour_capacity != "full", m.age, m.person_id_hash))


def _per_person(draft: _Draft, risk: str, pick: list[tuple[Member, str, str]]) -> None:
    for member, code, why in pick:
        if draft.answers(risk, member.person_id_hash):
            continue
        draft.add(code, member, f"rules §6 {risk}: {why} ({_label(member)})")


def _cover_illness(draft: _Draft) -> None:
    pick = [
        (m, "medical_aid", "serious illness" if m.serious_illness else "chronic illness")
        for m in draft.members
        if m.serious_illness or m.chronic_illness
    ]
    _per_person(draft, "illness", pick)


def _cover_disability(draft: _Draft) -> None:
    pick = [
        (m, "disability_subsidy", f"disability grade {m.disability_grade}")
        for m in draft.members
        if m.disability_grade is not None
    ]
    _per_person(draft, "disability", pick)


def _cover_schooling(draft: _Draft) -> None:
    pick: list[tuple[Member, str, str]] = []
    for m in draft.members:
        if 6 <= m.age <= 15 and m.schooling_stage is None:
            pick.append(
                (m, "compulsory_education_guarantee", "child of compulsory age out of school")
            )
        elif m.schooling_stage in VOCATIONAL:
            why = f"{VOCATIONAL[m.schooling_stage]} student (rules §6.6)"
            pick.append((m, "yulu_plan_subsidy", why))
        elif m.schooling_stage in ("senior", "higher"):
            pick.append((m, "education_aid", f"{m.schooling_stage} student"))
    _per_person(draft, "schooling", pick)


def _cover_work(draft: _Draft, risk: str) -> None:
    if draft.labour == "none":
        draft.add(
            "minimum_living_allowance", None, f"rules §6.4 {risk}: nobody in the household can work"
        )
        return
    for worker in _workers(draft):
        for code in ("employment_placement", "public_welfare_job", "skills_training"):
            if draft.add(
                code, worker, f"rules §6 {risk}: {code} for an able member ({_label(worker)})"
            ):
                return
    draft.add("microcredit", None, f"rules §6 {risk}: no member eligible for a job measure")


def _cover_lack_of_labour(draft: _Draft) -> None:
    alone = draft.members[0] if len(draft.members) == 1 else None
    if alone is not None and alone.labour_capacity == "none":
        draft.add(
            "extreme_poverty_support",
            alone,
            "rules §6.4 lack_of_labour: one person who cannot work",
        )
        return
    draft.add(
        "minimum_living_allowance", None, "rules §6.4 lack_of_labour: too few members can work"
    )


_HOUSEHOLD_MEASURE = {
    "housing_unsafe": ("dangerous_house_renovation", "house rated C or D"),
    "water_unsafe": ("drinking_water_project", "drinking water unsafe"),
    "disaster": ("temporary_assistance", "natural disaster, relief first"),
    "accident": ("temporary_assistance", "accident, relief first"),
    "other": ("temporary_assistance", "other hardship"),
}
# a cause with no member flagged for it still needs an answer for the household
_FALLBACK = {
    "illness": "medical_aid",
    "disability": "social_assistance",
    "schooling": "education_aid",
}


def _cover(draft: _Draft, risk: str) -> None:
    if risk == "illness":
        _cover_illness(draft)
    elif risk == "disability":
        _cover_disability(draft)
    elif risk == "schooling":
        _cover_schooling(draft)
    elif risk in ("business_failure", "unstable_employment"):
        if not draft.answers(risk):
            _cover_work(draft, risk)
    elif risk == "lack_of_labour":
        if not draft.answers(risk):
            _cover_lack_of_labour(draft)
    elif risk in _HOUSEHOLD_MEASURE and not draft.answers(risk):
        code, why = _HOUSEHOLD_MEASURE[risk]
        draft.add(code, None, f"rules §6 {risk}: {why}")
    if not draft.answers(risk) and risk in _FALLBACK:
        draft.add(_FALLBACK[risk], None, f"rules §6 {risk}: no member detail, household measure")


def _development(draft: _Draft) -> None:
    """rules §6.3/§6.5: an able household gets a development measure it can use."""
    if "development" in draft.categories() or draft.labour not in ABLE:
        return
    rule = "rules §6.3" if draft.labour == "full" else "rules §6.5"
    for worker in _workers(draft):
        for code in ("employment_placement", "public_welfare_job"):
            if draft.add(code, worker, f"{rule}: development first, {code} ({_label(worker)})"):
                return
    draft.add("industry_support", None, f"{rule}: development first, household industry support")


def _social_security(draft: _Draft) -> None:
    """rules §6.4: nobody can work -> basic-living cover; §6.5 partial -> some social security."""
    if draft.labour == "none":
        if any(m.code in draft.catalogue.basic_living for m in draft.measures):
            return
        if len(draft.members) == 1 and draft.add(
            "extreme_poverty_support", draft.members[0], "rules §6.4: one person who cannot work"
        ):
            return
        draft.add("minimum_living_allowance", None, "rules §6.4: nobody in the household can work")
    elif draft.labour == "partial" and "social_security" not in draft.categories():
        draft.add(
            "minimum_living_allowance", None, "rules §6.5: social security for partial capacity"
        )


def normalise_risks(risk_types: Iterable[str]) -> list[str]:
    """Known causes in the canonical order; an unknown code counts as `other`."""
    known = {r if r in RISK_ORDER else "other" for r in risk_types}
    return [r for r in RISK_ORDER if r in known]


def build_plan(
    *,
    catalogue: Catalogue,
    risk_types: Iterable[str],
    members: Sequence[Member],
    active: Sequence[PlannedMeasure] = (),
) -> list[PlannedMeasure]:
    """rules §6: the measures to add so the plan fills exactly the gap; nothing active twice."""
    draft = _Draft(catalogue, members, active)
    for risk in normalise_risks(risk_types):
        _cover(draft, risk)
    _development(draft)
    _social_security(draft)
    return ordered(draft.added, draft.labour)


def provisional_measures(*, catalogue: Catalogue, codes: Iterable[str]) -> list[PlannedMeasure]:
    """rules §5.2: green-channel help for the household at once, before identification."""
    chosen: list[PlannedMeasure] = []
    for code in dict.fromkeys(codes):
        spec = catalogue.measures.get(code)
        if spec is None:
            continue
        chosen.append(
            PlannedMeasure(
                code, spec.category, "rules §5.2: green channel, assist first", None, True
            )
        )
    return chosen


def reassessment_measures(
    *,
    catalogue: Catalogue,
    level: str | None,
    new_risk_types: Iterable[str],
    provisional: Iterable[str],
    members: Sequence[Member],
    active: Sequence[PlannedMeasure],
) -> list[PlannedMeasure]:
    """rules §4 channel 4: what a monitoring object's plan gains from a reassessment.

    "green_channel": the provisional help at once (rules §5.2), then the new risks; "new_risk":
    the new risks, by the same rules as a new plan (§6.2-6.6); None: nothing. Nothing the plan
    holds is added again: provisional help is for the whole household, so a measure of that code
    the plan holds, for the household or a member, is already there to act on."""
    if level not in ("green_channel", "new_risk"):
        return []
    held = {m.code for m in active}
    given: list[PlannedMeasure] = []
    if level == "green_channel":
        for m in provisional_measures(catalogue=catalogue, codes=provisional):
            if m.code not in held:
                given.append(m)
                held.add(m.code)
    risks = normalise_risks(new_risk_types)
    if not risks:
        return given  # no new cause: no gap to fill (rules §6.2)
    gap = build_plan(
        catalogue=catalogue, risk_types=risks, members=members, active=[*active, *given]
    )
    return [*given, *gap]


def as_provisional(measure: PlannedMeasure) -> PlannedMeasure:
    """The same measure marked as given through the green channel."""
    return replace(measure, provisional=True)
