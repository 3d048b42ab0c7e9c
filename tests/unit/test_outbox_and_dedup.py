"""Unit of work: outbox rows and dedup marks commit or roll back with the business write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData, func, select

from shared.clock import FrozenClock
from shared.db import UnitOfWork, create_engine, messaging_tables
from shared.events import CaseMerged, new_event

CLOCK = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))


@pytest.fixture
async def uow_factory(tmp_path):  # type: ignore[no-untyped-def]
    metadata = MetaData()
    outbox, processed = messaging_tables(metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    woken: list[int] = []
    yield (
        (lambda: UnitOfWork(engine, outbox, processed, CLOCK, lambda: woken.append(1))),
        outbox,
        woken,
    )
    await engine.dispose()


def _event():  # type: ignore[no-untyped-def]
    return new_event(
        CaseMerged(case_id="c", risk_types=["illness"]),
        household_id="hh",
        source="test",
        correlation_id="x",
        clock=CLOCK,
    )


async def test_first_delivery_then_redelivery(uow_factory) -> None:  # type: ignore[no-untyped-def]
    make, _, _ = uow_factory
    async with make() as uow:
        assert await uow.first_delivery("risk", "e-1") is True
    async with make() as uow:
        assert await uow.first_delivery("risk", "e-1") is False
        assert await uow.first_delivery("assistance", "e-1") is True


async def test_rollback_forgets_dedup_mark_and_outbox_row(uow_factory) -> None:  # type: ignore[no-untyped-def]
    make, outbox, woken = uow_factory
    with pytest.raises(RuntimeError):
        async with make() as uow:
            await uow.first_delivery("risk", "e-2")
            await uow.record(_event(), "t")
            raise RuntimeError("handler failed")
    async with make() as uow:
        assert (await uow.execute(select(func.count()).select_from(outbox))).scalar() == 0
        assert await uow.first_delivery("risk", "e-2") is True
    assert woken == []


async def test_commit_keeps_outbox_row_keyed_by_household_and_wakes_relay(uow_factory) -> None:  # type: ignore[no-untyped-def]
    make, outbox, woken = uow_factory
    event = _event()
    async with make() as uow:
        await uow.record(event, "holdline.cases.v1")
    async with make() as uow:
        row = (await uow.execute(select(outbox))).one()
    assert row.key == "hh" and row.topic == "holdline.cases.v1" and row.published_at is None
    assert row.value == event.to_bytes()
    assert woken == [1]


async def test_a_row_committed_while_a_pass_runs_is_published_by_the_next_pass_at_once(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """Not after the poll interval: the commit's wake-up must not be lost to the running pass."""
    import asyncio

    from shared.kafka import OutboxRelay
    from shared.settings import ServiceSettings

    metadata = MetaData()
    outbox, processed = messaging_tables(metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    settings = ServiceSettings(outbox_poll_seconds=60, outbox_metrics_seconds=60)
    relay = OutboxRelay(engine=engine, outbox=outbox, clock=CLOCK, settings=settings)

    def make() -> UnitOfWork:
        return UnitOfWork(engine, outbox, processed, CLOCK, relay.wake)

    sent: list[bytes] = []

    class Broker:
        """Acknowledges at once; the first send commits another row, as a request would while
        the pass waits for the broker."""

        async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
            sent.append(value)
            if len(sent) == 1:
                async with make() as uow:
                    await uow.record(_event(), "t")
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    async with make() as uow:
        await uow.record(_event(), "t")
    task = asyncio.create_task(relay.run(Broker()))  # type: ignore[arg-type]
    try:
        for _ in range(100):
            if len(sent) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(sent) == 2, "the second row waited for the 60 s poll"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()
