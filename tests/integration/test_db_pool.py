"""The pool's liveness check: asked only of a connection that sat idle (shared/db.py).

A session the server ended (as a restart ends them all) is simulated with pg_terminate_backend.
"""

from __future__ import annotations

from datetime import UTC, datetime

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


async def test_driver_insert_stores_several_tables_in_one_atomic_statement_in_order(
    pg_url: str,
) -> None:
    """`driver_insert` (the group commit's path): the rows of every table in one statement,
    atomic with no transaction around it, serial ids in the rows' order, JSON as JSON; errors
    named as SQLAlchemy's (IntegrityError / DataError)."""
    engine = db.create_engine(pg_url)
    metadata = db.MetaData()
    parents = db.Table(
        "driver_parents", metadata, db.Column("id", db.BigInteger, primary_key=True),
        db.Column("name", db.String(10)), db.Column("doc", db.JSON),
    )  # fmt: skip
    children = db.Table(
        "driver_children", metadata, db.Column("id", db.Integer, primary_key=True),
        db.Column("at", db.DateTime(timezone=True)), db.Column("raw", db.LargeBinary),
    )  # fmt: skip
    now = datetime.now(UTC)
    names = [f"p{n}" for n in (5, 1, 9, 3, 7, 2)]  # not in any order the database would pick
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with db.driver_connection(engine) as driver:
            await db.driver_insert(
                driver,
                (parents, [{"name": n, "doc": {"n": [n]} if n != "p9" else None} for n in names]),
                (children, [{"id": 1, "at": now, "raw": b"\x00\x01"}]),
                (children, []),  # an empty part is left out
            )
        with pytest.raises(IntegrityError):  # the child's key is taken: no parent row either
            async with db.driver_connection(engine) as driver:
                await db.driver_insert(
                    driver,
                    (parents, [{"name": "lost", "doc": None}]),
                    (children, [{"id": n, "at": now, "raw": None} for n in (2, 1)]),
                )
        with pytest.raises(DataError):
            async with db.driver_connection(engine) as driver:
                await driver.execute("SELECT 1 / 0")
        async with engine.connect() as conn:
            query = text("SELECT name, doc FROM driver_parents ORDER BY id")
            stored = (await conn.execute(query)).all()
            kids = (await conn.execute(text("SELECT id, at, raw FROM driver_children"))).all()
        assert [r.name for r in stored] == names
        assert stored[0].doc == {"n": ["p5"]} and stored[2].doc is None
        assert [(k.id, k.at, k.raw) for k in kids] == [(1, now, b"\x00\x01")]
    finally:
        await engine.dispose()


async def test_a_driver_connection_on_a_dead_session_is_invalidated_and_not_reused(
    pg_url: str,
) -> None:
    """A session the server ended under a driver connection: DBAPIError with
    connection_invalidated (the APIs' 503), and the pool never hands that connection out again."""
    engine = db.create_engine(pg_url)
    try:
        pid = await _backend_pid(engine)
        await _end_session(pg_url, pid)
        with pytest.raises(DBAPIError) as failed:
            async with db.driver_connection(engine) as driver:
                await driver.execute("SELECT 1")
        assert failed.value.connection_invalidated
        async with db.driver_connection(engine) as driver:
            assert await driver.fetchval("SELECT pg_backend_pid()") not in (pid, 0)
    finally:
        await engine.dispose()
