"""Plans and measures in the database, behind a few small functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import uuid4

from sqlalchemy import bindparam, insert, select, update

from services.assistance.config import AssistanceSettings
from services.assistance.models import measure_history, measures, plans
from services.assistance.planner import LabourClass, PlannedMeasure, category_rank
from services.assistance.workflow import ACTIVE
from shared.db import UnitOfWork
from shared.events import Envelope, MeasureAssigned, MeasureCompleted, Payload, new_event


def assistance_event(
    uow: UnitOfWork, payload: Payload, *, household_id: str, correlation_id: str
) -> Envelope[Any]:
    """An outgoing assistance event (not yet recorded)."""
    return new_event(
        payload,
        household_id=household_id,
        source="assistance",
        correlation_id=correlation_id,
        clock=uow.clock,
    )


async def emit(
    uow: UnitOfWork,
    payload: Payload,
    *,
    household_id: str,
    correlation_id: str,
    settings: AssistanceSettings,
) -> None:
    """Record an assistance event on the outbox (published after commit)."""
    event = assistance_event(uow, payload, household_id=household_id, correlation_id=correlation_id)
    await uow.record(event, settings.topic("assistance"))


async def plan_by_case(uow: UnitOfWork, case_id: str) -> Any:
    """The plan of a case, or None."""
    return (await uow.execute(select(plans).where(plans.c.case_id == case_id))).first()


# rules §6.1: one plan per household; a rejected or rolled-back plan is no longer its plan
ENDED_PLANS = ("rejected", "rolled_back")
_CURRENT_PLAN = (
    select(plans)
    .where(plans.c.household_id == bindparam("household_id"), plans.c.status.not_in(ENDED_PLANS))
    .order_by(plans.c.created_at.desc(), plans.c.id.desc())
    .limit(1)
)


async def current_plan(uow: UnitOfWork, household_id: str) -> Any:
    """The household's plan (rules §6.1), or None. For events whose case is not the plan's:
    risk decides an elimination on a case of its own, and a reassessment has no case."""
    return (await uow.execute(_CURRENT_PLAN, {"household_id": household_id})).first()


async def create_plan(
    uow: UnitOfWork,
    *,
    household_id: str,
    case_id: str,
    village_code: str,
    status: str,
    measures: Sequence[str] = (),
    risk_types: Sequence[str] | None = None,
) -> str:
    """A new plan (empty unless suggested measures are given); returns its id."""
    plan_id = str(uuid4())
    now = uow.clock.now()
    extra = {} if risk_types is None else {"risk_types": list(risk_types)}
    await uow.execute(
        insert(plans).values(
            id=plan_id, household_id=household_id, case_id=case_id, village_code=village_code,
            measures=list(measures), created_at=now, updated_at=now, status=status, **extra,
        )
    )  # fmt: skip
    return plan_id


# a plan's measures in plan order, all of them or the active ones; built once (an IN of
# constants built per call leaves reference cycles for the collector, shared.db.one_of)
_PLAN_MEASURES = (
    select(measures).where(measures.c.plan_id == bindparam("plan_id")).order_by(measures.c.position)
)
_ACTIVE_PLAN_MEASURES = _PLAN_MEASURES.where(measures.c.status.in_(ACTIVE))


async def plan_measures(uow: UnitOfWork, plan_id: str, *, active_only: bool = True) -> list[Any]:
    """The measures of a plan in plan order."""
    query = _ACTIVE_PLAN_MEASURES if active_only else _PLAN_MEASURES
    return list((await uow.execute(query, {"plan_id": plan_id})).all())


def as_planned(row: Any) -> PlannedMeasure:
    """A stored measure as the pure rules see it."""
    return PlannedMeasure(row.code, row.category, row.reason, row.person_id_hash, row.provisional)


async def add_measures(
    uow: UnitOfWork,
    *,
    plan: Any,
    new: Sequence[PlannedMeasure],
    labour: LabourClass,
    actor: str,
    settings: AssistanceSettings,
    correlation_id: str,
) -> list[str]:
    """Insert measures as planned, emit MeasureAssigned for each, and re-order the plan."""
    now = uow.clock.now()
    ids = [str(uuid4()) for _ in new]
    if new:
        # one executemany per table and one outbox insert, however many measures the plan gets
        await uow.execute(
            insert(measures),
            [
                {"id": measure_id, "plan_id": plan.id, "household_id": plan.household_id,
                 "village_code": plan.village_code, "code": m.code, "category": m.category,
                 "person_id_hash": m.person_id_hash, "reason": m.reason,
                 "provisional": m.provisional, "position": 10_000 + n, "status": "planned",
                 "created_at": now, "updated_at": now, "updated_by": actor}
                for n, (measure_id, m) in enumerate(zip(ids, new, strict=True), start=1)
            ],
        )  # fmt: skip
        await uow.execute(
            insert(measure_history),
            [
                {"measure_id": measure_id, "from_status": None, "to_status": "planned",
                 "at": now, "actor": actor, "note": m.reason}
                for measure_id, m in zip(ids, new, strict=True)
            ],
        )  # fmt: skip
        topic = settings.topic("assistance")
        events = []
        for measure_id, m in zip(ids, new, strict=True):
            assigned = MeasureAssigned(
                measure_id=measure_id, plan_id=plan.id, code=m.code, category=m.category,
                person_id_hash=m.person_id_hash, reason=m.reason,
            )  # fmt: skip
            envelope = assistance_event(
                uow, assigned, household_id=plan.household_id, correlation_id=correlation_id
            )
            events.append((envelope, topic))
        await uow.record_rows(events)
    await reorder(uow, plan_id=plan.id, labour=labour)
    return ids


# measures under way on a household's closed plans (what outlived its elimination, rules §6.7)
_OUTLIVED = (
    select(measures.c.id, measures.c.plan_id, measures.c.status)
    .join(plans, plans.c.id == measures.c.plan_id)
    .where(
        measures.c.household_id == bindparam("household_id"),
        measures.c.plan_id != bindparam("plan_id"),
        measures.c.status == "in_progress",
        plans.c.status == "closed",
    )
    .order_by(measures.c.position)
)


async def carry_over(uow: UnitOfWork, *, plan: Any, actor: str) -> int:
    """rules §6.1, §6.7: a household identified again after its elimination has one plan, the
    new one; the measures still under way on its closed plan (a loan, a post, education aid
    that outlived the elimination) join it as they stand, so it shows all the help the
    household gets and fills only the gap they leave. Returns how many moved."""
    rows = (
        await uow.execute(_OUTLIVED, {"household_id": plan.household_id, "plan_id": plan.id})
    ).all()
    if not rows:
        return 0
    now = uow.clock.now()
    await uow.execute(
        update(measures).where(measures.c.id == bindparam("b_id")).values(
            plan_id=plan.id, position=bindparam("b_position"), updated_at=now, updated_by=actor
        ),
        [{"b_id": r.id, "b_position": 20_000 + n} for n, r in enumerate(rows)],
    )  # fmt: skip
    await uow.execute(
        insert(measure_history),
        [
            {"measure_id": r.id, "from_status": r.status, "to_status": r.status, "at": now,
             "actor": actor, "note": f"carried over from plan {r.plan_id}"}
            for r in rows
        ],
    )  # fmt: skip
    return len(rows)


# a measure's new place in its plan, run with a list of {b_id, b_position}
MOVE_MEASURE = (
    update(measures)
    .where(measures.c.id == bindparam("b_id"))
    .values(position=bindparam("b_position"))
)


async def reorder(uow: UnitOfWork, *, plan_id: str, labour: LabourClass) -> list[str]:
    """rules §6.3: store the plan in working order; the plan row keeps the list of codes."""
    rows = await plan_measures(uow, plan_id)
    # the same stable sort as planner.ordered, applied to the stored rows
    order = sorted(rows, key=lambda r: category_rank(r.category, labour))
    moved = [
        {"b_id": row.id, "b_position": position}
        for position, row in enumerate(order)
        if row.position != position
    ]
    if moved:
        await uow.execute(MOVE_MEASURE, moved)
    codes = [r.code for r in order]
    await uow.execute(
        update(plans)
        .where(plans.c.id == plan_id)
        .values(measures=codes, updated_at=uow.clock.now())
    )
    return codes


async def set_status(
    uow: UnitOfWork,
    *,
    row: Any,
    to: str,
    actor: str,
    note: str,
    settings: AssistanceSettings,
    correlation_id: str,
    recorded_as: str | None = None,
) -> None:
    """Move a measure to `to`, keep who/when/why, and emit MeasureCompleted on completion."""
    now = uow.clock.now()
    today = uow.today()
    values: dict[str, Any] = {"status": to, "updated_at": now, "updated_by": actor}
    if to == "in_progress":
        values["started_on"] = today
    elif to == "completed":
        values["completed_on"] = today
    elif to == "cancelled":
        values["cancelled_on"] = today
    if recorded_as:
        values["recorded_as"] = recorded_as
    await uow.execute(update(measures).where(measures.c.id == row.id).values(**values))
    await uow.execute(
        insert(measure_history).values(
            measure_id=row.id, from_status=row.status, to_status=to, at=now, actor=actor, note=note
        )
    )
    if to == "completed" and row.status != "completed":
        completed = MeasureCompleted(
            measure_id=row.id, plan_id=row.plan_id, code=row.code, completed_on=today
        )
        await emit(
            uow, completed, household_id=row.household_id, correlation_id=correlation_id,
            settings=settings,
        )  # fmt: skip
