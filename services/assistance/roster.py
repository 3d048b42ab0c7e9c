"""Cadre roster use cases: register, leave, assign and reassign responsible cadres (rules §6)."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import and_, func, insert, select, update

from services.assistance.assignment import CadreLoad, choose_cadre, township_of
from services.assistance.config import AssistanceSettings
from services.assistance.models import cadres, households, responsibilities
from services.assistance.repository import emit
from services.assistance.schemas import CadreIn
from shared.db import UnitOfWork
from shared.events import CadreAssigned, CadreRegistered

Outcome = Literal["created", "updated", "unchanged"]


def cadre_key(cadre_id: str) -> str:
    """Roster events are keyed by cadre, so one cadre's changes keep their order."""
    return f"cadre:{cadre_id}"


async def cadre_loads(uow: UnitOfWork, township_code: str) -> list[CadreLoad]:
    """Active cadres of a township with the number of households each is responsible for."""
    if uow.conn.dialect.name == "postgresql":
        # two consumers assigning in one township at once must not both fill the last place
        await uow.execute(
            select(cadres.c.id)
            .where(cadres.c.township_code == township_code)
            .order_by(cadres.c.id)
            .with_for_update()
        )
    open_count = (
        select(responsibilities.c.cadre_id, func.count().label("load"))
        .where(responsibilities.c.ended_at.is_(None))
        .group_by(responsibilities.c.cadre_id)
        .subquery()
    )
    rows = await uow.execute(
        select(cadres, func.coalesce(open_count.c.load, 0).label("load"))
        .outerjoin(open_count, open_count.c.cadre_id == cadres.c.id)
        .where(cadres.c.township_code == township_code, cadres.c.active.is_(True))
    )
    return [
        CadreLoad(r.id, r.rank, r.township_code, tuple(r.village_codes), int(r.load)) for r in rows
    ]


async def assign_responsible(
    uow: UnitOfWork,
    *,
    household_id: str,
    case_id: str,
    village_code: str,
    settings: AssistanceSettings,
    correlation_id: str,
    previous: str | None = None,
    exclude: frozenset[str] = frozenset(),
) -> str | None:
    """rules §6.8: give the household a responsible cadre unless it has one; None if none fits."""
    current = (
        await uow.execute(
            select(responsibilities.c.cadre_id).where(
                responsibilities.c.household_id == household_id,
                responsibilities.c.ended_at.is_(None),
            )
        )
    ).first()
    if current is not None:
        return str(current.cadre_id)
    loads = await cadre_loads(uow, township_of(village_code))
    chosen = choose_cadre(
        cadres=loads, village_code=village_code, capacities=settings.capacities(), exclude=exclude
    )
    if chosen is None:
        return None
    await uow.execute(
        insert(responsibilities).values(
            household_id=household_id, case_id=case_id, cadre_id=chosen.cadre_id,
            assigned_at=uow.clock.now(),
        )
    )  # fmt: skip
    assigned = CadreAssigned(
        cadre_id=chosen.cadre_id, case_id=case_id, village_code=village_code,
        previous_cadre_id=previous,
    )  # fmt: skip
    await emit(
        uow, assigned, household_id=household_id, correlation_id=correlation_id, settings=settings
    )
    return chosen.cadre_id


async def assign_waiting(
    uow: UnitOfWork, *, township_code: str, settings: AssistanceSettings, correlation_id: str
) -> int:
    """Monitored households of a township still without a cadre get one now, in id order."""
    waiting = await uow.execute(
        select(households.c.household_id, households.c.case_id, households.c.village_code)
        .outerjoin(
            responsibilities,
            and_(
                responsibilities.c.household_id == households.c.household_id,
                responsibilities.c.ended_at.is_(None),
            ),
        )
        .where(
            households.c.township_code == township_code,
            households.c.status == "monitored",
            responsibilities.c.id.is_(None),
        )
        .order_by(households.c.household_id)
    )
    assigned = 0
    for row in waiting.all():
        cadre = await assign_responsible(
            uow, household_id=row.household_id, case_id=row.case_id,
            village_code=row.village_code, settings=settings, correlation_id=correlation_id,
        )  # fmt: skip
        assigned += cadre is not None
    return assigned


def _registered(cadre: CadreIn) -> CadreRegistered:
    return CadreRegistered(
        cadre_id=cadre.cadre_id, name=cadre.name, rank=cadre.rank,
        township_code=cadre.township_code, village_codes=cadre.village_codes,
        contacts=cadre.contacts, active=cadre.active,
    )  # fmt: skip


