"""Async SQLAlchemy engine and unit of work, on PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    event,
    insert,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shared.clock import Clock
from shared.events import Envelope
from shared.metrics import count_domain_events

Id = BigInteger().with_variant(Integer, "sqlite")


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the outbox and processed-events tables every service owns to its metadata."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(100), nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True)),
        Index("ix_outbox_unpublished", "published_at", "id"),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )
    return outbox, processed


def create_engine(url: str) -> AsyncEngine:
    """An engine tuned for the dialect: WAL and a busy timeout on SQLite, a pool on PostgreSQL."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


class UnitOfWork:
    """One database transaction: the handler's writes, its outbox rows and its dedup mark."""

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        processed: Table,
        clock: Clock,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._processed = processed
        self.clock = clock
        self._on_commit = on_commit
        self._recorded = 0
        self._counted: list[Envelope[Any]] = []
        self.conn: AsyncConnection

    async def __aenter__(self) -> UnitOfWork:
        self.conn = await self._engine.connect()
        await self.conn.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                await self.conn.commit()
                count_domain_events(self._counted)
                if self._recorded and self._on_commit:
                    self._on_commit()
            else:
                await self.conn.rollback()
        finally:
            await asyncio.shield(self.conn.close())

    async def execute(self, statement: Any, *args: Any) -> Any:
        """Run a statement inside this transaction."""
        return await self.conn.execute(statement, *args)

    async def record(self, envelope: Envelope[Any], topic: str) -> None:
        """Put an outgoing event on the outbox; the relay publishes it after commit."""
        await self.conn.execute(
            insert(self._outbox).values(
                event_id=str(envelope.event_id),
                topic=topic,
                key=envelope.household_id,
                value=envelope.to_bytes(),
                created_at=self.clock.now(),
            )
        )
        self._recorded += 1
        self._counted.append(envelope)

    async def first_delivery(self, consumer: str, event_id: str) -> bool:
        """Mark an event processed by `consumer`; False when it already was (a redelivery)."""
        dialect = sqlite if self.conn.dialect.name == "sqlite" else postgresql
        stmt = (
            dialect.insert(self._processed)
            .values(consumer=consumer, event_id=event_id, processed_at=self.clock.now())
            .on_conflict_do_nothing()
        )
        result = await self.conn.execute(stmt)
        return bool(result.rowcount == 1)

    async def first_deliveries(self, consumer: str, event_ids: list[str]) -> set[str]:
        """Mark many events processed in one statement; returns the ids seen for the first time."""
        if not event_ids:
            return set()
        dialect = sqlite if self.conn.dialect.name == "sqlite" else postgresql
        now = self.clock.now()
        stmt = (
            dialect.insert(self._processed)
            .values([{"consumer": consumer, "event_id": e, "processed_at": now} for e in event_ids])
            .on_conflict_do_nothing()
            .returning(self._processed.c.event_id)
        )
        return {str(e) for e in (await self.conn.execute(stmt)).scalars()}


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def utc(value: datetime) -> datetime:
    """SQLite gives naive datetimes back; everything stored here is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
