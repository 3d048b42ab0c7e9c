"""Key-object tracking (rules §4 channel 4): a monitoring object's plan fills a new gap."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from services.assistance import visiting
from services.assistance.catalogue import load_catalogue
from services.assistance.config import AssistanceSettings
from services.assistance.models import households, plans
from services.assistance.planner import (
    labour_class,
    normalise_risks,
    ordered,
    reassessment_measures,
)
from services.assistance.repository import (
    add_measures,
    as_planned,
    create_plan,
    current_plan,
    emit,
    plan_by_case,
    plan_measures,
)
from shared.db import UnitOfWork
from shared.events import Envelope, Member, MonitoredHouseholdReassessed, PlanCreated

SYSTEM = "assistance"


async def on_household_reassessed(
    *, uow: UnitOfWork, event: Envelope[MonitoredHouseholdReassessed], settings: AssistanceSettings
) -> None:
    """rules §4 channel 4: a new signal about a monitoring object. "new_risk": its plan fills
    the new gap by the rules of a new plan (§6.2-6.6); "green_channel": provisional help at once
    (§5.2) as well; None: nothing. The responsible cadre stays; nothing held is added twice."""
    found = event.payload
    if found.level is None:
        return
    plan = await current_plan(uow, event.household_id)
    if plan is None:
        plan = await _new_plan(uow, event)
    members = [Member.model_validate(m) for m in plan.members or []]
    labour = labour_class(members)
    active = [as_planned(r) for r in await plan_measures(uow, plan.id)]
    new = reassessment_measures(
        catalogue=load_catalogue(settings.catalogue_path or None), level=found.level,
        new_risk_types=found.new_risk_types, provisional=found.provisional_measures,
        members=members, active=active,
    )  # fmt: skip
    await add_measures(
        uow, plan=plan, new=new, labour=labour, actor=SYSTEM, settings=settings,
        correlation_id=event.correlation_id,
    )  # fmt: skip
    risk_types = normalise_risks([*(plan.risk_types or []), *found.new_risk_types])
    # a plan still pending (identification not heard of yet) holds green-channel help now
    provisional = found.level == "green_channel" and plan.status == "pending"
    await uow.execute(
        update(plans)
        .where(plans.c.id == plan.id)
        .values(
            risk_types=risk_types, updated_at=uow.clock.now(),
            status="provisional" if provisional else plan.status,
        )
    )  # fmt: skip
    codes = [m.code for m in ordered([*active, *new], labour)]
    await _track(
        uow, event=event, risk_types=risk_types, members=members, codes=codes, settings=settings
    )
    if new:
        created = PlanCreated(
            plan_id=plan.id, case_id=plan.case_id, village_code=plan.village_code,
            measures=codes, provisional=found.level == "green_channel",
        )  # fmt: skip
        await emit(
            uow, created, household_id=event.household_id, correlation_id=event.correlation_id,
            settings=settings,
        )  # fmt: skip


async def _new_plan(uow: UnitOfWork, event: Envelope[MonitoredHouseholdReassessed]) -> Any:
    """No plan to fill (events out of order, a plan never made): one is made, as for a green
    channel opened before its case (opening.py), under the case the household is monitored
    under when assistance knows it, else under the event's id, so the event is never lost."""
    known = (
        await uow.execute(
            select(households.c.case_id).where(households.c.household_id == event.household_id)
        )
    ).first()
    case_id = known.case_id if known is not None else str(event.event_id)
    if await plan_by_case(uow, case_id) is not None:  # that case's plan was rejected
        case_id = str(event.event_id)
    await create_plan(
        uow, household_id=event.household_id, case_id=case_id,
        village_code=event.payload.village_code, status="pending",
    )  # fmt: skip
    return await plan_by_case(uow, case_id)


async def _track(
    uow: UnitOfWork,
    *,
    event: Envelope[MonitoredHouseholdReassessed],
    risk_types: list[str],
    members: list[Member],
    codes: list[str],
    settings: AssistanceSettings,
) -> None:
    """The monitored household carries its new risks; rules §6.11 flags they bring are added
    (those set by a visit, like falling income, stay)."""
    row = (
        await uow.execute(select(households).where(households.c.household_id == event.household_id))
    ).first()
    if row is None:
        return
    flags = visiting.must_visit(
        risk_types=risk_types, members=members, codes=codes, income=row.per_capita_income,
        previous=None, settings=settings,
    )  # fmt: skip
    held = list(row.must_visit or [])
    await uow.execute(
        update(households)
        .where(households.c.household_id == event.household_id)
        .values(
            risk_types=normalise_risks([*row.risk_types, *risk_types]),
            must_visit=[*held, *(f for f in flags if f not in held)],
            updated_at=uow.clock.now(),
        )
    )
