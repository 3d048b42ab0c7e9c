"""Assistance HTTP API (/v1): cadre roster, workload, visits due and visits recorded."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response, status
from sqlalchemy import and_, func, select

from services.assistance.api import region_filter, settings_of
from services.assistance.models import cadres, households, responsibilities
from services.assistance.roster import cadre_leaves, register_cadre
from services.assistance.schemas import (
    CadreIn,
    CadreRead,
    VisitDueRead,
    VisitIn,
    VisitRead,
    WorkloadRead,
)
from services.assistance.visiting import VisitRefused, record_visit
from shared.auth import Official, current_official, ensure_within, require_role
from shared.inputs import PROBLEM_RESPONSES
from shared.service import Runtime, runtime_of

router = APIRouter(
    prefix="/v1",
    tags=["roster", "visits"],
    responses=PROBLEM_RESPONSES,
)
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
County = Annotated[Official, Depends(require_role("county"))]
Village = Annotated[Official, Depends(require_role("village"))]


async def _cadres(runtime: Runtime, prefix: str, cadre_id: str | None = None) -> list[CadreRead]:
    load = (
        select(responsibilities.c.cadre_id, func.count().label("load"))
        .where(responsibilities.c.ended_at.is_(None))
        .group_by(responsibilities.c.cadre_id)
        .subquery()
    )
    query = (
        select(cadres, func.coalesce(load.c.load, 0).label("load"))
        .outerjoin(load, load.c.cadre_id == cadres.c.id)
        .where(cadres.c.township_code.startswith(prefix[:9]))
        .order_by(cadres.c.township_code, cadres.c.id)
    )
    if cadre_id:
        query = query.where(cadres.c.id == cadre_id)
    capacities = settings_of(runtime).capacities()
    async with runtime.uow() as uow:
        rows = (await uow.execute(query)).all()
    return [_cadre_read(r, capacities) for r in rows]


def _cadre_read(r: Any, capacities: dict[str, int | None]) -> CadreRead:
    return CadreRead(
        cadre_id=r.id, name=r.name, rank=r.rank, township_code=r.township_code,
        village_codes=r.village_codes, contacts=r.contacts, active=r.active, load=int(r.load),
        capacity=capacities.get(r.rank),
    )  # fmt: skip


@router.post("/cadres", response_model=CadreRead)
async def put_cadre(
    body: CadreIn, runtime: RuntimeDep, official: County, response: Response
) -> CadreRead:
    """Register or update a cadre (county or admin, inside their jurisdiction)."""
    ensure_within(official, body.township_code, "township_code")
    for known in await _cadres(runtime, "", body.cadre_id):
        # a cadre of another jurisdiction may not be moved or retired from here
        ensure_within(official, known.township_code, "cadre_id")
    async with runtime.uow() as uow:
        outcome = await register_cadre(
            uow, cadre=body, actor=official.subject, settings=settings_of(runtime)
        )
    response.status_code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK
    # as stored: a cadre who leaves keeps the township they left (see register_cadre)
    return (await _cadres(runtime, "", body.cadre_id))[0]


@router.get("/cadres", response_model=list[CadreRead])
async def list_cadres(
    runtime: RuntimeDep, official: Village, region: str | None = None
) -> list[CadreRead]:
    """Cadres of a region (prefix), with their load and their "321" capacity."""
    return await _cadres(runtime, region_filter(official, region))


@router.post("/cadres/{cadre_id}/leave", response_model=dict[str, str | None])
async def cadre_leave(
    cadre_id: str, runtime: RuntimeDep, official: County
) -> dict[str, str | None]:
    """The cadre leaves; each household they held gets a new cadre (None: none available)."""
    found = await _cadres(runtime, "", cadre_id)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"cadre_id: {cadre_id} not found")
    ensure_within(official, found[0].township_code, "township_code")
    async with runtime.uow() as uow:
        outcome = await cadre_leaves(
            uow, cadre_id=cadre_id, actor=official.subject, settings=settings_of(runtime)
        )
    return outcome or {}


@router.get("/workload", response_model=WorkloadRead)
async def workload(
    runtime: RuntimeDep, official: Village, region: str | None = None
) -> WorkloadRead:
    """Who holds how many households in a region, and which monitored households wait."""
    prefix = region_filter(official, region)
    roster = [c for c in await _cadres(runtime, prefix) if c.township_code.startswith(prefix[:9])]
    query = (
        select(households.c.household_id)
        .outerjoin(
            responsibilities,
            and_(
                responsibilities.c.household_id == households.c.household_id,
                responsibilities.c.ended_at.is_(None),
            ),
        )
        .where(
            households.c.status == "monitored",
            households.c.village_code.startswith(prefix),
            responsibilities.c.id.is_(None),
        )
        .order_by(households.c.household_id)
    )
    async with runtime.uow() as uow:
        waiting = [r.household_id for r in (await uow.execute(query)).all()]
    return WorkloadRead(cadres=roster, unassigned_households=waiting)


@router.post("/visits", response_model=VisitRead, status_code=201)
async def post_visit(
    body: VisitIn, runtime: RuntimeDep, official: Annotated[Official, Depends(current_official)]
) -> VisitRead:
    """The household's responsible cadre records their own visit (the token's subject is the
    cadre id); anyone else gets a 403 naming who is responsible (rules §6.10)."""
    async with runtime.uow() as uow:
        cadre = (await uow.execute(select(cadres).where(cadres.c.id == official.subject))).first()
        if cadre is None or not cadre.active:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"cadre_id: {official.subject} is not an active cadre"
            )
        village = (
            await uow.execute(
                select(households.c.village_code).where(
                    households.c.household_id == body.household_id
                )
            )
        ).scalar()
        if village is not None:
            ensure_within(official, village, "household_id")
        try:
            visit_id, changed, _ = await record_visit(
                uow, visit=body, cadre_id=official.subject, settings=settings_of(runtime)
            )
        except VisitRefused as exc:
            raise HTTPException(exc.status_code, str(exc)) from None
    return VisitRead(
        visit_id=visit_id, household_id=body.household_id, cadre_id=official.subject,
        visited_on=body.visited_on, per_capita_income=body.per_capita_income,
        income_changed=changed,
    )  # fmt: skip


@router.get("/visits/due", response_model=list[VisitDueRead])
async def visits_due(
    runtime: RuntimeDep,
    official: Village,
    region: str | None = None,
    overdue_only: bool = False,
) -> list[VisitDueRead]:
    """Monitored households with their next visit, must-visit ones first, then by due date."""
    prefix = region_filter(official, region)
    query = (
        select(households, responsibilities.c.cadre_id)
        .outerjoin(
            responsibilities,
            and_(
                responsibilities.c.household_id == households.c.household_id,
                responsibilities.c.ended_at.is_(None),
            ),
        )
        .where(households.c.status == "monitored", households.c.village_code.startswith(prefix))
    )
    async with runtime.uow() as uow:
        today = uow.today()
        rows = (await uow.execute(query)).all()
    due = [
        VisitDueRead(
            household_id=r.household_id, village_code=r.village_code, cadre_id=r.cadre_id,
            last_visit_on=r.last_visit_on, next_visit_due=r.next_visit_due,
            overdue=r.next_visit_due is not None and r.next_visit_due < today,
            must_visit=r.must_visit,
        )
        for r in rows
    ]  # fmt: skip
    if overdue_only:
        due = [d for d in due if d.overdue]
    return sorted(due, key=lambda d: (not d.must_visit, d.next_visit_due or today, d.household_id))
