"""Visit use cases: record a visit, and warn about missed monthly visits (rules §6.10-6.11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from services.assistance import schedule
from services.assistance.config import AssistanceSettings
from services.assistance.models import (
    households,
    measures,
    plans,
    responsibilities,
    visit_alerts,
    visits,
)
from services.assistance.repository import emit
from services.assistance.schemas import VisitIn
from services.assistance.workflow import ACTIVE
from shared.db import UnitOfWork
from shared.events import IncomeUpdated, Member, VisitOverdue, VisitRecorded


def must_visit(
    *,
    risk_types: list[str],
    members: list[Member],
    codes: list[str],
    income: float | None,
    previous: float | None,
    settings: AssistanceSettings,
) -> list[str]:
    """rules §6.11 flags with the configured low-income line."""
    return schedule.must_visit_flags(
        risk_types=risk_types, members=members, measure_codes=codes, per_capita_income=income,
        previous_income=previous, low_income_yuan=settings.must_visit_low_income_yuan,
    )  # fmt: skip


class VisitRefused(Exception):
    """A visit that cannot be recorded: the field at fault and why."""

    def __init__(self, field: str, problem: str, *, status_code: int = 422) -> None:
        super().__init__(f"{field}: {problem}")
        self.status_code = status_code


async def responsible_for(uow: UnitOfWork, household_id: str) -> str | None:
    """The household's current responsible cadre."""
    row = (
        await uow.execute(
            select(responsibilities.c.cadre_id).where(
                responsibilities.c.household_id == household_id,
                responsibilities.c.ended_at.is_(None),
            )
        )
    ).first()
    return str(row.cadre_id) if row else None


def _not_theirs(household_id: str, responsible: str | None) -> str:
    if responsible is None:
        return (
            f"{household_id} has no responsible cadre yet (rules §6.8); the cadre assigned to it"
            " records its visits"
        )
    return f"{household_id} is in the care of cadre {responsible}, who alone records its visits"


async def record_visit(
    uow: UnitOfWork, *, visit: VisitIn, cadre_id: str, settings: AssistanceSettings
) -> tuple[str, bool, str]:
    """Store the responsible cadre's visit, move the schedule on, emit VisitRecorded and (if it
    changed) IncomeUpdated.

    Returns (visit id, whether income changed, village code).
    """
    if visit.visited_on > uow.today():
        raise VisitRefused("visited_on", "is in the future (rules §9.5)")
    household = (
        await uow.execute(select(households).where(households.c.household_id == visit.household_id))
    ).first()
    if household is None or household.status != "monitored":
        raise VisitRefused(
            "household_id", f"{visit.household_id} is not a monitored household", status_code=404
        )
    # rules §6.10: the responsible cadre's own visits keep the schedule; another's would hide
    # the visits they missed (no one records on their behalf: README, Visits)
    responsible = await responsible_for(uow, visit.household_id)
    if responsible != cadre_id:
        raise VisitRefused(
            "household_id", _not_theirs(visit.household_id, responsible), status_code=403
        )
    visit_id = str(uuid4())
    now = uow.clock.now()
    await uow.execute(
        insert(visits).values(
            id=visit_id, household_id=visit.household_id, cadre_id=cadre_id,
            visited_on=visit.visited_on, per_capita_income=visit.per_capita_income,
            guarantees=visit.guarantees.model_dump(mode="json"),
            new_risk_types=visit.new_risk_types, note=visit.note, recorded_at=now,
        )
    )  # fmt: skip
    previous = household.per_capita_income
    changed = visit.per_capita_income is not None and visit.per_capita_income != previous
    last = max(filter(None, [household.last_visit_on, visit.visited_on]))
    flags = must_visit(
        risk_types=[*household.risk_types, *visit.new_risk_types],
        members=await _members(uow, visit.household_id),
        codes=await _active_codes(uow, visit.household_id),
        income=visit.per_capita_income if changed else previous,
        previous=previous if changed else None, settings=settings,
    )  # fmt: skip
    await uow.execute(
        update(households)
        .where(households.c.household_id == visit.household_id)
        .values(
            last_visit_on=last, updated_at=now, must_visit=flags,
            next_visit_due=schedule.next_due(last, interval_days=settings.visit_interval_days),
            per_capita_income=visit.per_capita_income if changed else previous,
        )
    )  # fmt: skip
    recorded = VisitRecorded(
        visit_id=visit_id, cadre_id=cadre_id, visited_on=visit.visited_on,
        per_capita_income=visit.per_capita_income, guarantees=visit.guarantees,
        new_risk_types=[*visit.new_risk_types], note=visit.note,
    )  # fmt: skip
    correlation = f"visit:{visit_id}"
    await emit(
        uow, recorded, household_id=visit.household_id, correlation_id=correlation,
        settings=settings,
    )  # fmt: skip
    if changed and visit.per_capita_income is not None:
        income = IncomeUpdated(
            per_capita_income=visit.per_capita_income, recorded_on=visit.visited_on, source="visit"
        )
        await emit(
            uow, income, household_id=visit.household_id, correlation_id=correlation,
            settings=settings,
        )  # fmt: skip
    return visit_id, changed, str(household.village_code)


