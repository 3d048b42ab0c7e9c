"""Delivery: due notifications claimed with a lease, tried with timeouts, backoff and breakers,
and their outcomes recorded."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import bindparam, insert, select, update

from services.notify import metrics, rules
from services.notify.breaker import BreakerBoard
from services.notify.channels import Channel, DeliveryError, Outgoing
from services.notify.config import NotifySettings
from services.notify.models import delivery_attempts, notifications
from shared.clock import Clock
from shared.db import UnitOfWork
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
    """One pass: claim the due notifications, attempt each once, record the outcomes; returns
    the count. The running service keeps passes overlapping instead (`Dispatcher`)."""
    rows = await claim_due(uow_factory, settings, settings.dispatch_batch_size)
    if rows:
        gate = asyncio.Semaphore(settings.dispatch_concurrency)
        clock = uow_factory().clock
        tried = await asyncio.gather(
            *(try_one(row, channels, breakers, settings, gate, clock) for row in rows)
        )
        await record(uow_factory, tried, settings, rng)
    return len(rows)


async def claim_due(
    uow_factory: Callable[[], UnitOfWork], settings: NotifySettings, limit: int
) -> list[Any]:
    """Take up to `limit` due notifications in a short transaction of their own: each gets a
    lease (its next attempt moved past the longest its send can take), so no other pass or
    replica takes it meanwhile, and no transaction or row lock is held while gateways answer.
    If the process dies before the outcome is recorded, the lease runs out and the message is
    sent again; the webhook's Idempotency-Key (the notification id) lets a receiver drop it."""
    async with uow_factory() as uow:
        now = uow.clock.now()
        query = (
            select(notifications)
            .where(notifications.c.status == "pending", notifications.c.next_attempt_at <= now)
            .order_by(notifications.c.next_attempt_at)
            .limit(limit)
        )
        if uow.conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = (await uow.execute(query)).all()
        if rows:
            longest = max(channel_timeout(r.channel, settings) for r in rows)
            until = [now + lease(n, longest, settings) for n in range(len(rows))]
            leases = [{"b_id": r.id, "b_until": t} for r, t in zip(rows, until, strict=True)]
            await uow.execute(LEASE, leases)
    return list(rows)


def lease(position: int, longest: float, settings: NotifySettings) -> timedelta:
    """How long the `position`-th notification of a claim is held: the sends ahead of it in the
    slots (the claim's own and at most one round of earlier claims'), its own, and a margin;
    `longest` is the longest timeout among the claim's channels."""
    rounds = position // max(settings.dispatch_concurrency, 1) + 2
    return timedelta(seconds=rounds * longest + 10)


def channel_timeout(channel: str, settings: NotifySettings) -> float:
    """The longest one send on `channel` may take (an unknown channel fails at once)."""
    timeout = getattr(settings, f"{channel}_timeout_seconds", 0.0)
    return float(timeout) if isinstance(timeout, int | float) else 0.0


LEASE = (
    update(notifications)
    .where(notifications.c.id == bindparam("b_id"))
    .values(next_attempt_at=bindparam("b_until"))
)


async def record(
    uow_factory: Callable[[], UnitOfWork],
    tried: list[Tried],
    settings: NotifySettings,
    rng: random.Random,
) -> None:
    """Write the outcomes of claimed notifications in one transaction. A notification that is
    no longer as it was claimed (its lease ran out and another pass recorded it first) is left
    as that pass wrote it, so each attempt is counted and each outcome announced once."""
    async with uow_factory() as uow:
        current = select(
            notifications.c.id, notifications.c.status, notifications.c.attempts
        ).where(notifications.c.id.in_([t.row.id for t in tried]))
        if uow.conn.dialect.name == "postgresql":
            current = current.with_for_update()
        now = {r.id: (r.status, r.attempts) for r in (await uow.execute(current)).all()}
        fresh = [t for t in tried if now.get(t.row.id) == ("pending", t.row.attempts)]
        if len(fresh) < len(tried):
            log.warning(
                "%d notification outcomes were recorded by another pass first",
                len(tried) - len(fresh),
            )
        if fresh:
            await record_outcomes(uow, fresh, settings, rng)


