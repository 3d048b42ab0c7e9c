"""The services' per-batch lookups leave no reference cycles behind (shared.db.one_of).

An IN list, a function of literals or a startswith built into a statement on every call leaves
SQLAlchemy objects in reference cycles, which only the garbage collector frees; under load
each collection that walked them stopped the process for tens of milliseconds. The hot
lookups use statements built once, their values bound when they run."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from services.assistance import opening, visiting
from services.assistance import repository as assistance_repo
from services.assistance.models import metadata as assistance_metadata
from services.notify.handlers import Lookups, load_roster
from services.notify.models import metadata as notify_metadata
from services.notify.models import recipients
from services.risk import repository as risk_repo
from services.risk.config import RiskSettings
from services.risk.models import households
from services.risk.models import metadata as risk_metadata
from services.risk.signal_batch import SignalBatch
from shared.clock import FrozenClock
from shared.db import UnitOfWork, create_engine, messaging_tables, one_of

CLOCK = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
UowFactory = Callable[[], UnitOfWork]


async def _factory(
    path: Path, metadata: MetaData
) -> tuple[UowFactory, Callable[[], Awaitable[None]]]:
    messaging = MetaData()
    outbox, processed = messaging_tables(messaging)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(messaging.create_all)
    return (lambda: UnitOfWork(engine, outbox, processed, CLOCK, lambda: None)), engine.dispose


@pytest.fixture
async def risk_uow(tmp_path: Path) -> AsyncIterator[UowFactory]:
    make, dispose = await _factory(tmp_path / "risk.db", risk_metadata)
    yield make
    await dispose()


@pytest.fixture
async def notify_uow(tmp_path: Path) -> AsyncIterator[UowFactory]:
    make, dispose = await _factory(tmp_path / "notify.db", notify_metadata)
    yield make
    await dispose()


@pytest.fixture
async def assistance_uow(tmp_path: Path) -> AsyncIterator[UowFactory]:
    make, dispose = await _factory(tmp_path / "assistance.db", assistance_metadata)
    yield make
    await dispose()


async def sqlalchemy_cycles(
    make: UowFactory, work: Callable[[UnitOfWork], Awaitable[object]]
) -> int:
    """SQLAlchemy objects left in reference cycles by 20 runs of `work` (after one to warm the
    statement cache), each in its own unit of work."""
    async with make() as uow:
        await work(uow)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            async with make() as uow:
                await work(uow)
        gc.collect()
        found = sum(type(o).__module__.startswith("sqlalchemy") for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found


async def test_an_in_list_built_per_call_leaves_cycles_one_bound_at_run_time_does_not(
    risk_uow: UowFactory,
) -> None:
    async def built_per_call(uow: UnitOfWork) -> object:
        return (await uow.execute(select(households).where(households.c.id.in_(["a", "b"])))).all()

    built_once = select(households).where(one_of(households.c.id, "ids"))

    async def bound(uow: UnitOfWork) -> object:
        return (await uow.execute(built_once, {"ids": ["a", "b"]})).all()

    assert await sqlalchemy_cycles(risk_uow, built_per_call) >= 20  # what this test would see
    assert await sqlalchemy_cycles(risk_uow, bound) == 0


async def test_risk_lookups_leave_no_cycles(risk_uow: UowFactory) -> None:
    ids = {"hh-1", "hh-2"}

    async def lookups(uow: UnitOfWork) -> object:
        await risk_repo.lock_households(uow, ids)
        await risk_repo.households_by_id(uow, ids)
        await risk_repo.set_social_security(uow, sorted(ids))
        await risk_repo.households_with_open_cases(uow, ids)
        await SignalBatch(uow, RiskSettings()).load(ids)
        return None

    assert await sqlalchemy_cycles(risk_uow, lookups) == 0


async def test_notify_lookups_leave_no_cycles(notify_uow: UowFactory) -> None:
    async with notify_uow() as uow:
        await uow.execute(
            recipients.insert().values(
                cadre_id="c-1", name="Li", rank="village", township_code="130102001",
                village_codes=["130102001001"], contacts={}, active=True, updated_at=CLOCK.now(),
            )
        )  # fmt: skip

    async def lookups(uow: UnitOfWork) -> object:
        found = Lookups()
        await found.prefetch(uow, ["hh-1", "hh-2"])
        await found.prefetch_rosters(uow, ["130102001001", "130203001001"])
        await Lookups().roster(uow, "130102001001", ["c-9"])
        await load_roster(uow, "130102001001", ["c-9"])
        return None

    assert await sqlalchemy_cycles(notify_uow, lookups) == 0


async def test_assistance_lookups_leave_no_cycles(assistance_uow: UowFactory) -> None:
    async def lookups(uow: UnitOfWork) -> object:
        await opening._load(uow, {"case-1", "case-2"})
        await assistance_repo.plan_measures(uow, "plan-1")
        await assistance_repo.plan_measures(uow, "plan-1", active_only=False)
        await visiting._active_codes(uow, "hh-1")
        return None

    assert await sqlalchemy_cycles(assistance_uow, lookups) == 0
