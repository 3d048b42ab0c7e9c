"""Risk use cases: a signal opens the household's case or joins the open one."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from sqlalchemy import insert, select, update

from services.risk import rules
from services.risk.config import RiskSettings
from services.risk.models import case_signals, cases
from shared.db import UnitOfWork
from shared.events import CaseMerged, CaseOpened, DeclarationSubmitted, Envelope, new_event


async def on_declaration(
    *, uow: UnitOfWork, event: Envelope[DeclarationSubmitted], settings: RiskSettings
) -> None:
    """rules §4: a self-declaration opens a case (the clock starts) or merges into the open one."""
    signal = event.payload
    now = uow.clock.now()
    open_case = (
        await uow.execute(
            select(cases.c.id, cases.c.risk_types).where(
                cases.c.household_id == event.household_id, cases.c.status == "open"
            )
        )
    ).first()
    outgoing: Any
    if open_case is not None:
        case_id = open_case.id
        risk_types = rules.merged_risk_types(open_case.risk_types, signal.risk_types)
        await uow.execute(
            update(cases).where(cases.c.id == case_id).values(risk_types=risk_types, updated_at=now)
        )
        outgoing = CaseMerged(
            case_id=case_id, risk_types=risk_types, submission_id=signal.submission_id
        )
    else:
        case_id = str(uuid4())
        opened_at = event.occurred_at
        outgoing = CaseOpened(
            case_id=case_id,
            village_code=signal.village_code,
            risk_types=sorted(set(signal.risk_types)),
            channel=signal.channel,
            opened_at=opened_at,
            deadline=rules.identification_deadline(opened_at, days=settings.identification_days),
            home_visit_due=rules.add_working_days(opened_at, settings.home_visit_working_days),
            submission_id=signal.submission_id,
        )
        await uow.execute(
            insert(cases).values(
                id=case_id,
                household_id=event.household_id,
                village_code=signal.village_code,
                status="open",
                channel=signal.channel,
                risk_types=outgoing.risk_types,
                opened_at=opened_at,
                deadline=outgoing.deadline,
                home_visit_due=outgoing.home_visit_due,
                updated_at=now,
            )
        )
    await uow.execute(
        insert(case_signals).values(
            case_id=case_id,
            event_id=str(event.event_id),
            event_type=event.event_type,
            submission_id=signal.submission_id,
            received_at=now,
            payload=signal.model_dump(mode="json"),
        )
    )
    await uow.record(
        new_event(
            outgoing,
            household_id=event.household_id,
            source="risk",
            correlation_id=event.correlation_id,
            clock=uow.clock,
        ),
        settings.topic("cases"),
    )
