"""Assistance use cases: a case gets one plan."""

from __future__ import annotations

from uuid import uuid4

from sqlalchemy import insert, select

from services.assistance import rules
from services.assistance.config import AssistanceSettings
from services.assistance.models import plans
from shared.db import UnitOfWork
from shared.events import CaseOpened, Envelope, PlanCreated, new_event


async def on_case_opened(
    *, uow: UnitOfWork, event: Envelope[CaseOpened], settings: AssistanceSettings
) -> None:
    """rules §6: one plan per household case, measures filling the gap of each risk type."""
    case = event.payload
    exists = (await uow.execute(select(plans.c.id).where(plans.c.case_id == case.case_id))).first()
    if exists:
        return
    plan = PlanCreated(
        plan_id=str(uuid4()),
        case_id=case.case_id,
        village_code=case.village_code,
        measures=rules.initial_measures(case.risk_types),
        case_deadline=case.deadline,
    )
    await uow.execute(
        insert(plans).values(
            id=plan.plan_id,
            household_id=event.household_id,
            case_id=case.case_id,
            village_code=case.village_code,
            measures=plan.measures,
            created_at=uow.clock.now(),
        )
    )
    await uow.record(
        new_event(
            plan,
            household_id=event.household_id,
            source="assistance",
            correlation_id=event.correlation_id,
            clock=uow.clock,
        ),
        settings.topic("assistance"),
    )