class Dispatcher:
    """Keeps the delivery slots busy. A new claim is made as soon as every claimed notification
    has a slot (not when the slowest send of the last claim has finished), and each claim's
    outcomes are recorded when its own sends are done: a slow or dead gateway holds only the
    slots its own sends occupy, and alerts for everyone else keep leaving."""

    def __init__(
        self,
        *,
        uow_factory: Callable[[], UnitOfWork],
        channels: Mapping[str, Channel],
        breakers: BreakerBoard,
        settings: NotifySettings,
        rng: random.Random,
        wake: asyncio.Event,
    ) -> None:
        self.uow_factory, self.channels, self.breakers = uow_factory, channels, breakers
        self.settings, self.rng, self.wake = settings, rng, wake
        self.clock = uow_factory().clock
        self.gate = asyncio.Semaphore(settings.dispatch_concurrency)
        self.waiting = 0  # claimed notifications without a slot yet
        self.moved = asyncio.Event()  # one got a slot, or a claim was recorded
        self.passes: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Claim, start the sends, and wait until there is room and a reason to claim again:
        new notifications committed (`wake`), a full claim (more are due), or the poll
        interval (retries and released digests come due by the clock)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.wake.clear()
                more = await self._claim()
                deadline = loop.time() + self.settings.dispatch_poll_seconds
                while self.waiting or not (more or self.wake.is_set() or loop.time() >= deadline):
                    self.moved.clear()
                    timeout = None if self.waiting else max(deadline - loop.time(), 0.0)
                    await first_of(self.moved, self.wake, timeout=timeout)
        finally:
            await self.drain()

    async def _claim(self) -> bool:
        limit = self.settings.dispatch_batch_size
        try:
            rows = await claim_due(self.uow_factory, self.settings, limit)
        except Exception:
            log.exception("dispatch claim failed")
            return False
        if rows:
            self.waiting += len(rows)
            task = asyncio.create_task(self._pass(rows), name="dispatch-pass")
            self.passes.add(task)
            task.add_done_callback(self.passes.discard)
        return len(rows) == limit

    async def _pass(self, rows: list[Any]) -> None:
        try:
            tried = await asyncio.gather(
                *(try_one(row, self.channels, self.breakers, self.settings, self.gate,
                          self.clock, started=self._started) for row in rows)
            )  # fmt: skip
            await record(self.uow_factory, tried, self.settings, self.rng)
        except Exception:
            # sent but not recorded: the leases run out and the messages go again
            log.exception("dispatch pass of %d notifications failed", len(rows))
        finally:
            self.moved.set()

    def _started(self) -> None:
        self.waiting -= 1
        if not self.waiting:
            self.moved.set()

    async def drain(self, timeout: float = 5.0) -> None:
        """On stop: let the passes in hand finish (their sends are under way), briefly."""
        if self.passes:
            _done, late = await asyncio.wait(set(self.passes), timeout=timeout)
            for task in late:
                task.cancel()


async def first_of(*events: asyncio.Event, timeout: float | None) -> None:
    """Wait until one of `events` is set, or `timeout` seconds."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def try_one(
    row: Any,
    channels: Mapping[str, Channel],
    breakers: BreakerBoard,
    settings: NotifySettings,
    gate: asyncio.Semaphore,
    clock: Clock,
    started: Callable[[], None] | None = None,
) -> Tried:
    """One delivery attempt, unless there is no such channel or its breaker is open;
    `started` is called when the attempt has its slot."""
    channel = channels.get(row.channel)
    if channel is None:
        if started is not None:
            started()
        return Tried(row, "no_channel", clock.now(), error=f"no channel {row.channel!r}")
    address = row.address or settings.webhook_url
    gateway = channel.gateway(address)
    breaker = breakers.get(row.channel, gateway)
    # the breaker is asked inside the gate: failures recorded by earlier sends can open it
    async with gate:
        if started is not None:
            started()
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
    if attempts:
        await uow.execute(insert(delivery_attempts), attempts)
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
