"""The pool's liveness check: asked only of a connection that sat idle (shared/db.py).

A session the server ended (as a restart ends them all) is simulated with pg_terminate_backend.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from shared import db
from tests.conftest import PG_DSN

pytestmark = [pytest.mark.postgres]


async def _backend_pid(engine: db.AsyncEngine) -> int:
    async with engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await conn.commit()
    return int(pid)


async def _end_session(pg_url: str, pid: int) -> None:
    conn = await asyncpg.connect(f"{PG_DSN}/{pg_url.rsplit('/', 1)[1]}")
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_an_idle_dead_connection_is_replaced_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.create_engine(pg_url)
    try:
        pid = await _backend_pid(engine)
        await _end_session(pg_url, pid)
        monkeypatch.setattr(db, "PING_IF_IDLE_SECONDS", 0.0)  # every connection counts as idle
        assert await _backend_pid(engine) != pid  # pinged, found dead, replaced: no error
    finally:
        await engine.dispose()


async def test_a_recently_used_connection_is_not_pinged_and_a_dead_one_fails_once(
    pg_url: str,
) -> None:
    engine = db.create_engine(pg_url)
    try:
        pid = await _backend_pid(engine)
        await _end_session(pg_url, pid)
        # used a moment ago: no ping, so the first statement meets the dead session
        with pytest.raises(DBAPIError) as failed:
            await _backend_pid(engine)
        assert failed.value.connection_invalidated
        # the pool was invalidated with it: the next unit of work gets a new session
        assert await _backend_pid(engine) not in (pid, 0)
    finally:
        await engine.dispose()


async def test_only_a_connection_idle_past_the_window_is_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-to-back units of work run only their own statements; past the window, each
    checkout asks the server first (SQLAlchemy's ping: BEGIN, an empty query, ROLLBACK)."""
    pings = 0
    ping = AsyncAdapt_asyncpg_connection.ping

    def counted(self: AsyncAdapt_asyncpg_connection) -> None:
        nonlocal pings
        pings += 1
        ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    engine = db.create_engine(pg_url)
    try:
        for _ in range(5):
            await _backend_pid(engine)
        assert pings == 0
        monkeypatch.setattr(db, "PING_IF_IDLE_SECONDS", 0.0)
        for _ in range(3):
            await _backend_pid(engine)
        assert pings == 3
    finally:
        await engine.dispose()


async def test_a_driver_transaction_commits_all_or_nothing_and_names_errors_as_sqlalchemy(
    pg_url: str,
) -> None:
    """`driver_transaction` (the group commit's path): its rows commit together, a failing
    statement rolls back the others and raises SQLAlchemy's IntegrityError / DataError."""
    engine = db.create_engine(pg_url)
    metadata = db.MetaData()
    table = db.Table(
        "driver_rows", metadata, db.Column("id", db.Integer, primary_key=True),
        db.Column("doc", db.JSON), db.Column("n", db.Integer),
    )  # fmt: skip
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with db.driver_transaction(engine) as driver:
            await db.driver_insert(driver, table, [{"id": 1, "doc": {"a": [1]}, "n": 2}])
        with pytest.raises(IntegrityError):
            async with db.driver_transaction(engine) as driver:
                await db.driver_insert(driver, table, [{"id": 2, "doc": None, "n": 1}])
                await db.driver_insert(driver, table, [{"id": 1, "doc": None, "n": 1}])
        with pytest.raises(DataError):
            async with db.driver_transaction(engine) as driver:
                await driver.execute("SELECT 1 / 0")
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, doc FROM driver_rows"))).all()
        assert [(r.id, r.doc) for r in rows] == [(1, {"a": [1]})]
    finally:
        await engine.dispose()


async def test_a_driver_transaction_on_a_dead_session_is_invalidated_and_not_reused(
    pg_url: str,
) -> None:
    """A session the server ended under a driver transaction: DBAPIError with
    connection_invalidated (the APIs' 503), and the pool never hands that connection out again."""
    engine = db.create_engine(pg_url)
    try:
        pid = await _backend_pid(engine)
        await _end_session(pg_url, pid)
        with pytest.raises(DBAPIError) as failed:
            async with db.driver_transaction(engine) as driver:
                await driver.execute("SELECT 1")
        assert failed.value.connection_invalidated
        async with db.driver_transaction(engine) as driver:
            assert await driver.fetchval("SELECT pg_backend_pid()") not in (pid, 0)
    finally:
        await engine.dispose()
