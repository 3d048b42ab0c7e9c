"""Delivery: each due notification tried once per pass, with timeouts, backoff and breakers."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import insert, select, update

from services.notify import metrics, rules
from services.notify.breaker import BreakerBoard
from services.notify.channels import Channel, DeliveryError, Outgoing
from services.notify.config import NotifySettings
from services.notify.models import delivery_attempts, notifications
from shared.db import UnitOfWork
from shared.events import NotificationDelivered, NotificationFailed, new_event

log = logging.getLogger(__name__)


async def deliver_due(
    *,
    uow_factory: Callable[[], UnitOfWork],
    channels: Mapping[str, Channel],
    breakers: BreakerBoard,
    settings: NotifySettings,
    rng: random.Random,
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
                    .limit(settings.dispatch_batch_size)
                )
            )
            .scalars()
            .all()
        )
    # SQLite has one writer; parallel attempts would only queue for its lock
    sqlite = settings.database_url.startswith("sqlite")
    gate = asyncio.Semaphore(1 if sqlite else settings.dispatch_concurrency)

    async def one(notification_id: str) -> None:
        async with gate, uow_factory() as uow:
            query = select(notifications).where(
                notifications.c.id == notification_id, notifications.c.status == "pending"
            )
            if uow.conn.dialect.name == "postgresql":
                # another replica may hold it; skip rather than deliver twice
                query = query.with_for_update(skip_locked=True)
            row = (await uow.execute(query)).first()
            if row is not None:
                await attempt(
                    uow=uow,
                    row=row,
                    channels=channels,
                    breakers=breakers,
                    settings=settings,
                    rng=rng,
                )

    await asyncio.gather(*(one(n) for n in due))
    return len(due)


async def attempt(
    *,
    uow: UnitOfWork,
    row: Any,
    channels: Mapping[str, Channel],
    breakers: BreakerBoard,
    settings: NotifySettings,
    rng: random.Random,
) -> None:
    """One delivery attempt, logged, with its outcome recorded in the same transaction."""
    channel = channels.get(row.channel)
    if channel is None:
        await _finish(uow, row, row.attempts, f"no channel {row.channel!r}", settings, dead=True)
        return
    address = row.address or settings.webhook_url
    gateway = channel.gateway(address)
    breaker = breakers.get(row.channel, gateway)
    now = uow.clock.now()
    if not breaker.allow(now):
        metrics.HELD_BY_BREAKER.labels(row.channel).inc()
        # the gateway keeps failing: wait for the breaker instead of spending an attempt
        await uow.execute(
            update(notifications)
            .where(notifications.c.id == row.id)
            .values(next_attempt_at=breaker.retry_at(now), last_error="circuit open")
        )
        return
    number = row.attempts + 1
    status_code: int | None = None
    error: str | None = None
    message = Outgoing(
        notification_id=row.id,
        address=address,
        text=row.body.get("text", ""),
        body=row.body | {"notification_id": row.id, "recipient": row.recipient},
    )
    try:
        status_code = await channel.send(message)
    except DeliveryError as exc:
        error, status_code = str(exc) or type(exc).__name__, exc.status_code
    now = uow.clock.now()
    breaker.record(ok=error is None, now=now, error=error)
    metrics.ATTEMPTS.labels(row.channel, "ok" if error is None else "error").inc()
    metrics.BREAKER_OPEN.labels(row.channel, gateway).set(int(breaker.state == "open"))
    await uow.execute(
        insert(delivery_attempts).values(
            notification_id=row.id, attempt=number, at=now, status_code=status_code, error=error
        )
    )
    if error is None:
        await _finish(uow, row, number, None, settings, dead=False)
    elif rules.attempt_limit(number, row.attempt_limit, settings.max_attempts):
        await _finish(uow, row, number, error, settings, dead=True)
    else:
        delay = rules.next_attempt_delay(
            number, base=settings.retry_base_seconds, cap=settings.retry_max_seconds, rng=rng
        )
        log.warning("notification %s attempt %d failed: %s", row.id, number, error)
        await uow.execute(
            update(notifications)
            .where(notifications.c.id == row.id)
            .values(attempts=number, next_attempt_at=now + delay, last_error=error)
        )


async def _finish(
    uow: UnitOfWork,
    row: Any,
    attempts: int,
    error: str | None,
    settings: NotifySettings,
    *,
    dead: bool,
) -> None:
    """Delivered, or dead-lettered after the last attempt; either way an event goes out."""
    now = uow.clock.now()
    common = {
        "notification_id": row.id,
        "source_event_id": row.source_event_id,
        "recipient": row.recipient,
        "channel": row.channel,
        "attempts": attempts,
    }
    outcome: NotificationDelivered | NotificationFailed
    if dead:
        values: dict[str, Any] = {"status": "failed", "last_error": error}
        outcome = NotificationFailed(**common, error=error or "unknown")
        metrics.DEAD_LETTERED.labels(row.channel).inc()
        log.error("notification %s dead after %d attempts: %s", row.id, attempts, error)
    else:
        values = {"status": "delivered", "delivered_at": now, "last_error": None}
        outcome = NotificationDelivered(**common)
    await uow.execute(
        update(notifications)
        .where(notifications.c.id == row.id)
        .values(attempts=attempts, **values)
    )
    await uow.record(
        new_event(
            outcome,
            household_id=row.household_id,
            source="notify",
            correlation_id=row.body.get("correlation_id") or row.id,
            clock=uow.clock,
        ),
        settings.topic("notifications"),
    )