async def register_cadre(
    uow: UnitOfWork, *, cadre: CadreIn, actor: str, settings: AssistanceSettings
) -> Outcome:
    """Create or update a cadre; an unchanged record emits nothing (re-imports are no-ops)."""
    now = uow.clock.now()
    row = (await uow.execute(select(cadres).where(cadres.c.id == cadre.cadre_id))).first()
    values: dict[str, Any] = {
        "name": cadre.name, "rank": cadre.rank, "township_code": cadre.township_code,
        "village_codes": cadre.village_codes, "contacts": cadre.contacts, "active": cadre.active,
    }  # fmt: skip
    correlation = f"roster:{cadre.cadre_id}"
    if row is not None and all(getattr(row, k) == v for k, v in values.items()):
        return "unchanged"
    if row is not None and row.active and not cadre.active:
        await cadre_leaves(uow, cadre_id=cadre.cadre_id, actor=actor, settings=settings)
        return "updated"
    moved = row is not None and row.township_code != cadre.township_code
    if row is None:
        await uow.execute(
            insert(cadres).values(id=cadre.cadre_id, created_at=now, updated_at=now,
                                  updated_by=actor, **values)
        )  # fmt: skip
    else:
        await uow.execute(
            update(cadres)
            .where(cadres.c.id == cadre.cadre_id)
            .values(updated_at=now, updated_by=actor, **values)
        )
    await emit(
        uow, _registered(cadre), household_id=cadre_key(cadre.cadre_id),
        correlation_id=correlation, settings=settings,
    )  # fmt: skip
    if moved:
        # rules §6.8: a cadre who changed township hands over the households of the old one
        await _hand_over(uow, cadre_id=cadre.cadre_id, settings=settings, reason="moved township")
    if cadre.active:
        await assign_waiting(
            uow, township_code=cadre.township_code, settings=settings, correlation_id=correlation
        )
    return "created" if row is None else "updated"


async def cadre_leaves(
    uow: UnitOfWork, *, cadre_id: str, actor: str, settings: AssistanceSettings
) -> dict[str, str | None] | None:
    """A cadre leaves: marked inactive, and each of their households reassigned (or waiting)."""
    row = (await uow.execute(select(cadres).where(cadres.c.id == cadre_id))).first()
    if row is None:
        return None
    if row.active:
        await uow.execute(
            update(cadres)
            .where(cadres.c.id == cadre_id)
            .values(active=False, updated_at=uow.clock.now(), updated_by=actor)
        )
        left = CadreRegistered(
            cadre_id=row.id, name=row.name, rank=row.rank, township_code=row.township_code,
            village_codes=row.village_codes, contacts=row.contacts, active=False,
        )  # fmt: skip
        await emit(
            uow, left, household_id=cadre_key(cadre_id), correlation_id=f"roster:{cadre_id}",
            settings=settings,
        )  # fmt: skip
    return await _hand_over(uow, cadre_id=cadre_id, settings=settings, reason="cadre left")


async def _hand_over(
    uow: UnitOfWork, *, cadre_id: str, settings: AssistanceSettings, reason: str
) -> dict[str, str | None]:
    held = (
        await uow.execute(
            select(responsibilities, households.c.village_code)
            .join(households, households.c.household_id == responsibilities.c.household_id)
            .where(responsibilities.c.cadre_id == cadre_id, responsibilities.c.ended_at.is_(None))
            .order_by(responsibilities.c.household_id)
        )
    ).all()
    now = uow.clock.now()
    outcome: dict[str, str | None] = {}
    for r in held:
        await uow.execute(
            update(responsibilities)
            .where(responsibilities.c.id == r.id)
            .values(ended_at=now, end_reason=reason)
        )
    for r in held:
        outcome[r.household_id] = await assign_responsible(
            uow, household_id=r.household_id, case_id=r.case_id, village_code=r.village_code,
            settings=settings, correlation_id=f"roster:{cadre_id}", previous=cadre_id,
            exclude=frozenset({cadre_id}),
        )  # fmt: skip
    return outcome


async def end_responsibility(uow: UnitOfWork, *, household_id: str, reason: str) -> None:
    """The household no longer needs a responsible cadre (e.g. risk eliminated)."""
    await uow.execute(
        update(responsibilities)
        .where(
            responsibilities.c.household_id == household_id, responsibilities.c.ended_at.is_(None)
        )
        .values(ended_at=uow.clock.now(), end_reason=reason)
    )
