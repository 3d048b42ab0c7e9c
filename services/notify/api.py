"""Notify HTTP API (/v1): delivery status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select

from services.notify.models import notifications
from shared.db import utc
from shared.service import Runtime, runtime_of

router = APIRouter(prefix="/v1", tags=["notify"])


class NotificationRead(BaseModel):
    """One notification and where its delivery stands."""

    notification_id: str
    household_id: str
    event_type: str
    recipient: str
    channel: str
    status: str
    attempts: int
    text: str
    delivered_at: datetime | None


@router.get("/notifications", response_model=list[NotificationRead])
async def list_notifications(
    runtime: Annotated[Runtime, Depends(runtime_of)],
    household_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NotificationRead]:
    """Notifications, newest first, optionally for one household."""
    query = select(notifications).order_by(notifications.c.created_at.desc()).limit(limit)
    if household_id:
        query = query.where(notifications.c.household_id == household_id)
    async with runtime.uow() as uow:
        rows = (await uow.execute(query)).all()
    return [
        NotificationRead(
            notification_id=r.id,
            household_id=r.household_id,
            event_type=r.event_type,
            recipient=r.recipient,
            channel=r.channel,
            status=r.status,
            attempts=r.attempts,
            text=r.body["text"],
            delivered_at=utc(r.delivered_at) if r.delivered_at else None,
        )
        for r in rows
    ]
