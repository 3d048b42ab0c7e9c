"""Assistance HTTP API (/v1): catalogue, plans with reasons, measures and their lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy import select

from services.assistance.catalogue import Category, catalogue_document, load_catalogue
from services.assistance.checker import check_plan, person_problem
from services.assistance.config import AssistanceSettings
from services.assistance.models import measure_history, measures, plans
from services.assistance.planner import PlannedMeasure, labour_class
from services.assistance.repository import add_measures, as_planned, plan_measures, set_status
from services.assistance.schemas import (
    MeasureIn,
    MeasureRead,
    MeasureStep,
    PlanDetail,
    TransitionIn,
    ViolationRead,
)
from services.assistance.visiting import responsible_for
from services.assistance.workflow import MeasureStatus, transition_problem
from shared.auth import Official, ensure_within, require_role
from shared.db import UnitOfWork, utc
from shared.events import Member
from shared.inputs import PROBLEM_RESPONSES
from shared.service import Runtime, runtime_of

router = APIRouter(
    prefix="/v1",
    tags=["assistance"],
    responses=PROBLEM_RESPONSES,
)
Village = Annotated[Official, Depends(require_role("village"))]
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


def settings_of(runtime: Runtime) -> AssistanceSettings:
    """The assistance settings of this runtime."""
    settings = runtime.settings
    assert isinstance(settings, AssistanceSettings)
    return settings


def region_filter(official: Official, region: str | None) -> str:
    """The region prefix to list: the caller's jurisdiction, or a part of it (else 403)."""
    if region is None:
        return "" if official.role == "admin" else official.jurisdiction
    if not (region.isascii() and region.isdigit()) or len(region) > 12:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "region: a region-code prefix")
    ensure_within(official, region, "region")
    return region


class PlanRead(BaseModel):
    """A household's plan."""

    plan_id: str
    household_id: str
    case_id: str
    village_code: str
    measures: list[str]
    created_at: datetime


@router.get("/catalogue")
async def get_catalogue(runtime: RuntimeDep) -> dict[str, Any]:
    """The measure catalogue in force (rules §6), with its version."""
    return catalogue_document(settings_of(runtime).catalogue_path or None)


@router.get("/catalogue/{code}")
async def get_measure_spec(code: str, runtime: RuntimeDep) -> dict[str, Any]:
    """One measure of the catalogue: category, eligibility, causes, agency, elimination rule."""
    document = catalogue_document(settings_of(runtime).catalogue_path or None)
    for spec in document["measures"]:
        if spec["code"] == code:
            return spec | {"catalogue_version": document["version"]}
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"code: {code} is not in the catalogue")


@router.get("/plans", response_model=list[PlanRead])
async def list_plans(
    runtime: RuntimeDep,
    official: Village,
    household_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PlanRead]:
    """Plans in the caller's jurisdiction, newest first, optionally for one household."""
    query = select(plans).order_by(plans.c.created_at.desc()).limit(limit)
    if official.role != "admin":
        query = query.where(plans.c.village_code.startswith(official.jurisdiction, autoescape=True))
    if household_id:
        query = query.where(plans.c.household_id == household_id)
    async with runtime.uow() as uow:
        rows = (await uow.execute(query)).all()
    return [
        PlanRead(
            plan_id=r.id, household_id=r.household_id, case_id=r.case_id,
            village_code=r.village_code, measures=r.measures, created_at=utc(r.created_at),
        )
        for r in rows
    ]  # fmt: skip


def measure_read(r: Any) -> MeasureRead:
    """A stored measure as the API shows it."""
    return MeasureRead(
        measure_id=r.id, plan_id=r.plan_id, household_id=r.household_id,
        village_code=r.village_code, code=r.code, category=r.category,
        person_id_hash=r.person_id_hash, reason=r.reason, provisional=r.provisional,
        status=r.status, recorded_as=r.recorded_as, started_on=r.started_on,
        completed_on=r.completed_on, cancelled_on=r.cancelled_on, updated_by=r.updated_by,
    )  # fmt: skip


async def plan_detail(uow: UnitOfWork, plan: Any, settings: AssistanceSettings) -> PlanDetail:
    """A plan with its measures in order, each with its reason, and what the checker finds."""
    rows = await plan_measures(uow, plan.id, active_only=False)
    active = [r for r in rows if r.status != "cancelled"]
    members = [Member.model_validate(m) for m in plan.members or []]
    violations = (
        check_plan(
            catalogue=load_catalogue(settings.catalogue_path or None),
            risk_types=plan.risk_types or [],
            members=members,
            measures=[as_planned(r) for r in active],
        )
        if plan.status == "active"
        else []
    )
    return PlanDetail(
        plan_id=plan.id, household_id=plan.household_id, case_id=plan.case_id,
        village_code=plan.village_code, status=plan.status, kind=plan.kind,
        risk_types=plan.risk_types or [], labour_class=plan.labour_class,
        catalogue_version=plan.catalogue_version, measures=[measure_read(r) for r in rows],
        violations=[
            ViolationRead(
                rule=v.rule, problem=v.problem,
                measure_id=active[v.measure].id if v.measure is not None else None,
            )
            for v in violations
        ],
        responsible_cadre=await responsible_for(uow, plan.household_id),
        created_at=utc(plan.created_at),
    )  # fmt: skip


