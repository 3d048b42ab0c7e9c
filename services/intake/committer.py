"""Group commit: concurrent submissions share one transaction, each answered once it is durable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.exc import DataError, IntegrityError

from services.intake.handlers import (
    Accepted,
    IdempotencyConflict,
    Outcome,
    Prepared,
    store_batch,
    store_batch_on_driver,
)
from shared.db import UnitOfWork, driver_connection
from shared.metrics import count_domain_events
from shared.service import Runtime

log = logging.getLogger(__name__)
# a row-level problem: one item may be at fault, so the others are committed one by one
ROW_ERRORS = (IntegrityError, DataError)


# stores a batch atomically and returns each submission's answer, in order
Store = Callable[[list[Prepared]], Awaitable[list[Outcome]]]


def in_units_of_work(uow_factory: Callable[[], UnitOfWork]) -> Store:
    """A batch in one unit of work (SQLite, and what the tests drive)."""

    async def store(batch: list[Prepared]) -> list[Outcome]:
        async with uow_factory() as uow:
            return await store_batch(uow, batch)

    return store


def store_for(runtime: Runtime) -> Store:
    """The group commit's store: straight on asyncpg on PostgreSQL, where SQLAlchemy's
    execution layer cost more CPU than the batch's statements (bench/README.md), its rows in one
    statement that needs no transaction around it; a unit of work elsewhere. Either way the
    relay is woken and the events counted after the commit."""
    if runtime.engine.dialect.name != "postgresql":
        return in_units_of_work(runtime.uow)

    async def store(batch: list[Prepared]) -> list[Outcome]:
        async with driver_connection(runtime.engine) as driver:
            outcomes, stored = await store_batch_on_driver(driver, batch, now=runtime.clock.now())
        if stored:
            count_domain_events(p.event for p in stored)
            runtime.relay.wake()
        return outcomes

    return store


@dataclass
class _Waiting:
    prepared: Prepared
    answer: asyncio.Future[Accepted]


class GroupCommitter:
    """Takes whatever submissions are queued now (no waiting) and stores them in one commit.

    Round trips (checkout, BEGIN, INSERTs, COMMIT) are paid per batch instead of per request;
    while one batch commits the next one queues up, so batches grow with the load.
    """

    def __init__(self, store: Store, *, batch_max: int, concurrency: int) -> None:
        self._store = store
        self._batch_max = max(1, batch_max)
        self._concurrency = max(1, concurrency)
        self._queue: list[_Waiting] = []
        self._active = 0  # drains running; counted by the drains themselves (see _drain)
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until done
        # (kind, Idempotency-Key) of the submissions queued or committing: how many of each
        self._held: dict[tuple[str, str], int] = {}

    def holds(self, key: tuple[str, str]) -> bool:
        """Whether a submission under `key` (kind, Idempotency-Key) is queued or committing here:
        a request with the key then replays it (or conflicts), and stores nothing new."""
        return key in self._held

    async def submit(self, prepared: Prepared) -> Accepted:
        """Queue one submission; returns its answer after its commit (raises what storing did)."""
        waiting = _Waiting(prepared, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        if prepared.key:
            self._held[prepared.key] = self._held.get(prepared.key, 0) + 1
        if self._active < self._concurrency:
            self._active += 1
            task = asyncio.create_task(self._drain(), name="intake-group-commit")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await waiting.answer

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._batch_max]
                del self._queue[: self._batch_max]
                try:
                    await self._commit(batch)
                except BaseException:  # cancelled: the process is stopping; nobody waits forever
                    _fail(batch, RuntimeError("intake is stopping"))
                    raise
                finally:
                    self._release(batch)
        finally:
            # no await between the empty-queue check and this: a request queued meanwhile
            # always finds a free drain slot and starts one
            self._active -= 1

    def _release(self, batch: list[_Waiting]) -> None:
        """The batch's keys are no longer in flight: stored (a replay now finds them) or failed."""
        for waiting in batch:
            key = waiting.prepared.key
            if key:
                left = self._held.pop(key, 1) - 1
                if left:
                    self._held[key] = left

    async def _commit(self, batch: list[_Waiting]) -> None:
        try:
            outcomes = await self._store([w.prepared for w in batch])
        except ROW_ERRORS as exc:
            # e.g. a lost Idempotency-Key race with another process: the retry replays the winner
            if len(batch) > 1:
                log.warning(
                    "group commit of %d failed (%r); one by one",
                    len(batch),
                    getattr(exc, "orig", exc),
                )
            await self._one_by_one(batch)
            return
        except Exception as exc:
            _fail(batch, exc)  # e.g. the database is down: every request in it errors
            return
        for waiting, outcome in zip(batch, outcomes, strict=True):
            _answer(waiting, outcome)

    async def _one_by_one(self, batch: list[_Waiting]) -> None:
        for waiting in batch:
            for attempt in (1, 2):
                try:
                    outcome = (await self._store([waiting.prepared]))[0]
                except ROW_ERRORS as exc:
                    # a unique violation on the key: the second attempt replays the winner
                    if attempt == 2:
                        _fail([waiting], exc)
                    continue
                except Exception as exc:
                    _fail([waiting], exc)
                    break
                _answer(waiting, outcome)
                break


def _answer(waiting: _Waiting, outcome: Outcome) -> None:
    if waiting.answer.done():  # the request was cancelled (client gone); its row stays durable
        return
    if isinstance(outcome, IdempotencyConflict):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)


def _fail(batch: list[_Waiting], exc: Exception) -> None:
    for waiting in batch:
        if not waiting.answer.done():
            waiting.answer.set_exception(exc)
