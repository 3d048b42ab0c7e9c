"""Plans for opening cases: CaseOpened and GreenChannelOpened, many at once (rules §5.2, §6).

A department feed opens thousands of cases in minutes, nearly all through the green channel.
Handled one by one, each case cost a dozen statements; here a run of openings is read with two
queries, decided in memory in event order, and written with one statement per table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import bindparam, select, update

from services.assistance import rules
from services.assistance.catalogue import load_catalogue
from services.assistance.config import AssistanceSettings
from services.assistance.models import measure_history, measures, plans
from services.assistance.planner import category_rank, normalise_risks, provisional_measures
from services.assistance.repository import MOVE_MEASURE, assistance_event
from services.assistance.workflow import ACTIVE
from shared.db import COPY_FROM, UnitOfWork, bulk_insert, one_of
from shared.events import CaseOpened, Envelope, GreenChannelOpened, MeasureAssigned, PlanCreated

OPENINGS = ("CaseOpened", "GreenChannelOpened")
SYSTEM = "assistance"


@dataclass
class _Measure:
    id: str
    code: str
    category: str
    reason: str
    person_id_hash: str | None
    provisional: bool
    position: int
    stored_position: int | None  # None: new in this run


@dataclass
class _Plan:
    id: str
    case_id: str
    household_id: str
    village_code: str
    status: str
    codes: list[str]
    risk_types: list[str] | None
    active: list[_Measure] = field(default_factory=list)
    new: bool = False  # inserted by this run
    changed: bool = False  # an existing plan this run updates


async def on_openings(
    *, uow: UnitOfWork, events: Sequence[Envelope[Any]], settings: AssistanceSettings
) -> None:
    """Pending plans for opened cases and provisional help for green-channel ones, in order.

    CaseOpened: a pending plan with one suggested measure per risk (codes only), unless the
    case has a plan. GreenChannelOpened: the catalogue's provisional measures the plan does
    not hold yet, the plan marked provisional (only while pending or provisional).
    """
    if not events:
        return
    now = uow.clock.now()
    found = await _load(uow, {e.payload.case_id for e in events})
    outgoing: list[Envelope[Any]] = []
    history: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event.payload, CaseOpened):
            _open(found, event, outgoing, uow)
        else:
            _green(found, event, outgoing, history, uow, settings, now)
    await _store(uow, list(found.values()), history, now)
    topic = settings.topic("assistance")
    await uow.record_rows([(e, topic) for e in outgoing])


# built once, the ids bound when they run (shared.db.one_of)
_PLANS = select(plans).where(one_of(plans.c.case_id, "case_ids"))
_ACTIVE_MEASURES = (
    select(measures)
    .where(one_of(measures.c.plan_id, "plan_ids"), measures.c.status.in_(ACTIVE))
    .order_by(measures.c.plan_id, measures.c.position)
)


async def _load(uow: UnitOfWork, case_ids: set[str]) -> dict[str, _Plan]:
    """The plans of these cases (by case id), with their active measures in plan order."""
    rows = (await uow.execute(_PLANS, {"case_ids": list(case_ids)})).all()
    found = {
        r.case_id: _Plan(
            r.id, r.case_id, r.household_id, r.village_code, r.status,
            list(r.measures or []), r.risk_types,
        )
        for r in rows
    }  # fmt: skip
    if found:
        by_id = {p.id: p for p in found.values()}
        held = await uow.execute(_ACTIVE_MEASURES, {"plan_ids": list(by_id)})
        for m in held:
            by_id[m.plan_id].active.append(
                _Measure(
                    m.id, m.code, m.category, m.reason, m.person_id_hash, m.provisional,
                    m.position, m.position,
                )
            )  # fmt: skip
    return found


def _new_plan(found: dict[str, _Plan], event: Envelope[Any], codes: list[str]) -> _Plan:
    case = event.payload
    plan = _Plan(
        str(uuid4()), case.case_id, event.household_id, case.village_code, "pending", codes, None
    )
    plan.new = True
    found[case.case_id] = plan
    return plan


def _open(
    found: dict[str, _Plan],
    event: Envelope[CaseOpened],
    outgoing: list[Envelope[Any]],
    uow: UnitOfWork,
) -> None:
    """A pending plan as soon as a case opens, so the village hears of it with the deadline;
    its measures are only suggestions until identification (or the green channel) fills it."""
    case = event.payload
    if case.case_id in found:
        return
    suggested = rules.initial_measures(case.risk_types)
    plan = _new_plan(found, event, suggested)
    plan.risk_types = normalise_risks(case.risk_types)
    created = PlanCreated(
        plan_id=plan.id, case_id=case.case_id, village_code=case.village_code,
        measures=suggested, case_deadline=case.deadline,
    )  # fmt: skip
    outgoing.append(_event(uow, created, event))


def _green(
    found: dict[str, _Plan],
    event: Envelope[GreenChannelOpened],
    outgoing: list[Envelope[Any]],
    history: list[dict[str, Any]],
    uow: UnitOfWork,
    settings: AssistanceSettings,
    now: datetime,
) -> None:
    """rules §5.2: provisional emergency help (temporary assistance, medical aid) at once."""
    case = event.payload
    plan = found.get(case.case_id) or _new_plan(found, event, [])
    if plan.status not in ("pending", "provisional"):
        return
    held = {(m.code, m.person_id_hash) for m in plan.active}
    catalogue = load_catalogue(settings.catalogue_path or None)
    wanted = provisional_measures(catalogue=catalogue, codes=case.provisional_measures)
    new = [m for m in wanted if m.key not in held]
    for n, m in enumerate(new, start=1):
        measure = _Measure(
            str(uuid4()), m.code, m.category, m.reason, m.person_id_hash, m.provisional,
            10_000 + n, None,
        )  # fmt: skip
        plan.active.append(measure)
        history.append(
            {"measure_id": measure.id, "from_status": None, "to_status": "planned",
             "at": now, "actor": SYSTEM, "note": m.reason}
        )  # fmt: skip
        assigned = MeasureAssigned(
            measure_id=measure.id, plan_id=plan.id, code=m.code, category=m.category,
            person_id_hash=m.person_id_hash, reason=m.reason,
        )  # fmt: skip
        outgoing.append(_event(uow, assigned, event))
    # rules §6.3: the plan in working order (labour unknown before identification)
    plan.active.sort(key=lambda m: category_rank(m.category, "unknown"))
    for position, measure in enumerate(plan.active):
        measure.position = position
    plan.codes = [m.code for m in plan.active]
    plan.status = "provisional"
    plan.risk_types = normalise_risks(case.risk_types)
    plan.changed = not plan.new
    if new:
        created = PlanCreated(
            plan_id=plan.id, case_id=case.case_id, village_code=case.village_code,
            measures=[m.code for m in new], case_deadline=case.paperwork_due, provisional=True,
        )  # fmt: skip
        outgoing.append(_event(uow, created, event))


def _event(uow: UnitOfWork, payload: Any, cause: Envelope[Any]) -> Envelope[Any]:
    return assistance_event(
        uow, payload, household_id=cause.household_id, correlation_id=cause.correlation_id
    )


async def _store(
    uow: UnitOfWork, touched: list[_Plan], history: list[dict[str, Any]], now: datetime
) -> None:
    """One statement per table: new plans, changed plans, new measures, moved measures, and
    the new measures' history."""
    new_plans = [p for p in touched if p.new]
    if new_plans:
        await bulk_insert(
            uow,
            plans,
            [
                {"id": p.id, "household_id": p.household_id, "case_id": p.case_id,
                 "village_code": p.village_code, "measures": p.codes, "created_at": now,
                 "updated_at": now, "status": p.status, "risk_types": p.risk_types}
                for p in new_plans
            ],
            copy_from=COPY_FROM,
        )  # fmt: skip
    changed = [p for p in touched if p.changed]
    if changed:
        await uow.execute(
            UPDATE_PLAN,
            [
                {"b_id": p.id, "b_status": p.status, "b_measures": p.codes,
                 "b_risk_types": p.risk_types, "b_updated_at": now}
                for p in changed
            ],
        )  # fmt: skip
    added = [(p, m) for p in touched for m in p.active if m.stored_position is None]
    if added:
        await bulk_insert(
            uow,
            measures,
            [
                {"id": m.id, "plan_id": p.id, "household_id": p.household_id,
                 "village_code": p.village_code, "code": m.code, "category": m.category,
                 "person_id_hash": m.person_id_hash, "reason": m.reason,
                 "provisional": m.provisional, "position": m.position, "status": "planned",
                 "created_at": now, "updated_at": now, "updated_by": SYSTEM}
                for p, m in added
            ],
            copy_from=COPY_FROM,
        )  # fmt: skip
        await bulk_insert(uow, measure_history, history, copy_from=COPY_FROM)
    moved = [
        {"b_id": m.id, "b_position": m.position}
        for p in touched
        for m in p.active
        if m.stored_position is not None and m.stored_position != m.position
    ]
    if moved:
        await uow.execute(MOVE_MEASURE, moved)


UPDATE_PLAN = (
    update(plans)
    .where(plans.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        measures=bindparam("b_measures"),
        risk_types=bindparam("b_risk_types"),
        updated_at=bindparam("b_updated_at"),
    )
)