@router.get("/households/{household_id}/plan", response_model=PlanDetail)
async def household_plan(household_id: str, runtime: RuntimeDep, official: Village) -> PlanDetail:
    """The household's current plan with the reason for every measure (rules §6)."""
    async with runtime.uow() as uow:
        plan = (
            await uow.execute(
                select(plans)
                .where(plans.c.household_id == household_id)
                .order_by(plans.c.created_at.desc())
            )
        ).first()
        if plan is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"household_id: {household_id} has no plan"
            )
        ensure_within(official, plan.village_code)
        return await plan_detail(uow, plan, settings_of(runtime))


@router.post("/plans/{plan_id}/measures", response_model=PlanDetail, status_code=201)
async def add_measure(
    plan_id: str, body: MeasureIn, runtime: RuntimeDep, official: Village
) -> PlanDetail:
    """Add a measure by hand; the answer lists every rule the edited plan now breaks."""
    settings = settings_of(runtime)
    catalogue = load_catalogue(settings.catalogue_path or None)
    spec = catalogue.measures.get(body.code)
    if spec is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"code: {body.code} is not in the catalogue"
        )
    async with runtime.uow() as uow:
        plan = (await uow.execute(select(plans).where(plans.c.id == plan_id))).first()
        if plan is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"plan_id: {plan_id} not found")
        ensure_within(official, plan.village_code)
        members = [Member.model_validate(m) for m in plan.members or []]
        # rules §6.1: a person's measure names a member, a household's nobody (eligibility and
        # the causes answered are the checker's, listed with the answer)
        if problem := person_problem(spec, body.person_id_hash, members):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"person_id_hash: {problem}")
        measure = PlannedMeasure(body.code, spec.category, body.reason, body.person_id_hash)
        if any(as_planned(r).key == measure.key for r in await plan_measures(uow, plan.id)):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"code: {body.code} is already active for this person (rules §6.2)",
            )
        await add_measures(
            uow, plan=plan, new=[measure], labour=labour_class(members), actor=official.subject,
            settings=settings, correlation_id=f"plan:{plan.id}",
        )  # fmt: skip
        return await plan_detail(uow, plan, settings)


@router.get("/measures", response_model=list[MeasureRead])
async def list_measures(
    runtime: RuntimeDep,
    official: Village,
    measure_status: Annotated[MeasureStatus | None, Query(alias="status")] = None,
    code: str | None = None,
    category: Category | None = None,
    region: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[MeasureRead]:
    """Measures by status, type (code or category) and region (a prefix in your jurisdiction)."""
    prefix = region_filter(official, region)
    query = select(measures).order_by(measures.c.created_at, measures.c.id).limit(limit)
    if prefix:
        query = query.where(measures.c.village_code.startswith(prefix))
    if measure_status:
        query = query.where(measures.c.status == measure_status)
    if code:
        query = query.where(measures.c.code == code)
    if category:
        query = query.where(measures.c.category == category)
    async with runtime.uow() as uow:
        return [measure_read(r) for r in (await uow.execute(query)).all()]


@router.post("/measures/{measure_id}/transitions", response_model=MeasureRead)
async def move_measure(
    measure_id: str, body: TransitionIn, runtime: RuntimeDep, official: Village
) -> MeasureRead:
    """planned -> in_progress -> completed | cancelled, with who and when (rules §6)."""
    async with runtime.uow() as uow:
        row = (await uow.execute(select(measures).where(measures.c.id == measure_id))).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"measure_id: {measure_id} not found")
        ensure_within(official, row.village_code)
        problem = transition_problem(row.status, body.status)
        if problem:
            raise HTTPException(status.HTTP_409_CONFLICT, f"status: {problem}")
        await set_status(
            uow, row=row, to=body.status, actor=official.subject, note=body.note,
            settings=settings_of(runtime), correlation_id=f"measure:{measure_id}",
        )  # fmt: skip
        fresh = (await uow.execute(select(measures).where(measures.c.id == measure_id))).one()
        return measure_read(fresh)


@router.get("/measures/{measure_id}/history", response_model=list[MeasureStep])
async def measure_steps(
    measure_id: str, runtime: RuntimeDep, official: Village
) -> list[MeasureStep]:
    """Every status change of a measure: from, to, when, who and why."""
    async with runtime.uow() as uow:
        row = (await uow.execute(select(measures).where(measures.c.id == measure_id))).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"measure_id: {measure_id} not found")
        ensure_within(official, row.village_code)
        steps = await uow.execute(
            select(measure_history)
            .where(measure_history.c.measure_id == measure_id)
            .order_by(measure_history.c.id)
        )
        return [
            MeasureStep(
                from_status=h.from_status, to_status=h.to_status, at=utc(h.at), actor=h.actor,
                note=h.note,
            )
            for h in steps
        ]  # fmt: skip
