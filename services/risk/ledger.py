"""Risk HTTP API (/v1): the monitoring ledger (台账), counts, households, thresholds, rollback."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy import and_, func, select

from services.risk import repository as repo
from services.risk.config import RiskSettings
from services.risk.models import cases, household_signals, households
from services.risk.monitoring import RollbackRefused, rollback_elimination
from services.risk.schemas import (
    HouseholdRead,
    LedgerPage,
    LedgerRow,
    LedgerStatus,
    RegionCount,
    RollbackCreate,
    ThresholdRead,
)
from services.risk.thresholds import threshold_for
from shared.auth import Official, current_official, ensure_within, require_role
from shared.db import utc
from shared.events import MonitoringKind, RiskType
from shared.inputs import PROBLEM_RESPONSES
from shared.service import Runtime, runtime_of

router = APIRouter(
    prefix="/v1",
    tags=["ledger"],
    responses=PROBLEM_RESPONSES,
)
MAX_PAGE = 100_000  # page x page_size must stay a 64-bit database offset
LEVELS = {"province": 2, "city": 4, "county": 6, "township": 9, "village": 12}  # rules §9.4
REGION_PREFIX = r"^[0-9]{0,12}$"  # ASCII digits: \d would also take full-width ones


def _scope(official: Official, region_prefix: str | None) -> str:
    """The region prefix to list: inside the caller's jurisdiction (403 otherwise)."""
    prefix = region_prefix if region_prefix is not None else official.jurisdiction
    if official.role != "admin" and not prefix.startswith(official.jurisdiction):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"region_prefix: {prefix} is outside your jurisdiction {official.jurisdiction}",
        )
    return prefix


