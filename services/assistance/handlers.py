"""Assistance use cases for `cases` events: plans, measures and the responsible cadre (rules §6)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from services.assistance import schedule, visiting
from services.assistance.catalogue import Catalogue, load_catalogue
from services.assistance.config import AssistanceSettings
from services.assistance.models import households, measures, plans
from services.assistance.opening import on_openings
from services.assistance.planner import (
    build_plan,
    labour_class,
    normalise_risks,
    ordered,
)
from services.assistance.repository import (
    add_measures,
    as_planned,
    carry_over,
    create_plan,
    current_plan,
    emit,
    plan_by_case,
    plan_measures,
)
from services.assistance.roster import assign_responsible
from shared.db import UnitOfWork
from shared.events import (
    CaseOpened,
    CaseStepCompleted,
    Envelope,
    GreenChannelOpened,
    HouseholdIdentified,
    PlanCreated,
)

SYSTEM = "assistance"
VILLAGE_ASSIGNED = "village_assigned"  # risk's step when a county places an unplaced case


def _catalogue(settings: AssistanceSettings) -> Catalogue:
    return load_catalogue(settings.catalogue_path or None)


async def on_case_opened(
    *, uow: UnitOfWork, event: Envelope[CaseOpened], settings: AssistanceSettings
) -> None:
    """A pending plan as soon as a case opens (see opening.on_openings)."""
    await on_openings(uow=uow, events=[event], settings=settings)


# plans not yet filled by an identification
_UNFILLED = ("pending", "provisional")


async def _plan_for(uow: UnitOfWork, *, household_id: str, case_id: str, village_code: str) -> Any:
    """The case's plan. Without one, the household's unfilled plan becomes the case's (rules
    §6.1, one plan per household): a reassessment that came first made it under its event's
    id (tracking.py). Else a new one."""
    plan = await plan_by_case(uow, case_id)
    if plan is None:
        held = await current_plan(uow, household_id)
        if held is not None and held.status in _UNFILLED:
            await uow.execute(update(plans).where(plans.c.id == held.id).values(case_id=case_id))
            return await plan_by_case(uow, case_id)
        await create_plan(
            uow, household_id=household_id, case_id=case_id, village_code=village_code,
            status="pending",
        )  # fmt: skip
        plan = await plan_by_case(uow, case_id)
    return plan


async def on_green_channel_opened(
    *, uow: UnitOfWork, event: Envelope[GreenChannelOpened], settings: AssistanceSettings
) -> None:
    """rules §5.2: provisional emergency help at once (see opening.on_openings)."""
    await on_openings(uow=uow, events=[event], settings=settings)


async def on_household_identified(
    *, uow: UnitOfWork, event: Envelope[HouseholdIdentified], settings: AssistanceSettings
) -> None:
    """rules §6: the household's plan fills exactly its gap; a responsible cadre is assigned."""
    case = event.payload
    catalogue = _catalogue(settings)
    plan = await _plan_for(
        uow, household_id=event.household_id, case_id=case.case_id, village_code=case.village_code
    )
    labour = labour_class(case.members)
    await carry_over(uow, plan=plan, actor=SYSTEM)
    active = [as_planned(r) for r in await plan_measures(uow, plan.id)]
    new = build_plan(
        catalogue=catalogue, risk_types=case.risk_types, members=case.members, active=active
    )
    was_active = plan.status == "active"
    # the household and its cadre first, so that whoever hears of the plan knows who answers
    codes = [m.code for m in ordered([*active, *new], labour)]
    await _monitor(uow, event=event, codes=codes, settings=settings)
    await assign_responsible(
        uow, household_id=event.household_id, case_id=case.case_id,
        village_code=case.village_code, settings=settings, correlation_id=event.correlation_id,
    )  # fmt: skip
    await add_measures(
        uow, plan=plan, new=new, labour=labour, actor=SYSTEM, settings=settings,
        correlation_id=event.correlation_id,
    )  # fmt: skip
    await uow.execute(
        update(plans)
        .where(plans.c.id == plan.id)
        .values(
            status="active", kind=case.kind, risk_types=normalise_risks(case.risk_types),
            members=[m.model_dump(mode="json") for m in case.members], labour_class=labour,
            catalogue_version=catalogue.version,
        )
    )  # fmt: skip
    if new or not was_active:
        created = PlanCreated(
            plan_id=plan.id, case_id=case.case_id, village_code=case.village_code, measures=codes
        )
        await emit(
            uow, created, household_id=event.household_id, correlation_id=event.correlation_id,
            settings=settings,
        )  # fmt: skip


async def _monitor(
    uow: UnitOfWork,
    *,
    event: Envelope[HouseholdIdentified],
    codes: list[str],
    settings: AssistanceSettings,
) -> None:
    """The household enters the visit schedule with its must-visit flags (rules §6.10-6.11)."""
    case = event.payload
    now = uow.clock.now()
    flags = visiting.must_visit(
        risk_types=case.risk_types, members=case.members, codes=codes,
        income=case.per_capita_income, previous=None, settings=settings,
    )  # fmt: skip
    values = {
        "case_id": case.case_id, "village_code": case.village_code,
        "township_code": case.village_code[:9], "kind": case.kind, "status": "monitored",
        "risk_types": normalise_risks(case.risk_types), "per_capita_income": case.per_capita_income,
        "must_visit": flags, "identified_at": event.occurred_at, "updated_at": now,
        "next_visit_due": schedule.next_due(
            settings.local_date(event.occurred_at), interval_days=settings.visit_interval_days
        ),
    }  # fmt: skip
    existing = (
        await uow.execute(
            select(households.c.household_id).where(households.c.household_id == event.household_id)
        )
    ).first()
    if existing is None:
        await uow.execute(households.insert().values(household_id=event.household_id, **values))
    else:
        await uow.execute(
            update(households)
            .where(households.c.household_id == event.household_id)
            .values(**values)
        )


async def on_case_step(
    *, uow: UnitOfWork, event: Envelope[CaseStepCompleted], settings: AssistanceSettings
) -> None:
    """A county placed a case that a department record opened without a village (its code was
    the county's placeholder): the case's plan, its measures and the household follow it, so
    the new village's officials reach them. Other steps change nothing here."""
    step = event.payload
    if step.step != VILLAGE_ASSIGNED:
        return
    plan = await plan_by_case(uow, step.case_id)
    if plan is not None:
        await uow.execute(
            update(plans).where(plans.c.id == plan.id).values(village_code=step.village_code)
        )
        await uow.execute(
            update(measures)
            .where(measures.c.plan_id == plan.id)
            .values(village_code=step.village_code)
        )
    await uow.execute(
        update(households)
        .where(households.c.case_id == step.case_id)
        .values(village_code=step.village_code, township_code=step.village_code[:9])
    )