async def _members(uow: UnitOfWork, household_id: str) -> list[Member]:
    row = (
        await uow.execute(
            select(plans.c.members)
            .where(plans.c.household_id == household_id, plans.c.status == "active")
            .order_by(plans.c.created_at.desc())
        )
    ).first()
    return [Member.model_validate(m) for m in (row.members or [])] if row else []


_ACTIVE_CODES = select(measures.c.code).where(
    measures.c.household_id == bindparam("household_id"), measures.c.status.in_(ACTIVE)
)  # built once (shared.db.one_of says why)


async def _active_codes(uow: UnitOfWork, household_id: str) -> list[str]:
    rows = await uow.execute(_ACTIVE_CODES, {"household_id": household_id})
    return [r.code for r in rows]


async def raise_overdue_visits(
    *, uow_factory: Callable[[], UnitOfWork], settings: AssistanceSettings
) -> int:
    """rules §6.10: warn the cadre, then the township, exactly once per household/month/level.

    The unique (household, month, level) row makes a second run, or a second replica, a no-op.
    """
    raised = 0
    async with uow_factory() as uow:
        today = uow.today()
        late = (
            await uow.execute(
                select(households, responsibilities.c.cadre_id)
                .outerjoin(
                    responsibilities,
                    and_(
                        responsibilities.c.household_id == households.c.household_id,
                        responsibilities.c.ended_at.is_(None),
                    ),
                )
                .where(households.c.status == "monitored", households.c.next_visit_due < today)
                .order_by(households.c.household_id)
            )
        ).all()
    for row in late:
        async with uow_factory() as uow:
            raised += await _warn(uow, row=row, settings=settings)
    return raised


async def _warn(uow: UnitOfWork, *, row: Any, settings: AssistanceSettings) -> int:
    today = uow.today()
    missed = schedule.latest_missed(
        row.next_visit_due, today, interval_days=settings.visit_interval_days
    )
    if missed is None:
        return 0
    raised = 0
    levels = schedule.overdue_levels(
        missed, today, escalation_days=settings.visit_township_escalation_days
    )
    for level in levels:
        if not await _first_alert(uow, row=row, missed=missed, level=level):
            continue
        overdue = VisitOverdue(
            cadre_id=row.cadre_id or "", village_code=row.village_code, due_on=missed,
            level=level,  # type: ignore[arg-type]
        )  # fmt: skip
        await emit(
            uow, overdue, household_id=row.household_id,
            correlation_id=f"visit-due:{row.household_id}:{schedule.period(missed)}",
            settings=settings,
        )  # fmt: skip
        raised += 1
    return raised


async def _first_alert(uow: UnitOfWork, *, row: Any, missed: Any, level: str) -> bool:
    dialect = sqlite if uow.conn.dialect.name == "sqlite" else postgresql
    stmt = (
        dialect.insert(visit_alerts)
        .values(
            household_id=row.household_id, period=schedule.period(missed), level=level,
            cadre_id=row.cadre_id, due_on=missed, created_at=uow.clock.now(),
        )
        .on_conflict_do_nothing()
    )  # fmt: skip
    result = await uow.execute(stmt)
    return bool(result.rowcount == 1)
