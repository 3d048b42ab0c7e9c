"""Assistance use cases for the end of a case: rejection, elimination and its roll-back."""

from __future__ import annotations

from sqlalchemy import update

from services.assistance import schedule
from services.assistance.catalogue import load_catalogue
from services.assistance.config import AssistanceSettings
from services.assistance.models import households, plans
from services.assistance.planner import build_plan, labour_class
from services.assistance.repository import (
    add_measures,
    as_planned,
    current_plan,
    plan_by_case,
    plan_measures,
    set_status,
)
from services.assistance.roster import assign_responsible, end_responsibility
from services.assistance.workflow import UNDER_WAY, end_on_elimination, roll_back
from shared.db import UnitOfWork
from shared.events import (
    CaseRejected,
    EliminationRolledBack,
    Envelope,
    Member,
    RiskEliminated,
)

SYSTEM = "assistance"


async def on_case_rejected(
    *, uow: UnitOfWork, event: Envelope[CaseRejected], settings: AssistanceSettings
) -> None:
    """rules §5.4: a rejected green channel is rolled back; help given stays as temporary aid.

    Only the plan of the rejected case: a rejected elimination case (rules §7.2) has no plan of
    its own, and the household stays monitored with its plan and cadre."""
    case = event.payload
    plan = await plan_by_case(uow, case.case_id)
    if plan is None or plan.status in ("rolled_back", "rejected"):
        return
    note = f"rules §5.4: case rejected at {case.step}: {case.reason}"
    for row in await plan_measures(uow, plan.id):
        change = roll_back(row.status)
        if change is None:
            continue
        to, recorded_as = change
        if to == row.status and recorded_as is None:
            continue
        await set_status(
            uow, row=row, to=to, actor=case.actor, note=note, settings=settings,
            correlation_id=event.correlation_id, recorded_as=recorded_as,
        )  # fmt: skip
    status = "rolled_back" if plan.status == "provisional" else "rejected"
    await uow.execute(
        update(plans).where(plans.c.id == plan.id).values(status=status, updated_at=uow.clock.now())
    )


async def on_risk_eliminated(
    *, uow: UnitOfWork, event: Envelope[RiskEliminated], settings: AssistanceSettings
) -> None:
    """rules §6.7/§7: measures end with the risk unless they outlive it; visits stop. A measure
    that outlives it stays in progress until an official records its end (a transition to
    completed when the loan contract, the post agreement or the school stage ends).

    The event names the elimination case (rules §7.2), not the identification case the plan
    belongs to: the plan is the household's (rules §6.1)."""
    catalogue = load_catalogue(settings.catalogue_path or None)
    plan = await current_plan(uow, event.household_id)
    if plan is None or plan.status == "closed":
        return
    for row in await plan_measures(uow, plan.id):
        spec = catalogue.measures.get(row.code)
        # rules §6.7: what outlives the risk is a loan, post or school stage already under way;
        # one never started has no contract or agreement to run out, and ends with the rest
        outlives = spec is not None and spec.outlives_elimination and row.status == "in_progress"
        to = end_on_elimination(row.status, outlives)
        if to is not None:
            await set_status(
                uow, row=row, to=to, actor=SYSTEM, note="rules §7: risk eliminated",
                settings=settings, correlation_id=event.correlation_id,
            )  # fmt: skip
    await uow.execute(
        update(plans)
        .where(plans.c.id == plan.id)
        .values(status="closed", updated_at=uow.clock.now())
    )
    await uow.execute(
        update(households)
        .where(households.c.household_id == event.household_id)
        .values(status="eliminated", next_visit_due=None, updated_at=uow.clock.now())
    )
    await end_responsibility(uow, household_id=event.household_id, reason="risk eliminated")


async def on_elimination_rolled_back(
    *, uow: UnitOfWork, event: Envelope[EliminationRolledBack], settings: AssistanceSettings
) -> None:
    """rules §7.4: the household is monitored again; its plan is refilled and a cadre assigned.

    The event names the elimination case, not the plan's: the plan is the household's (§6.1)."""
    case = event.payload
    plan = await current_plan(uow, event.household_id)
    if plan is None or plan.status != "closed":
        return
    members = [Member.model_validate(m) for m in plan.members or []]
    labour = labour_class(members)
    # the risk came back: help carried out before the elimination does not fill the gap now;
    # only what is still under way (a measure that outlived the elimination, §6.7) does
    rows = await plan_measures(uow, plan.id)
    active = [as_planned(r) for r in rows if r.status in UNDER_WAY]
    new = build_plan(
        catalogue=load_catalogue(settings.catalogue_path or None),
        risk_types=plan.risk_types or [],
        members=members,
        active=active,
    )
    await add_measures(
        uow, plan=plan, new=new, labour=labour, actor=SYSTEM, settings=settings,
        correlation_id=event.correlation_id,
    )  # fmt: skip
    await uow.execute(update(plans).where(plans.c.id == plan.id).values(status="active"))
    today = uow.today()
    await uow.execute(
        update(households)
        .where(households.c.household_id == event.household_id)
        .values(
            status="monitored", updated_at=uow.clock.now(),
            next_visit_due=schedule.next_due(today, interval_days=settings.visit_interval_days),
        )
    )  # fmt: skip
    await assign_responsible(
        uow, household_id=event.household_id, case_id=plan.case_id,
        village_code=case.village_code, settings=settings, correlation_id=event.correlation_id,
    )  # fmt: skip
