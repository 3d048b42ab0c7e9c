"""The outbox relay's single-publisher lock through a lost database session, on real Kafka and
PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select, text

from shared.db import driver_of
from shared.events import decode
from shared.service import Runtime
from tests.support import declaration_event, read_topic, risk_runtime

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

LOCK = 7201  # the relay's advisory lock key
HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = $2)"
)


@pytest.fixture
async def runtime(kafka_bootstrap: str, pg_url: str, topic_prefix: str) -> AsyncIterator[Runtime]:
    rt = await risk_runtime(
        kafka_bootstrap, pg_url, topic_prefix, ["cases"], outbox_poll_seconds=0.1
    )
    yield rt
    await rt.engine.dispose()


async def _record(runtime: Runtime) -> str:
    """Commit one outgoing event; returns its id."""
    event = declaration_event()
    async with runtime.uow() as uow:
        await uow.record(event, runtime.settings.topic("cases"))
    return str(event.event_id)


async def _published(runtime: Runtime, event_id: str) -> bool:
    t = runtime.outbox
    async with runtime.engine.connect() as conn:
        query = select(t.c.published_at).where(t.c.event_id == event_id)
        return (await conn.execute(query)).scalar_one() is not None


async def _until(check: Callable[[], Awaitable[object]], timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _relaying(runtime: Runtime, producer: AIOKafkaProducer) -> AsyncIterator[None]:
    """The relay running in the background for the block, stopped after it."""
    relay = asyncio.create_task(runtime.relay.run(producer))
    try:
        yield
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay


async def test_a_relay_that_loses_its_session_waits_for_the_lock_before_it_publishes_again(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    dsn = runtime.settings.database_url.replace("postgresql+asyncpg", "postgresql")
    server, _, name = dsn.rpartition("/")
    admin = await asyncpg.connect(f"{server}/postgres")  # outside the service's database
    rival = await asyncpg.connect(dsn)  # another replica's relay, as far as the lock goes
    relay = asyncio.create_task(runtime.relay.run(producer))
    try:
        first = await _record(runtime)
        await _until(lambda: _published(runtime, first))
        holder = await admin.fetchval(HOLDER, LOCK, name)
        assert holder is not None

        # a database restart, as far as the relay goes: its session ends, and the lock with
        # it, and for a while no new connection is taken
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", holder)
            await asyncio.sleep(3)  # the relay tries to connect again, and fails
            assert not relay.done(), "the relay gave up"
            await _until(lambda: rival.fetchval("SELECT pg_try_advisory_lock($1)", LOCK))
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')

        # the other replica publishes now; this relay must not publish beside it
        second = await _record(runtime)
        await asyncio.sleep(3)
        assert not await _published(runtime, second)

        # the other replica goes away: this relay takes the lock on a new session and goes on
        await rival.close()
        await _until(lambda: _published(runtime, second))
        now = await admin.fetchval(HOLDER, LOCK, name)
        assert now is not None and now != holder
        assert await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", now)
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        if not rival.is_closed():
            await rival.close()
        # the relay's connection left with the relay, not back into the pool holding the lock
        assert await admin.fetchval(HOLDER, LOCK, name) is None
        await admin.close()


async def test_passes_are_spaced_under_a_stream_of_commits_but_not_after_a_quiet_spell(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """A pass starts no sooner than outbox_pass_interval_seconds after the previous one ended:
    events committed one by one meanwhile go in one pass, and an event committed after a
    quiet spell is published at once."""
    runtime.relay._settings = runtime.settings.model_copy(
        update={"outbox_pass_interval_seconds": 1.0, "outbox_poll_seconds": 5}
    )
    passes: list[int] = []
    publish = runtime.relay.publish_pending

    async def counted(producer: AIOKafkaProducer, conn: object = None) -> int:
        sent = await publish(producer, conn)  # type: ignore[arg-type]
        if sent:
            passes.append(sent)
        return sent

    runtime.relay.publish_pending = counted  # type: ignore[method-assign]
    async with _relaying(runtime, producer):
        first = await _record(runtime)
        await _until(lambda: _published(runtime, first))
        stream = []
        for _ in range(3):  # each commit wakes the relay
            stream.append(await _record(runtime))
            await asyncio.sleep(0.05)
        await _until(lambda: _published(runtime, stream[-1]))
        assert passes == [1, 3]

        await asyncio.sleep(1.5)  # quiet for longer than the interval
        loop = asyncio.get_running_loop()
        committed = loop.time()
        late = await _record(runtime)
        while not await _published(runtime, late):
            await asyncio.sleep(0.01)
        assert loop.time() - committed < 0.8, "the pass after a quiet spell waited"
        assert passes == [1, 3, 1]


async def test_a_slow_pass_is_followed_later_by_the_factor_of_its_duration(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """Passes that slow down (the cores busy) come less often: the next one starts no sooner
    than outbox_pass_spacing_factor times the last one's duration after it ended."""
    runtime.relay._settings = runtime.settings.model_copy(
        update={
            "outbox_pass_interval_seconds": 0.0,
            "outbox_pass_spacing_factor": 2.0,
            "outbox_pass_interval_max_seconds": 5.0,
            "outbox_poll_seconds": 5,
        }
    )
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    ends: list[float] = []
    publish = runtime.relay.publish_pending

    async def slow(producer: AIOKafkaProducer, conn: object = None) -> int:
        starts.append(loop.time())
        await asyncio.sleep(0.3)
        sent = await publish(producer, conn)  # type: ignore[arg-type]
        ends.append(loop.time())
        return sent

    runtime.relay.publish_pending = slow  # type: ignore[method-assign]
    async with _relaying(runtime, producer):
        first = await _record(runtime)
        await _until(lambda: _published(runtime, first))
        second = await _record(runtime)  # wakes the relay within 0.1 s of the first pass
        await _until(lambda: _published(runtime, second))
        took = ends[0] - starts[0]
        assert took >= 0.3 and starts[1] - ends[0] >= 2 * took - 0.01


