"""The pool's liveness check: asked only of a connection that sat idle (shared/db.py).

A session the server ended (as a restart ends them all) is simulated with pg_terminate_backend.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.exc import DBAPIError

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
