"""Notify HTTP API (/v1): delivery status, resend, channel health."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel
from sqlalchemy import and_, func, select, true, update

from services.notify.breaker import BreakerBoard
from services.notify.config import NotifySettings
from services.notify.models import delivery_attempts, notifications
from shared.auth import Official, current_official, ensure_within, require_role
from shared.db import utc
from shared.inputs import PROBLEM_RESPONSES
from shared.service import Runtime, runtime_of

router = APIRouter(
    prefix="/v1",
    tags=["notify"],
    responses=PROBLEM_RESPONSES,
)
CHANNELS = ("webhook", "robot", "sms", "email")
# the values of notifications.status (services/notify/models.py); `failed` is dead-lettered
NotificationStatus = Literal["pending", "held", "digested", "delivered", "failed"]
Reader = Annotated[Official, Depends(current_official)]


class NotificationRead(BaseModel):
    """One notification and where its delivery stands."""

    notification_id: str
    source_event_id: str
    household_id: str
    event_type: str
    recipient: str
    recipient_level: str | None
    channel: str
    priority: str
    status: str
    attempts: int
    text: str
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    escalated_at: datetime | None


class AttemptRead(BaseModel):
    """One delivery attempt from the log."""

    attempt: int
    at: datetime
    status_code: int | None
    error: str | None


class NotificationDetail(NotificationRead):
    """A notification with every attempt made."""

    attempt_log: list[AttemptRead]


class RecipientStatus(BaseModel):
    """Where the notifications of one recipient stand."""

    recipient: str
    counts: dict[str, int]
    unacknowledged_urgent: int
    notifications: list[NotificationRead]


class ChannelHealth(BaseModel):
    """A channel's breakers and its recent delivery record."""

    channel: str
    breakers: list[dict[str, Any]]
    attempts_last_hour: int
    failures_last_hour: int
    pending: int
    dead: int


def _opt(value: datetime | None) -> datetime | None:
    return utc(value) if value else None


def _visible(official: Official) -> Any:
    """Rows an official may read: inside their jurisdiction; rows with no region, admins only."""
    if official.role == "admin":
        return true()
    return notifications.c.village_code.startswith(official.jurisdiction, autoescape=True)


def _ensure_visible(official: Official, row: Any) -> None:
    """403 unless the notification lies in the official's jurisdiction."""
    if row.village_code:
        ensure_within(official, row.village_code)
    elif official.role != "admin":
        raise HTTPException(403, "notification_id: has no region; only an admin may see it")


def _read(r: Any) -> NotificationRead:
    return NotificationRead(
        notification_id=r.id,
        source_event_id=r.source_event_id,
        household_id=r.household_id,
        event_type=r.event_type,
        recipient=r.recipient,
        recipient_level=r.recipient_level,
        channel=r.channel,
        priority=r.priority,
        status=r.status,
        attempts=r.attempts,
        text=r.body.get("text", ""),
        last_error=r.last_error,
        created_at=utc(r.created_at),
        delivered_at=_opt(r.delivered_at),
        acknowledged_at=_opt(r.acknowledged_at),
        escalated_at=_opt(r.escalated_at),
    )


@router.get("/notifications", response_model=list[NotificationRead])
async def list_notifications(
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Reader,
    household_id: str | None = None,
    status_is: Annotated[NotificationStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NotificationRead]:
    """Notifications in the caller's jurisdiction, newest first, by household or status."""
    query = (
        select(notifications)
        .where(_visible(official))
        .order_by(notifications.c.created_at.desc())
        .limit(limit)
    )
    if household_id:
        query = query.where(notifications.c.household_id == household_id)
    if status_is:
        query = query.where(notifications.c.status == status_is)
    async with runtime.uow() as uow:
        rows = (await uow.execute(query)).all()
    return [_read(r) for r in rows]


@router.get("/notifications/{notification_id}", response_model=NotificationDetail)
async def get_notification(
    notification_id: str, runtime: Annotated[Runtime, Depends(runtime_of)], official: Reader
) -> NotificationDetail:
    """One notification with its delivery log (officials, in jurisdiction)."""
    async with runtime.uow() as uow:
        row = (
            await uow.execute(select(notifications).where(notifications.c.id == notification_id))
        ).first()
        if row is None:
            raise HTTPException(404, f"notification_id: {notification_id} not found")
        _ensure_visible(official, row)
        log = (
            await uow.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.notification_id == notification_id)
                .order_by(delivery_attempts.c.attempt, delivery_attempts.c.id)
            )
        ).all()
    attempts = [
        AttemptRead(attempt=a.attempt, at=utc(a.at), status_code=a.status_code, error=a.error)
        for a in log
    ]
    return NotificationDetail(**_read(row).model_dump(), attempt_log=attempts)


