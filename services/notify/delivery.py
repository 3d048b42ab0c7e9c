"""Delivery: each due notification tried once per pass, with timeouts, backoff and breakers."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, func, select, update

from services.notify import metrics, rules
from services.notify.breaker import BreakerBoard
from services.notify.channels import Channel, DeliveryError, Outgoing
from services.notify.config import NotifySettings
from services.notify.models import delivery_attempts, notifications
from shared.clock import Clock
from shared.db import COPY_FROM, UnitOfWork, bulk_insert, utc
from shared.events import Envelope, NotificationDelivered, NotificationFailed, new_event

log = logging.getLogger(__name__)


@dataclass
class Tried:
    """What happened to one claimed notification in this pass."""

    row: Any
    kind: Literal["no_channel", "held", "sent"]
    at: datetime
    status_code: int | None = None
    error: str | None = None
    retry_at: datetime | None = None  # held: when the breaker lets a trial through


async def deliver_due(
    *,
    uow_factory: Callable[[], UnitOfWork],
    channels: Mapping[str, Channel],
    breakers: BreakerBoard,
    settings: NotifySettings,
    rng: random.Random,
) -> int:
    """Attempt every due notification once; returns the count.

    One pass is one transaction: the due rows are claimed, urgent ones first and a department
    feed's after the others of their kind (locked on PostgreSQL, so another replica skips
    them), sent concurrently in that order, and every outcome (attempt rows, the new state,
    the Delivered/Failed events) is written together before the commit. A crash between a
    receiver's 200 and the commit means a resend, which the webhook's Idempotency-Key (the
    notification id) lets the receiver drop."""
    async with uow_factory() as uow:
        now, size = uow.clock.now(), settings.dispatch_batch_size
        # urgent alerts first: behind a backlog (a feed that opened thousands of cases, a
        # receiver that was down) a green-channel alert must not wait its turn
        rows = await _claim(uow, now, size, urgent=True)
        if len(rows) < size:
            rows += await _claim(uow, now, size - len(rows), urgent=False)
        if not rows:
            return 0
        gate = asyncio.Semaphore(settings.dispatch_concurrency)
        tried = await asyncio.gather(
            *(try_one(row, channels, breakers, settings, gate, uow.clock) for row in rows)
        )
        await record_outcomes(uow, tried, settings, rng)
    return len(rows)


async def _claim(uow: UnitOfWork, now: datetime, limit: int, *, urgent: bool) -> list[Any]:
    """Due pending rows of one kind (urgent, or all the others), those from a department feed
    last, oldest first; on PostgreSQL locked so that another replica's pass skips them. Fewer
    urgent rows than `limit` means no other urgent one is due and unclaimed, so the second
    call leaves them out."""
    priority = notifications.c.priority
    query = (
        select(notifications)
        .where(
            notifications.c.status == "pending",
            notifications.c.next_attempt_at <= now,
            priority == "urgent" if urgent else priority != "urgent",
        )
        # a department feed's alerts after the declarations' and reports' of their kind: a
        # farmer's green-channel alert is not queued behind the thousands a feed opens
        .order_by(notifications.c.from_feed, notifications.c.next_attempt_at)
        .limit(limit)
    )
    if uow.conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list((await uow.execute(query)).all())


PRIORITIES = ("urgent", "normal", "low")
LANES = {False: "direct", True: "feed"}  # by from_feed


async def measure_backlog(uow_factory: Callable[[], UnitOfWork]) -> None:
    """Set the backlog gauges: how many notifications are due and unsent, and how long the
    oldest has been due, per priority and lane (every pair gets a value, 0 when none waits)."""
    due = (
        select(
            notifications.c.priority,
            notifications.c.from_feed,
            func.count().label("n"),
            func.min(notifications.c.next_attempt_at).label("oldest"),
        )
        .where(
            notifications.c.status == "pending",
            notifications.c.next_attempt_at <= bindparam("now"),
        )
        .group_by(notifications.c.priority, notifications.c.from_feed)
    )
    async with uow_factory() as uow:
        now = uow.clock.now()
        found = (await uow.execute(due, {"now": now})).all()
        rows = {(r.priority, bool(r.from_feed)): r for r in found}
    for priority in PRIORITIES:
        for from_feed, lane in LANES.items():
            row = rows.get((priority, from_feed))
            metrics.DUE_WAITING.labels(priority, lane).set(row.n if row else 0)
            age = (now - utc(row.oldest)).total_seconds() if row else 0.0
            metrics.DUE_OLDEST.labels(priority, lane).set(max(age, 0.0))


async def try_one(
    row: Any,
    channels: Mapping[str, Channel],
    breakers: BreakerBoard,
    settings: NotifySettings,
    gate: asyncio.Semaphore,
    clock: Clock,
) -> Tried:
    """One delivery attempt, unless there is no such channel or its breaker is open."""
    channel = channels.get(row.channel)
    if channel is None:
        return Tried(row, "no_channel", clock.now(), error=f"no channel {row.channel!r}")
    address = row.address or settings.webhook_url
    gateway = channel.gateway(address)
    breaker = breakers.get(row.channel, gateway)
    # the breaker is asked inside the gate: failures recorded by earlier sends can open it
    async with gate:
        now = clock.now()
        if not breaker.allow(now):
            metrics.HELD_BY_BREAKER.labels(row.channel).inc()
            # the gateway keeps failing: wait for the breaker instead of spending an attempt
            return Tried(row, "held", now, error="circuit open", retry_at=breaker.retry_at(now))
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
        except Exception as exc:  # an adapter bug must not undo the rest of the pass
            log.exception("notification %s: %s adapter failed", row.id, row.channel)
            error = repr(exc)
        now = clock.now()
        breaker.record(ok=error is None, now=now, error=error)
    metrics.ATTEMPTS.labels(row.channel, "ok" if error is None else "error").inc()
    metrics.BREAKER_OPEN.labels(row.channel, gateway).set(int(breaker.state == "open"))
    return Tried(row, "sent", now, status_code=status_code, error=error)


async def record_outcomes(
    uow: UnitOfWork, tried: list[Tried], settings: NotifySettings, rng: random.Random
) -> None:
    """Write a pass's outcomes: one attempt row per send, each notification's new state, and
    a NotificationDelivered or NotificationFailed event for each one that is finished."""
    attempts: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    outcomes: list[Envelope[Any]] = []
    for t in tried:
        row = t.row
        state = {
            "b_id": row.id,
            "b_status": row.status,
            "b_attempts": row.attempts,
            "b_next_attempt_at": row.next_attempt_at,
            "b_last_error": t.error,
            "b_delivered_at": row.delivered_at,
        }
        if t.kind == "held":
            state["b_next_attempt_at"] = t.retry_at
        elif t.kind == "no_channel":
            state["b_status"] = "failed"
            outcomes.append(_finished(uow, row, row.attempts, t.error, settings, dead=True))
        else:
            number = row.attempts + 1
            state["b_attempts"] = number
            attempts.append(
                {"notification_id": row.id, "attempt": number, "at": t.at,
                 "status_code": t.status_code, "error": t.error}
            )  # fmt: skip
            if t.error is None:
                state["b_status"], state["b_delivered_at"] = "delivered", t.at
                outcomes.append(_finished(uow, row, number, None, settings, dead=False))
            elif rules.attempt_limit(number, row.attempt_limit, settings.max_attempts):
                state["b_status"] = "failed"
                outcomes.append(_finished(uow, row, number, t.error, settings, dead=True))
            else:
                delay = rules.next_attempt_delay(
                    number, base=settings.retry_base_seconds, cap=settings.retry_max_seconds,
                    rng=rng,
                )  # fmt: skip
                log.warning("notification %s attempt %d failed: %s", row.id, number, t.error)
                state["b_next_attempt_at"] = t.at + delay
        states.append(state)
    await bulk_insert(uow, delivery_attempts, attempts, copy_from=COPY_FROM)
    await uow.execute(UPDATE_STATE, states)
    await uow.record_many(outcomes, settings.topic("notifications"))


# one statement for every claimed row's new state, run with the pass's parameter list
UPDATE_STATE = (
    update(notifications)
    .where(notifications.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        last_error=bindparam("b_last_error"),
        delivered_at=bindparam("b_delivered_at"),
    )
)


def _finished(
    uow: UnitOfWork,
    row: Any,
    attempts: int,
    error: str | None,
    settings: NotifySettings,
    *,
    dead: bool,
) -> Envelope[Any]:
    """Delivered, or dead-lettered after the last attempt; either way an event goes out."""
    common = {
        "notification_id": row.id,
        "source_event_id": row.source_event_id,
        "recipient": row.recipient,
        "channel": row.channel,
        "attempts": attempts,
    }
    outcome: NotificationDelivered | NotificationFailed
    if dead:
        outcome = NotificationFailed(**common, error=error or "unknown")
        metrics.DEAD_LETTERED.labels(row.channel).inc()
        log.error("notification %s dead after %d attempts: %s", row.id, attempts, error)
    else:
        outcome = NotificationDelivered(**common)
    return new_event(
        outcome,
        household_id=row.household_id,
        source="notify",
        correlation_id=row.body.get("correlation_id") or row.id,
        clock=uow.clock,
    )
