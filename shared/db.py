"""Async SQLAlchemy engine and unit of work, on PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from operator import itemgetter
from types import TracebackType
from typing import Any

import asyncpg
import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    false,
    insert,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import ColumnElement

from shared.clock import LOCAL_ZONE, Clock, local_date
from shared.events import Envelope
from shared.metrics import count_domain_events

Id = BigInteger().with_variant(Integer, "sqlite")


def messaging_tables(metadata: MetaData, *, bulk_lane: bool = False) -> tuple[Table, Table]:
    """Add the outbox and processed-events tables every service owns to its metadata.

    `bulk_lane`: the service also writes events of bulk work (a department feed's), marked
    `bulk`; its relay publishes the others before them where no household's order changes
    (OutboxRelay), with two partial indexes for it."""
    lane: list[Any] = []
    if bulk_lane:
        unpublished = "published_at IS NULL AND {} bulk"
        lane = [
            Column("bulk", Boolean, nullable=False, server_default=false()),
            Index(
                "ix_outbox_unpublished_direct",
                "id",
                postgresql_where=text(unpublished.format("NOT")),
                sqlite_where=text(unpublished.format("NOT")),
            ),
            Index(
                "ix_outbox_unpublished_bulk",
                "key",
                "id",
                postgresql_where=text(unpublished.format("")),
                sqlite_where=text(unpublished.format("")),
            ),
        ]
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
        *lane,
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )
    return outbox, processed


def json_text(value: Any) -> str:
    """JSON for a JSON column; orjson is several times faster than the standard library."""
    return orjson.dumps(value).decode()


def create_engine(url: str) -> AsyncEngine:
    """An engine tuned for the dialect: WAL and a busy timeout on SQLite, a pool on PostgreSQL."""
    codec = {"json_serializer": json_text, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **codec)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_use_lifo=True, **codec)
    _ping_when_idle(engine)
    return engine


# a pooled connection given back this recently is taken as alive without asking the server
PING_IF_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ask the server whether a pooled connection is alive only when it has been idle.

    SQLAlchemy's `pool_pre_ping` asks on every checkout, and on asyncpg its ping is BEGIN, an
    empty query and ROLLBACK: three round trips, 140-250 us of CPU on a unit of work of about
    400 (bench/README.md). A connection given back less than PING_IF_IDLE_SECONDS ago is used
    without one; if the server restarted meanwhile, its first statement fails, SQLAlchemy
    recognises the disconnect and invalidates the pool, and the caller's error path runs (a
    consumer retries, intake answers 503). A connection that was idle longer is pinged, and a
    dead one replaced before use, as the pre-ping did. The most recently returned connection is
    handed out first (`pool_use_lifo`), so under load the same few stay warm."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "connect")
    @event.listens_for(pool, "checkin")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < PING_IF_IDLE_SECONDS:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:  # the pool replaces the connection and checks out another
            raise DisconnectionError(f"pooled connection is dead: {exc!r}") from exc


class UnitOfWork:
    """One database transaction: the handler's writes, its outbox rows and its dedup mark."""

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        processed: Table,
        clock: Clock,
        on_commit: Callable[[], None] | None = None,
        zone: tzinfo = LOCAL_ZONE,
    ) -> None:
        self._engine = engine
        self.zone = zone
        self._outbox = outbox
        self._processed = processed
        self.clock = clock
        self._on_commit = on_commit
        self._recorded = 0
        self._counted: list[Envelope[Any]] = []
        self._after_commit: list[Callable[[], None]] = []
        self.conn: AsyncConnection

    def today(self) -> date:
        """Today's local date (the service's time zone) by this unit's clock."""
        return local_date(self.clock.now(), self.zone)

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
                for callback in self._after_commit:
                    callback()
            else:
                await self.conn.rollback()
        finally:
            await asyncio.shield(self.conn.close())

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this transaction has committed (never on rollback)."""
        self._after_commit.append(callback)

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

    async def record_many(
        self, envelopes: list[Envelope[Any]], topic: str, bulk: Sequence[bool] = ()
    ) -> None:
        """Put many outgoing events on the outbox in one statement, in order. `bulk`, one
        flag an event, marks those of bulk work (an outbox made with `bulk_lane` only)."""
        if not envelopes:
            return
        rows = outbox_rows(((e, topic) for e in envelopes), self.clock.now())
        if bulk:
            for row, flag in zip(rows, bulk, strict=True):
                row["bulk"] = flag
        await bulk_insert(self, self._outbox, rows)
        self._recorded += len(envelopes)
        self._counted.extend(envelopes)

    async def record_rows(self, events: list[tuple[Envelope[Any], str]]) -> None:
        """Put (event, topic) pairs on the outbox, in order: a few in one INSERT (no extra
        round trip), a run of them by COPY on PostgreSQL as record_many does."""
        if not events:
            return
        rows = outbox_rows(events, self.clock.now())
        await bulk_insert(self, self._outbox, rows, copy_from=COPY_FROM)
        self._recorded += len(events)
        self._counted.extend(e for e, _ in events)

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
        # executemany, not one multi-row VALUES: the statement compiles once and is cached,
        # where a VALUES list of a new length is compiled again on every call
        stmt = (
            dialect.insert(self._processed)
            .on_conflict_do_nothing()
            .returning(self._processed.c.event_id)
        )
        rows = [{"consumer": consumer, "event_id": e, "processed_at": now} for e in event_ids]
        return {str(e) for e in (await self.conn.execute(stmt, rows)).scalars()}


def outbox_rows(events: Iterable[tuple[Envelope[Any], str]], now: datetime) -> list[dict[str, Any]]:
    """Outbox rows of (event, topic) pairs, in order."""
    return [
        {"event_id": str(e.event_id), "topic": topic, "key": e.household_id,
         "value": e.to_bytes(), "created_at": now}
        for e, topic in events
    ]  # fmt: skip


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection under a pooled one, used directly, each statement committing by
    itself (PostgreSQL only).

    For a hot path of a few fixed statements: SQLAlchemy's execution layer (its transaction
    bookkeeping, the adapter's await bridge, result objects) costs the client more CPU than the
    statements' round trips (bench/README.md). The pool, with its liveness ping, is the
    engine's. Errors come out as SQLAlchemy would raise them, so callers and the API's handlers
    treat both paths alike: IntegrityError, DataError, else DBAPIError; when the connection died
    it is invalidated (never handed out again) and the error says so (connection_invalidated).
    """
    async with engine.connect() as conn:
        driver = await driver_of(conn)
        try:
            yield driver
        except BaseException as exc:
            # a session the server ended may not show as closed yet (its goodbye still being
            # read), and one left inside a transaction (a rollback cut short) must not be reused
            died = (
                driver.is_closed() or isinstance(exc, _SESSION_LOST) or driver.is_in_transaction()
            )
            if died:
                await conn.invalidate()
            if isinstance(exc, (asyncpg.PostgresError, *_SESSION_LOST)):
                raise _as_sqlalchemy_error(exc, died) from exc
            raise