@router.get("/recipients/{recipient}/notifications", response_model=RecipientStatus)
async def recipient_status(
    recipient: str,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RecipientStatus:
    """Counts by status and the latest notifications of one recipient (e.g. `cadre:c-17`),
    as far as they lie in the caller's jurisdiction."""
    where = and_(notifications.c.recipient == recipient, _visible(official))
    async with runtime.uow() as uow:
        counts = (
            await uow.execute(
                select(notifications.c.status, func.count())
                .where(where)
                .group_by(notifications.c.status)
            )
        ).all()
        unacked = (
            await uow.execute(
                select(func.count()).where(
                    where,
                    notifications.c.priority == "urgent",
                    notifications.c.acknowledged_at.is_(None),
                )
            )
        ).scalar_one()
        rows = (
            await uow.execute(
                select(notifications)
                .where(where)
                .order_by(notifications.c.created_at.desc())
                .limit(limit)
            )
        ).all()
    if not rows:
        raise HTTPException(404, f"recipient: {recipient} has no notifications")
    return RecipientStatus(
        recipient=recipient,
        counts={s: int(n) for s, n in counts},
        unacknowledged_urgent=int(unacked),
        notifications=[_read(r) for r in rows],
    )


@router.post(
    "/notifications/{notification_id}/resend",
    response_model=NotificationRead,
    status_code=status.HTTP_202_ACCEPTED,
)
async def resend(
    notification_id: str,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    official: Annotated[Official, Depends(require_role("township"))],
) -> NotificationRead:
    """Deliver again (a dead one, or one the recipient lost), with a fresh attempt budget."""
    settings: NotifySettings = runtime.settings  # type: ignore[assignment]
    async with runtime.uow() as uow:
        row = (
            await uow.execute(select(notifications).where(notifications.c.id == notification_id))
        ).first()
        if row is None:
            raise HTTPException(404, f"notification_id: {notification_id} not found")
        _ensure_visible(official, row)
        if row.status in ("held", "digested"):
            raise HTTPException(
                409, f"notification_id: is {row.status}; it goes out with its digest"
            )
        await uow.execute(
            update(notifications)
            .where(notifications.c.id == notification_id)
            .values(
                status="pending",
                next_attempt_at=uow.clock.now(),
                attempt_limit=row.attempts + settings.max_attempts,
            )
        )
        row = (
            await uow.execute(select(notifications).where(notifications.c.id == notification_id))
        ).first()
    return _read(row)


@router.get("/channels/health", response_model=list[ChannelHealth])
async def channel_health(
    request: Request, runtime: Annotated[Runtime, Depends(runtime_of)], official: Reader
) -> list[ChannelHealth]:
    """Each channel: circuit breakers per gateway, attempts and failures in the last hour.

    Any official may read it: it holds counts and gateway states, no household data."""
    board: BreakerBoard = request.app.state.breakers
    since = runtime.clock.now() - timedelta(hours=1)
    n = notifications
    async with runtime.uow() as uow:
        recent = (
            await uow.execute(
                select(n.c.channel, delivery_attempts.c.error.is_(None), func.count())
                .join(n, n.c.id == delivery_attempts.c.notification_id)
                .where(delivery_attempts.c.at >= since)
                .group_by(n.c.channel, delivery_attempts.c.error.is_(None))
            )
        ).all()
        backlog = (
            await uow.execute(
                select(n.c.channel, n.c.status, func.count())
                .where(n.c.status.in_(("pending", "failed")))
                .group_by(n.c.channel, n.c.status)
            )
        ).all()
    answer = []
    for channel in CHANNELS:
        breakers = [
            {
                "gateway": gateway,
                "state": b.state,
                "recent_failures": b.recent_failures,
                "recent_calls": len(b.outcomes),
                "last_error": b.last_error,
                "opened_at": b.opened_at,
            }
            for (name, gateway), b in sorted(board.breakers.items())
            if name == channel
        ]
        answer.append(
            ChannelHealth(
                channel=channel,
                breakers=breakers,
                attempts_last_hour=sum(int(c) for ch, _, c in recent if ch == channel),
                failures_last_hour=sum(int(c) for ch, ok, c in recent if ch == channel and not ok),
                pending=sum(int(c) for ch, s, c in backlog if ch == channel and s == "pending"),
                dead=sum(int(c) for ch, s, c in backlog if ch == channel and s == "failed"),
            )
        )
    return answer
