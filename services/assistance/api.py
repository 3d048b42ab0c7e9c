"""Assistance HTTP API (/v1): plans."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select

from services.assistance.models import plans
from shared.db import utc
from shared.service import Runtime, runtime_of

router = APIRouter(prefix="/v1", tags=["assistance"])


class PlanRead(BaseModel):
    """A household's plan."""

    plan_id: str
    household_id: str
    case_id: str
    village_code: str
    measures: list[str]
    created_at: datetime


@router.get("/plans", response_model=list[PlanRead])
async def list_plans(
    runtime: Annotated[Runtime, Depends(runtime_of)],
    household_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PlanRead]:
    """Plans, newest first, optionally for one household."""
    query = select(plans).order_by(plans.c.created_at.desc()).limit(limit)
    if household_id:
        query = query.where(plans.c.household_id == household_id)
    async with runtime.uow() as uow:
        rows = (await uow.execute(query)).all()
    return [
        PlanRead(
            plan_id=r.id,
            household_id=r.household_id,
            case_id=r.case_id,
            village_code=r.village_code,
            measures=r.measures,
            created_at=utc(r.created_at),
        )
        for r in rows
    ]