# client-side and server-side signs that a session is gone (or unusable) rather than that a
# statement failed in it
_SESSION_LOST = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    # the server ended the session (an administrator, a shutdown, a crash) or is starting; a
    # cancelled statement (the same SQLSTATE class) leaves its session usable
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    OSError,
)


async def driver_of(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a PostgreSQL connection of the engine's."""
    driver = (await conn.get_raw_connection()).driver_connection
    if not isinstance(driver, asyncpg.Connection):
        raise TypeError(f"not an asyncpg connection: {driver!r}")
    return driver


def _as_sqlalchemy_error(exc: Exception, died: bool) -> DBAPIError:
    kind: type[DBAPIError] = DBAPIError
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        kind = IntegrityError
    elif isinstance(exc, asyncpg.DataError):
        kind = DataError
    return kind(None, None, exc, connection_invalidated=died)


async def driver_insert(
    driver: asyncpg.Connection, *parts: tuple[Table, list[dict[str, Any]]]
) -> None:
    """INSERT each (table, rows) of `parts` with one statement: every table's rows go as one
    array a column, unnested in order, every table but the last in a data-modifying WITH
    clause. One statement is atomic by itself, so no transaction is needed around it: one
    round trip where BEGIN, an executemany a table and COMMIT took four. JSON columns go as
    JSON text."""
    parts = tuple((table, rows) for table, rows in parts if rows)
    if not parts:
        return
    statement, converts = _driver_insert(tuple((table, tuple(rows[0])) for table, rows in parts))
    args: list[list[Any]] = []
    for (_, rows), convert in zip(parts, converts, strict=True):
        values = [convert(row) for row in rows]
        args.extend(list(column) for column in zip(*values, strict=True))
    await driver.execute(statement, *args)


@cache
def _driver_insert(
    parts: tuple[tuple[Table, tuple[str, ...]], ...],
) -> tuple[str, list[Callable[[dict[str, Any]], tuple[Any, ...]]]]:
    dialect = postgresql.dialect()
    inserts: list[str] = []
    converts: list[Callable[[dict[str, Any]], tuple[Any, ...]]] = []
    number = 0
    for table, columns in parts:
        arrays, picks = [], []
        for column in columns:
            number += 1
            kind = table.c[column].type
            name = kind.compile(dialect=dialect)
            if isinstance(kind, JSON):  # sent as text, like COPY's rows
                arrays.append(f"${number}::text[]")
                picks.append(f'u."{column}"::{name}')
            else:
                arrays.append(f"${number}::{name}[]")
                picks.append(f'u."{column}"')
        names = ", ".join(f'"{c}"' for c in columns)
        inserts.append(
            f'INSERT INTO "{table.name}" ({names}) SELECT {", ".join(picks)}'
            f' FROM unnest({", ".join(arrays)}) WITH ORDINALITY AS u({names}, "row__")'
            ' ORDER BY "row__"'  # serial ids follow the rows' order
        )
        converts.append(_copy_values(table, list(columns)))
    *first, last = inserts
    clauses = ", ".join(f"part{n} AS ({insert})" for n, insert in enumerate(first))
    return (f"WITH {clauses} {last}" if clauses else last), converts


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def utc(value: datetime) -> datetime:
    """SQLite gives naive datetimes back; everything stored here is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _copy_values(table: Table, columns: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A row as COPY (or driver_insert) takes it: JSON columns as JSON text (asyncpg's
    default json codec)."""
    pick = itemgetter(*columns)
    json_at = [n for n, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    if len(columns) == 1:
        return (lambda row: (json_text(pick(row)),)) if json_at else (lambda row: (pick(row),))
    if not json_at:
        return pick

    def convert(row: dict[str, Any]) -> tuple[Any, ...]:
        values = list(pick(row))
        for n in json_at:
            values[n] = json_text(values[n])
        return tuple(values)

    return convert


async def _copy(uow: UnitOfWork, table_name: str, table: Table, rows: list[dict[str, Any]]) -> None:
    driver = await driver_of(uow.conn)
    # SQLAlchemy begins the driver's transaction at the first statement: make sure it has begun
    # before COPY joins it (one round trip, only when nothing ran yet)
    if not driver.is_in_transaction():
        await uow.execute(text("SELECT 1"))
    columns = list(rows[0])
    convert = _copy_values(table, columns)
    await driver.copy_records_to_table(
        table_name, records=[convert(r) for r in rows], columns=columns
    )


def one_of(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """`column IN (...)` with the values given when the statement runs ({name: [...]}), for
    statements built once at import. An IN built per call from a list (or a function of
    literals, or startswith) leaves a few objects in reference cycles that only the garbage
    collector frees: at 200 declarations/s risk and notify left about 2,400 a second, and
    each young-generation collection that walked them stopped the process for 20 to 130 ms."""
    return column.in_(bindparam(name, expanding=True))


# From this many rows a run goes by COPY where callers ask (copy_from=COPY_FROM), fewer as one
# executemany. Measured with 6,000 notification rows in runs of each size (client and
# PostgreSQL CPU a row): 16 rows cost the same either way, from 32 COPY costs PostgreSQL a
# sixth less, at 128 a third less and the client a sixth less; below 16 COPY's extra round
# trip makes it dearer
COPY_FROM = 32


async def bulk_insert(
    uow: UnitOfWork, table: Table, rows: list[dict[str, Any]], *, copy_from: int = 1
) -> None:
    """Insert many rows (same keys each) at once: on PostgreSQL by COPY from `copy_from` rows
    up, else (and on SQLite) one executemany."""
    if not rows:
        return
    if uow.conn.dialect.name != "postgresql" or len(rows) < copy_from:
        await uow.execute(insert(table), rows)
        return
    await _copy(uow, table.name, table, rows)


async def bulk_update(
    uow: UnitOfWork, table: Table, rows: list[dict[str, Any]], key: str = "id"
) -> None:
    """Update many rows by `key` (same columns each): on PostgreSQL, COPY into a temporary
    table and one UPDATE ... FROM, instead of one statement execution per row."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != key]
    if uow.conn.dialect.name != "postgresql":
        setters: dict[str, Any] = {c: bindparam(f"b_{c}") for c in columns}
        statement = update(table).where(table.c[key] == bindparam(f"b_{key}")).values(setters)
        await uow.execute(statement, [{f"b_{k}": v for k, v in r.items()} for r in rows])
        return
    staging = f"bulk_{table.name}"
    await uow.execute(
        text(
            f'CREATE TEMPORARY TABLE IF NOT EXISTS "{staging}" '
            f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
        )
    )
    await _copy(uow, staging, table, rows)
    assignments = ", ".join(f'"{c}" = s."{c}"' for c in columns)
    await uow.execute(
        text(
            f'UPDATE "{table.name}" AS t SET {assignments} FROM "{staging}" AS s '
            f'WHERE t."{key}" = s."{key}"'
        )
    )
