"""Notify use cases: record who must hear of an event, then deliver with retries."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import httpx
from sqlalchemy import insert, select, update

from services.notify import rules
from services.notify.config import NotifySettings
from services.notify.models import delivery_attempts, notifications
from shared.db import UnitOfWork
from shared.events import (
    Envelope,
    NotificationDelivered,
    NotificationFailed,
    PlanCreated,
    new_event,
)

log = logging.getLogger(__name__)
WEBHOOK = "webhook"


async def on_plan_created(*, uow: UnitOfWork, event: Envelope[PlanCreated]) -> None:
    """The village cadres learn that a plan exists and when identification is due."""
    plan = event.payload
    now = uow.clock.now()
    text = rules.plan_created_message(household_id=event.household_id, plan=plan)
    await uow.execute(
        insert(notifications).values(
            id=str(uuid4()),
            source_event_id=str(event.event_id),
            event_type=event.event_type,
            household_id=event.household_id,
            recipient=rules.plan_recipient(plan),
            channel=WEBHOOK,
            body={
                "household_id": event.household_id,
                "case_id": plan.case_id,
                "plan_id": plan.plan_id,
                "deadline": plan.case_deadline.isoformat() if plan.case_deadline else None,
                "text": text,
                "correlation_id": event.correlation_id,
            },
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


async def deliver_due(
    *,
    uow_factory: Callable[[], UnitOfWork],
    http: httpx.AsyncClient,
    settings: NotifySettings,
    rng: random.Random,
    limit: int = 50,
) -> int:
    """Attempt every due notification once, each in its own transaction; returns the count."""
    async with uow_factory() as uow:
        due = (
            (
                await uow.execute(
                    select(notifications.c.id)
                    .where(
                        notifications.c.status == "pending",
                        notifications.c.next_attempt_at <= uow.clock.now(),
                    )
                    .order_by(notifications.c.next_attempt_at)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
    for notification_id in due:
        async with uow_factory() as uow:
            query = select(notifications).where(
                notifications.c.id == notification_id, notifications.c.status == "pending"
            )
            if uow.conn.dialect.name == "postgresql":
                # another replica may hold it; skip rather than deliver twice
                query = query.with_for_update(skip_locked=True)
            row = (await uow.execute(query)).first()
            if row is not None:
                await _attempt(uow=uow, row=row, http=http, settings=settings, rng=rng)
    return len(due)


async def _attempt(
    *,
    uow: UnitOfWork,
    row: Any,
    http: httpx.AsyncClient,
    settings: NotifySettings,
    rng: random.Random,
) -> None:
    attempt = row.attempts + 1
    status_code: int | None = None
    error: str | None = None
    try:
        response = await http.post(
            settings.webhook_url,
            json=row.body | {"notification_id": row.id, "recipient": row.recipient},
            headers={"Idempotency-Key": row.id},
            timeout=settings.webhook_timeout_seconds,
        )
        status_code = response.status_code
        if not response.is_success:
            error = f"HTTP {status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    now = uow.clock.now()
    await uow.execute(
        insert(delivery_attempts).values(
            notification_id=row.id, attempt=attempt, at=now, status_code=status_code, error=error
        )
    )
    values: dict[str, Any] = {"attempts": attempt}
    outcome: NotificationDelivered | NotificationFailed | None = None
    common = {
        "notification_id": row.id,
        "source_event_id": row.source_event_id,
        "recipient": row.recipient,
        "channel": row.channel,
        "attempts": attempt,
    }
    if error is None:
        values |= {"status": "delivered", "delivered_at": now}
        outcome = NotificationDelivered(**common)
    elif attempt >= settings.max_attempts:
        values |= {"status": "failed"}
        outcome = NotificationFailed(**common, error=error)
    else:
        delay = rules.next_attempt_delay(
            attempt, base=settings.retry_base_seconds, cap=settings.retry_max_seconds, rng=rng
        )
        values |= {"next_attempt_at": now + delay}
        log.warning("notification %s attempt %d failed: %s", row.id, attempt, error)
    await uow.execute(update(notifications).where(notifications.c.id == row.id).values(**values))
    if outcome is not None:
        await uow.record(
            new_event(
                outcome,
                household_id=row.household_id,
                source="notify",
                correlation_id=row.body.get("correlation_id", row.id),
                clock=uow.clock,
            ),
            settings.topic("notifications"),
        )
