"""Risk HTTP API (/v1): cases, their workflow actions, history, reasons and public notice."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from sqlalchemy import ColumnElement, func, not_, or_, select

from services.risk import repository as repo
from services.risk.casework import ActionRefused, ActionRequest, CaseNotFound, perform_action
from services.risk.config import RiskSettings
from services.risk.models import case_signals, cases
from services.risk.notice import public_notice_text
from services.risk.schemas import (
    ActionCreate,
    CaseDetail,
    CaseQuery,
    CaseRead,
    HistoryRead,
    NoticeRead,
)
from services.risk.workflow import allowed_actions
from shared.auth import Official, current_official, ensure_within
from shared.db import UnitOfWork, utc
from shared.events import Reason
from shared.inputs import PROBLEM_RESPONSES
from shared.service import Runtime, runtime_of

router = APIRouter(
    prefix="/v1",
    tags=["risk"],
    responses=PROBLEM_RESPONSES,
)


def _dt(value: Any) -> Any:
    return utc(value) if value else None


def _case(
    row: Any, signals: int, now: datetime, alerts: dict[str, datetime] | None = None
) -> CaseRead:
    late = repo.late(row, now)
    return CaseRead(
        case_id=row.id,
        household_id=row.household_id,
        village_code=row.village_code,
        status=row.status,
        channel=row.channel,
        risk_types=row.risk_types,
        opened_at=utc(row.opened_at),
        deadline=utc(row.deadline),
        home_visit_due=_dt(row.home_visit_due),
        signals=signals,
        stage=row.stage,
        purpose=row.purpose,
        kind=row.kind,
        green_channel=bool(row.green_channel),
        home_visited_at=_dt(row.home_visited_at),
        notice_posted_at=_dt(row.notice_posted_at),
        notice_ends_at=_dt(row.notice_ends_at),
        warning_at=_dt(row.warning_at),
        paperwork_due=_dt(row.paperwork_due),
        closed_at=_dt(row.closed_at),
        overdue="overdue" in late,
        home_visit_overdue="home_visit" in late,
        paperwork_overdue="paperwork" in late,
        alerts=alerts or {},
    )


@router.get(
    "/cases",
    response_model=list[CaseRead],
    responses={200: {"headers": {"Link": {
        "description": 'the next page, `<...&cursor=...>; rel="next"`; absent on the last page',
        "schema": {"type": "string"},
    }}}},
)  # fmt: skip
async def list_cases(
    request: Request,
    response: Response,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Annotated[Official, Depends(current_official)],
    query: Annotated[CaseQuery, Query()],
) -> list[CaseRead]:
    """Cases in the caller's jurisdiction, filtered, in `order` (newest first by default),
    `limit` at a time. The `Link` header's `rel="next"` gives the next page (a cursor: no case
    is skipped or repeated when cases are added meanwhile); `offset` skips cases instead."""
    after = None
    if query.cursor is not None:
        if query.offset:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "offset: cannot be used with cursor"
            )
        try:
            after = repo.Cursor.decode(query.cursor, query.order)
        except repo.BadCursor as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"cursor: {exc}") from None
    async with runtime.uow() as uow:
        now = uow.clock.now()
        statement = repo.case_list_query(
            now=now,
            jurisdiction=None if official.role == "admin" else official.jurisdiction,
            filters=query.model_dump(),
            order=query.order,
            after=after,
            offset=query.offset,
            limit=query.limit + 1,  # one more tells whether there is a next page
        )
        if query.unplaced is not None:
            statement = statement.where(_unplaced(query.unplaced))
        rows = (await uow.execute(statement)).all()
        page = rows[: query.limit]
        ids = [r.id for r in page]
        counts = await _signal_counts(uow, ids)
        alerts = await repo.alerts_of(uow, ids)
    if len(rows) > query.limit:
        cursor = repo.Cursor.after(page[-1], query.order).encode()
        following = request.url.remove_query_params(["offset", "cursor"]).include_query_params(
            cursor=cursor
        )
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return [_case(r, counts.get(r.id, 0), now, alerts.get(r.id)) for r in page]


def _unplaced(wanted: bool) -> ColumnElement[bool]:
    """rules §9.4: the cases with no village yet (none, or a county placeholder whose village
    part is 000, services.risk.signal_batch), or, `wanted` false, those placed in a village."""
    code = cases.c.village_code
    condition = or_(code == "", code.like("%000"))
    return condition if wanted else not_(condition)


async def _load_case(uow: UnitOfWork, case_id: str, official: Official) -> Any:
    row = await repo.case(uow, case_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case_id: {case_id} not found")
    ensure_within(official, row.village_code)
    return row


async def _detail(uow: UnitOfWork, row: Any) -> CaseDetail:
    counts = await _signal_counts(uow, [row.id])
    alerts = await repo.alerts_of(uow, [row.id])
    steps = await repo.history(uow, row.id)
    state = repo.state_of(row)
    now = uow.clock.now()
    return CaseDetail(
        **_case(row, counts.get(row.id, 0), now, alerts.get(row.id)).model_dump(),
        reasons=[Reason.model_validate(r) for r in row.reasons or []],
        flags=[Reason.model_validate(r) for r in row.flags or []],
        data_compared=bool(row.data_compared),
        signed_form=bool(row.signed_form),
        objections=row.objections or 0,
        provisional_measures=row.provisional_measures or [],
        rejection_reason=row.rejection_reason,
        next_actions=list(allowed_actions(state, now)) if state.open else [],
        history=[
            HistoryRead(
                at=utc(h.at),
                actor=h.actor,
                role=h.role,
                action=h.action,
                from_stage=h.from_stage,
                to_stage=h.to_stage,
                note=h.note,
            )
            for h in steps
        ],
    )


@router.get("/cases/{case_id}", response_model=CaseDetail)
async def get_case(
    case_id: str,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Annotated[Official, Depends(current_official)],
) -> CaseDetail:
    """One case with its reasons, flags, next actions and history (officials, in jurisdiction)."""
    async with runtime.uow() as uow:
        return await _detail(uow, await _load_case(uow, case_id, official))


@router.post("/cases/{case_id}/actions", response_model=CaseDetail)
async def act_on_case(
    case_id: str,
    body: ActionCreate,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Annotated[Official, Depends(current_official)],
) -> CaseDetail:
    """A workflow step by the role that owns it (rules §4.2-§4.7, §7.2)."""
    settings: RiskSettings = runtime.settings  # type: ignore[assignment]
    try:
        async with runtime.uow() as uow:
            await perform_action(
                uow=uow,
                case_id=case_id,
                official=official,
                request=ActionRequest(**body.model_dump()),
                settings=settings,
            )
    except CaseNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case_id: {case_id} not found") from None
    except ActionRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None
    async with runtime.uow() as uow:
        return await _detail(uow, await _load_case(uow, case_id, official))


@router.get("/cases/{case_id}/public-notice", response_model=NoticeRead)
async def public_notice(
    case_id: str,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Annotated[Official, Depends(current_official)],
) -> NoticeRead:
    """rules §4.4, §4.13: the village notice, without IDs, phones, accounts or health details."""
    async with runtime.uow() as uow:
        row = await _load_case(uow, case_id, official)
        household = await repo.household(uow, row.household_id)
    if row.notice_posted_at is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "case_id: no public notice posted yet")
    settings: RiskSettings = runtime.settings  # type: ignore[assignment]
    calendar = settings.work_calendar
    names = [household.head_name] if household is not None and household.head_name else []
    if household is not None:
        names += [
            m.get("name", "")
            for m in household.members or []
            if m.get("name") and m.get("name") not in names
        ]
    text = public_notice_text(
        village_code=row.village_code,
        names=names,
        kind=row.kind,
        risk_types=list(row.risk_types),
        # the village reads its own dates (rules §4.10 reading: local time)
        posted_at=calendar.local(row.notice_posted_at),
        ends_at=calendar.local(row.notice_ends_at),
        purpose=row.purpose,
    )
    return NoticeRead(case_id=row.id, text=text)


async def _signal_counts(uow: Any, case_ids: list[str]) -> dict[str, int]:
    rows = await uow.execute(
        select(case_signals.c.case_id, func.count())
        .where(case_signals.c.case_id.in_(case_ids))
        .group_by(case_signals.c.case_id)
    )
    return {r[0]: r[1] for r in rows}
