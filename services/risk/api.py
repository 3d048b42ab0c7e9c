"""Risk HTTP API (/v1): read the cases and the signals behind them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy import func, select

from services.risk.models import case_signals, cases
from shared.db import utc
from shared.service import Runtime, runtime_of

router = APIRouter(prefix="/v1", tags=["risk"])


class CaseRead(BaseModel):
    """A case as officials see it."""

    case_id: str
    household_id: str
    village_code: str
    status: str
    channel: str
    risk_types: list[str]
    opened_at: datetime
    deadline: datetime
    home_visit_due: datetime | None
    signals: int


def _case(row: Any, signals: int) -> CaseRead:
    return CaseRead(
        case_id=row.id,
        household_id=row.household_id,
        village_code=row.village_code,
        status=row.status,
        channel=row.channel,
        risk_types=row.risk_types,
        opened_at=utc(row.opened_at),
        deadline=utc(row.deadline),
        home_visit_due=utc(row.home_visit_due) if row.home_visit_due else None,
        signals=signals,
    )


@router.get("/cases", response_model=list[CaseRead])
async def list_cases(
    runtime: Annotated[Runtime, Depends(runtime_of)],
    household_id: str | None = None,
    case_status: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CaseRead]:
    """Cases, newest first, optionally for one household or one status."""
    query = select(cases).order_by(cases.c.opened_at.desc()).limit(limit)
    if household_id:
        query = query.where(cases.c.household_id == household_id)
    if case_status:
        query = query.where(cases.c.status == case_status)
    async with runtime.uow() as uow:
        rows = (await uow.execute(query)).all()
        counts = await _signal_counts(uow, [r.id for r in rows])
    return [_case(r, counts.get(r.id, 0)) for r in rows]


@router.get("/cases/{case_id}", response_model=CaseRead)
async def get_case(case_id: str, runtime: Annotated[Runtime, Depends(runtime_of)]) -> CaseRead:
    """One case."""
    async with runtime.uow() as uow:
        row = (await uow.execute(select(cases).where(cases.c.id == case_id))).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"case_id: {case_id} not found")
        counts = await _signal_counts(uow, [case_id])
    return _case(row, counts.get(case_id, 0))


async def _signal_counts(uow: Any, case_ids: list[str]) -> dict[str, int]:
    rows = await uow.execute(
        select(case_signals.c.case_id, func.count())
        .where(case_signals.c.case_id.in_(case_ids))
        .group_by(case_signals.c.case_id)
    )
    return {r[0]: r[1] for r in rows}