@router.get("/ledger", response_model=LedgerPage)
async def ledger(
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Annotated[Official, Depends(current_official)],
    region_prefix: Annotated[str | None, Query(pattern=REGION_PREFIX)] = None,
    kind: MonitoringKind | None = None,
    risk_type: RiskType | None = None,
    household_status: Annotated[LedgerStatus | None, Query(alias="status")] = None,
    deadline_before: datetime | None = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> LedgerPage:
    """Monitoring objects and households under identification, filtered and paginated."""
    prefix = _scope(official, region_prefix)
    joined = households.outerjoin(
        cases, and_(cases.c.household_id == households.c.id, cases.c.status == "open")
    )
    conditions = [
        households.c.village_code.startswith(prefix),
        (households.c.status != "registered") | cases.c.id.is_not(None),
    ]
    if kind:
        conditions.append(households.c.kind == kind)
    if risk_type:
        conditions.append(households.c.risk_codes.contains(f",{risk_type},", autoescape=True))
    if household_status == "open":
        conditions.append(cases.c.id.is_not(None))
    elif household_status:
        conditions.append(households.c.status == household_status)
    if deadline_before:
        conditions.append(cases.c.deadline < deadline_before)
    async with runtime.uow() as uow:
        total = (
            await uow.execute(select(func.count()).select_from(joined).where(*conditions))
        ).scalar_one()
        rows = (
            await uow.execute(
                select(
                    households,
                    cases.c.id.label("case_id"),
                    cases.c.stage.label("case_stage"),
                    cases.c.deadline.label("case_deadline"),
                    cases.c.green_channel.label("case_green"),
                    cases.c.risk_types.label("case_risks"),
                )
                .select_from(joined)
                .where(*conditions)
                .order_by(households.c.village_code, households.c.id)
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
        ).all()
    return LedgerPage(
        total=int(total),
        page=page,
        page_size=page_size,
        items=[
            LedgerRow(
                household_id=r.id,
                village_code=r.village_code,
                head_name=r.head_name,
                status=r.status,
                kind=r.kind,
                risk_types=r.risk_types or r.case_risks or [],
                per_capita_income=r.per_capita_income,
                identified_at=utc(r.identified_at) if r.identified_at else None,
                case_id=r.case_id,
                case_stage=r.case_stage,
                deadline=utc(r.case_deadline) if r.case_deadline else None,
                green_channel=bool(r.case_green),
            )
            for r in rows
        ],
    )


@router.get("/ledger/counts", response_model=list[RegionCount])
async def ledger_counts(
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Annotated[Official, Depends(require_role("township"))],
    region_prefix: Annotated[str | None, Query(pattern=REGION_PREFIX)] = None,
    level: Annotated[str, Query(pattern="^(province|city|county|township|village)$")] = "village",
) -> list[RegionCount]:
    """Households by status and kind, and open cases, per region at `level` (officials)."""
    prefix = _scope(official, region_prefix)
    region = func.substr(households.c.village_code, 1, LEVELS[level]).label("region")
    async with runtime.uow() as uow:
        grouped = (
            await uow.execute(
                select(region, households.c.status, households.c.kind, func.count())
                .where(households.c.village_code.startswith(prefix))
                .group_by(region, households.c.status, households.c.kind)
            )
        ).all()
        case_region = func.substr(cases.c.village_code, 1, LEVELS[level]).label("region")
        open_rows = (
            await uow.execute(
                select(case_region, func.count())
                .where(cases.c.status == "open", cases.c.village_code.startswith(prefix))
                .group_by(case_region)
            )
        ).all()
    out: dict[str, RegionCount] = {}

    def entry(code: str) -> RegionCount:
        return out.setdefault(
            code, RegionCount(region=code, by_status={}, by_kind={}, open_cases=0)
        )

    for code, hh_status, kind, n in grouped:
        item = entry(code)
        item.by_status[hh_status] = item.by_status.get(hh_status, 0) + n
        if kind and hh_status != "registered":
            item.by_kind[kind] = item.by_kind.get(kind, 0) + n
    for code, n in open_rows:
        entry(code).open_cases = n
    return sorted(out.values(), key=lambda c: c.region)


@router.get("/households/{household_id}", response_model=HouseholdRead)
async def get_household(
    household_id: str,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Annotated[Official, Depends(current_official)],
    signals: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> HouseholdRead:
    """A household of the ledger with its signal history, newest first (rules §4 channel 4)."""
    async with runtime.uow() as uow:
        row = await repo.household(uow, household_id)
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"household_id: {household_id} not found"
            )
        ensure_within(official, row.village_code)
        history = (
            await uow.execute(
                select(household_signals)
                .where(household_signals.c.household_id == household_id)
                .order_by(household_signals.c.id.desc())
                .limit(signals)
            )
        ).all()
    return HouseholdRead(
        household_id=row.id,
        village_code=row.village_code,
        baseline_status=row.baseline_status,
        status=row.status,
        kind=row.kind,
        risk_types=row.risk_types or [],
        new_risk_types=row.new_risk_types or [],
        new_risks_since=row.new_risks_since if row.new_risk_types else None,
        last_visit_on=row.last_visit_on,
        last_visit_clear=bool(row.last_visit_clear),
        per_capita_income=row.per_capita_income,
        income_above_since=row.income_above_since,
        measures_completed=row.measures_completed,
        members=len(row.members or []),
        signals=[_signal(h) for h in history],
    )


def _signal(row: Any) -> dict[str, Any]:
    return {
        "event_id": row.event_id,
        "event_type": row.event_type,
        "received_at": utc(row.received_at).isoformat(),
        "risk_types": row.risk_types,
        "flags": row.flags,
    }


@router.post("/households/{household_id}/elimination-rollback", status_code=200)
async def roll_back_elimination(
    household_id: str,
    body: RollbackCreate,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Annotated[Official, Depends(current_official)],
) -> dict[str, str]:
    """rules §7.4: the county takes an elimination back."""
    if official.role != "county":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"role: {official.role} may not roll back; needs county"
        )
    settings: RiskSettings = runtime.settings  # type: ignore[assignment]
    try:
        async with runtime.uow() as uow:
            row = await repo.household(uow, household_id)
            if row is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"household_id: {household_id} not found"
                )
            ensure_within(official, row.village_code)
            case_id = await rollback_elimination(
                uow=uow,
                household_id=household_id,
                official=official,
                reason=body.reason,
                settings=settings,
            )
    except RollbackRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return {"household_id": household_id, "case_id": case_id, "status": "monitoring"}


@router.get("/thresholds", response_model=list[ThresholdRead])
async def thresholds(
    runtime: Annotated[Runtime, Depends(runtime_of)],
    region_code: Annotated[str | None, Query(pattern=r"^[0-9]{1,12}$")] = None,
    on: date | None = None,
) -> list[ThresholdRead]:
    """rules §2: the configured thresholds, or the one in force for a region on a date."""
    settings: RiskSettings = runtime.settings  # type: ignore[assignment]
    entries = settings.thresholds
    if region_code is not None:
        today = settings.work_calendar.local_date(runtime.clock.now())
        found = threshold_for(entries, region_code, on or today)
        if found is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"region_code: no threshold in force for {region_code}"
            )
        entries = [found]
    return [
        ThresholdRead(
            region_prefix=e.region_prefix,
            year=e.year,
            effective_from=e.effective_from,
            mode=e.mode,
            annual_yuan=e.annual_yuan,
            form=e.form,
            label=e.label,
        )
        for e in entries
    ]