async def test_passes_publish_in_order_mark_each_row_once_and_leave_no_transaction_open(
    runtime: Runtime, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    """On PostgreSQL a pass reads and marks straight on the driver: rows go out in batches of
    outbox_batch_size, each is published and marked once, and the session is left idle (no
    snapshot or lock held between passes)."""
    runtime.relay._settings = runtime.settings.model_copy(update={"outbox_batch_size": 4})
    ids = [await _record(runtime) for _ in range(10)]
    assert [await runtime.relay.publish_pending(producer) for _ in range(4)] == [4, 4, 2, 0]
    t = runtime.outbox
    async with runtime.engine.connect() as conn:
        marked = (await conn.execute(select(t.c.event_id, t.c.published_at).order_by(t.c.id))).all()
        assert [r.event_id for r in marked] == ids and all(r.published_at for r in marked)
        idle = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%'"
            )
        )
        assert idle.scalar_one() == 0
    records = await read_topic(kafka_bootstrap, runtime.settings.topic("cases"), expect=10)
    assert sorted(str(decode(r.value).event_id) for r in records) == sorted(ids)


FILL = (
    "INSERT INTO outbox (event_id, topic, key, value, created_at)"
    " SELECT md5(random()::text || g), 't', 'k', decode(repeat('ab', 300), 'hex'), now()"
    " FROM generate_series(1, $1) AS g"
)
UNFILL = "DELETE FROM outbox WHERE topic = 't'"  # no relay of another test finds them


async def _plan(driver: asyncpg.Connection, statement: str) -> str:
    return "\n".join(row[0] for row in await driver.fetch("EXPLAIN " + statement))


async def test_a_pass_reads_the_unpublished_rows_through_their_index_whatever_the_statistics(
    runtime: Runtime,
) -> None:
    """Statistics taken while every row was unpublished (the outbox after a burst) must not
    turn the read into a walk along the primary key through every published row."""
    async with runtime.engine.connect() as conn:
        driver = await driver_of(conn)
        await driver.execute(FILL, 3000)
        await driver.execute("ANALYZE outbox")
        await driver.execute("UPDATE outbox SET published_at = now() WHERE id <= 2990")
        plan = await _plan(driver, runtime.relay._pending_sql.replace("$1", "500"))
        await driver.execute(UNFILL)
    assert "ix_outbox_unpublished" in plan and "outbox_pkey" not in plan, plan


async def test_the_relay_session_plans_its_statements_for_the_outbox_as_it_is_now(
    runtime: Runtime,
) -> None:
    """A statement prepared on the relay's session while the outbox was nearly empty is still
    planned for the outbox's size later: no sequential scan once it holds thousands of rows."""
    conn = await runtime.engine.connect()
    try:
        await runtime.relay._set_up(conn)
        driver = await driver_of(conn)
        await driver.execute(FILL, 1)
        await driver.execute(f"PREPARE mark(bigint[], timestamptz) AS {runtime.relay._mark_sql}")
        for _ in range(6):  # past the runs after which a generic plan may be kept
            await driver.execute("EXECUTE mark(ARRAY[1]::bigint[], now())")
        await driver.execute(FILL, 3000)
        plan = await _plan(driver, "EXECUTE mark(ARRAY[5, 6, 7]::bigint[], now())")
        await driver.execute(UNFILL)
    finally:
        await conn.invalidate()
        await conn.close()
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
async def test_the_others_go_before_bulk_rows_unless_their_household_has_earlier_ones(
    db: str,
    pg_url: str,
    tmp_path: Path,
    topic_prefix: str,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
) -> None:
    """Risk's outbox has a bulk lane (a department feed's case events): a pass that meets bulk
    rows sends first the other unpublished rows whose household has no earlier bulk row
    unpublished, then the batch in id order. Every household's events keep their order."""
    url = pg_url if db == "postgres" else f"sqlite+aiosqlite:///{tmp_path}/risk.db"
    runtime = await risk_runtime(kafka_bootstrap, url, topic_prefix, ["cases"])
    runtime.relay._settings = runtime.settings.model_copy(update={"outbox_batch_size": 3})
    rows = [("a", True), ("a", True), ("a", True), ("b", False), ("a", False), ("c", True),
            ("d", False)]  # fmt: skip
    events = [declaration_event(f"hh-{key}") for key, _ in rows]
    async with runtime.uow() as uow:
        await uow.record_many(
            events, runtime.settings.topic("cases"), bulk=[bulk for _, bulk in rows]
        )
    number = {str(e.event_id): n for n, e in enumerate(events, start=1)}

    async def published() -> list[int]:
        t = runtime.outbox
        async with runtime.engine.connect() as conn:
            query = select(t.c.event_id).where(t.c.published_at.is_not(None))
            return sorted(number[e] for e in (await conn.execute(query)).scalars())

    # the first three rows are hh-a's bulk ones: hh-b's and hh-d's rows go first; hh-a's own
    # later row waits for them
    assert await runtime.relay.publish_pending(producer) == 5
    assert await published() == [1, 2, 3, 4, 7]
    assert await runtime.relay.publish_pending(producer) == 2
    assert await runtime.relay.publish_pending(producer) == 0
    records = await read_topic(kafka_bootstrap, runtime.settings.topic("cases"), expect=7)
    by_key: dict[str, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key.decode(), []).append(
            number[str(decode(record.value).event_id)]
        )
    assert by_key == {"hh-a": [1, 2, 3, 5], "hh-b": [4], "hh-c": [6], "hh-d": [7]}
    await runtime.engine.dispose()
