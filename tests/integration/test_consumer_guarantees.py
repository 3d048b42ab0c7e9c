"""At-least-once delivery, exactly-once effects, and the DLQ, on real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date
from functools import partial

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from sqlalchemy import func, select

from services.risk import handlers
from services.risk.models import cases
from shared.clock import SystemClock
from shared.events import FeedRecord, FeedRecordsReceived, decode, new_event
from shared.kafka import EventConsumer, in_one_transaction
from shared.service import Runtime
from tests.support import declaration_event, read_topic, risk_runtime

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
async def runtime(kafka_bootstrap: str, pg_url: str, topic_prefix: str) -> AsyncIterator[Runtime]:
    """The risk service's runtime on a fresh database and fresh topics, consumers not started."""
    rt = await risk_runtime(
        kafka_bootstrap, pg_url, topic_prefix, ["signals", "cases"],
        consumer_retry_backoff_seconds=0.01,
    )  # fmt: skip
    yield rt
    await rt.engine.dispose()


def risk_consumer(runtime: Runtime, producer: AIOKafkaProducer, **overrides) -> EventConsumer:  # type: ignore[no-untyped-def]
    """The risk consumer of the signals topic; `handler`, `handlers` or `batch_handler`
    replace the real ones."""
    settings = runtime.settings
    handler = overrides.get("handler") or partial(handlers.on_declaration, settings=settings)
    return EventConsumer(
        name="risk",
        topics=[settings.topic("signals")],
        handlers=overrides.get("handlers") or {"DeclarationSubmitted": handler},
        uow_factory=runtime.uow,
        producer=producer,
        settings=settings,
        batch_handler=overrides.get("batch_handler"),
    )


async def drain(consumer: EventConsumer, *, until: int, timeout: float = 30) -> int:
    """Poll until `until` records were processed (offsets remembered, not committed)."""
    seen = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while seen < until and loop.time() < deadline:
        seen += await consumer.poll_once()
    return seen


async def dead_letters(runtime: Runtime) -> list[bytes]:
    topic = f"{runtime.settings.topic('signals')}.dlq"
    return [
        r.value
        for r in await read_topic(runtime.settings.kafka_bootstrap, topic, expect=0, timeout=3)
    ]


async def count_cases(runtime: Runtime, household_id: str) -> int:
    async with runtime.uow() as uow:
        query = select(func.count()).select_from(cases).where(cases.c.household_id == household_id)
        return int((await uow.execute(query)).scalar_one())


async def test_same_event_delivered_twice_gives_one_case(runtime: Runtime, producer) -> None:  # type: ignore[no-untyped-def]
    event = declaration_event()
    topic = runtime.settings.topic("signals")
    for _ in range(2):
        await producer.send_and_wait(topic, event.to_bytes(), key=event.household_id.encode())
    consumer = risk_consumer(runtime, producer)
    await consumer.start()
    try:
        assert await drain(consumer, until=2) == 2
        await consumer.commit_pending()
    finally:
        await consumer.close()
    assert await count_cases(runtime, event.household_id) == 1
    await runtime.relay.publish_pending(producer)
    published = await read_topic(
        runtime.settings.kafka_bootstrap, runtime.settings.topic("cases"), expect=1
    )
    # a 30,000-yuan illness also opens the green channel (rules §5); count the case openings
    opened = [e for e in map(decode, (r.value for r in published)) if e.event_type == "CaseOpened"]
    assert len(opened) == 1
    assert not [
        e for e in map(decode, (r.value for r in published)) if e.event_type == "CaseMerged"
    ]
    assert opened[0].household_id == event.household_id
    assert opened[0].correlation_id == event.correlation_id
    assert await dead_letters(runtime) == [], "a redelivery must be a no-op, not a failure"


async def committed_total(consumer: EventConsumer, topic: str) -> int:
    """The group's committed offsets summed over the topic's partitions."""
    # ensure_topics creates four partitions
    offsets = [await consumer.kafka.committed(TopicPartition(topic, p)) for p in range(4)]
    return sum(o or 0 for o in offsets)


async def until_cases(runtime: Runtime, households: list[str], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while [await count_cases(runtime, h) for h in households] != [1] * len(households):
        assert asyncio.get_running_loop().time() < deadline, "the events were not handled"
        await asyncio.sleep(0.1)


async def test_running_consumer_commits_offsets_per_interval_and_on_close(
    kafka_bootstrap: str, pg_url: str, topic_prefix: str, producer
) -> None:  # type: ignore[no-untyped-def]
    """Offsets go to Kafka once per consumer_commit_seconds, not after every poll; a crash in
    between replays the handled events as no-ops, and close() commits what was handled."""
    runtime = await risk_runtime(
        kafka_bootstrap, pg_url, topic_prefix, ["signals", "cases"], consumer_commit_seconds=3600
    )
    topic = runtime.settings.topic("signals")
    events = [declaration_event() for _ in range(3)]
    households = [e.household_id for e in events]
    try:
        for event in events:
            await producer.send_and_wait(topic, event.to_bytes(), key=event.household_id.encode())
        first = risk_consumer(runtime, producer)
        await first.start()
        running = asyncio.create_task(first.run())
        await until_cases(runtime, households)
        assert not running.done()
        assert await committed_total(first, topic) == 0, "committed before the interval ended"
        # the process dies: nothing was committed, so every event comes again
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await first.kafka.stop()

        second = risk_consumer(runtime, producer)
        await second.start()
        running = asyncio.create_task(second.run())
        deadline = asyncio.get_running_loop().time() + 30
        while sum(second._pending.values()) < 3:  # next offsets of a fresh topic: handled
            assert asyncio.get_running_loop().time() < deadline, "the events were not redelivered"
            await asyncio.sleep(0.1)
        assert await committed_total(second, topic) == 0
        await second.stop()
        await running
        await second.close()
        assert [await count_cases(runtime, h) for h in households] == [1, 1, 1]

        third = risk_consumer(runtime, producer)
        await third.start()
        try:
            assert await committed_total(third, topic) == 3, "close() did not commit"
        finally:
            await third.close()
    finally:
        await runtime.engine.dispose()


async def test_kill_between_db_commit_and_offset_commit_gives_no_duplicate(
    runtime: Runtime, producer
) -> None:  # type: ignore[no-untyped-def]
    event = declaration_event()
    topic = runtime.settings.topic("signals")
    await producer.send_and_wait(topic, event.to_bytes(), key=event.household_id.encode())
    first = risk_consumer(runtime, producer)
    await first.start()
    assert await drain(first, until=1) == 1  # the case is committed to PostgreSQL here
    # the process dies now: its offset was never committed, so Kafka will deliver again
    await first.kafka.stop()
    assert await count_cases(runtime, event.household_id) == 1

    second = risk_consumer(runtime, producer)
    await second.start()
    try:
        assert await drain(second, until=1) == 1, "the event was not redelivered"
        await second.commit_pending()
    finally:
        await second.close()
    assert await count_cases(runtime, event.household_id) == 1
    await runtime.relay.publish_pending(producer)
    published = await read_topic(
        runtime.settings.kafka_bootstrap, runtime.settings.topic("cases"), expect=1
    )
    types = sorted(decode(r.value).event_type for r in published)
    assert types == ["CaseOpened", "GreenChannelOpened"], types
    assert await dead_letters(runtime) == []


async def test_poison_message_goes_to_dlq_and_partition_moves_on(
    runtime: Runtime, producer
) -> None:  # type: ignore[no-untyped-def]
    topic = runtime.settings.topic("signals")
    good = declaration_event()
    key = good.household_id.encode()
    await producer.send_and_wait(topic, b"\xff not an event", key=key)
    await producer.send_and_wait(topic, good.to_bytes(), key=key)
    consumer = risk_consumer(runtime, producer)
    await consumer.start()
    try:
        assert await drain(consumer, until=2) == 2
        await consumer.commit_pending()
    finally:
        await consumer.close()
    assert await count_cases(runtime, good.household_id) == 1
    dead = await read_topic(runtime.settings.kafka_bootstrap, f"{topic}.dlq", expect=1)
    assert len(dead) == 1
    assert dead[0].value == b"\xff not an event"
    headers = dict(dead[0].headers)
    assert headers["error_type"] == b"MalformedEvent"
    assert headers["original_topic"] == topic.encode()


async def test_handler_that_keeps_failing_is_retried_then_dead_lettered(
    runtime: Runtime, producer
) -> None:  # type: ignore[no-untyped-def]
    topic = runtime.settings.topic("signals")
    bad, good = declaration_event(), declaration_event()
    calls: list[str] = []
    real = partial(handlers.on_declaration, settings=runtime.settings)

    async def flaky(*, uow, event):  # type: ignore[no-untyped-def]
        calls.append(event.household_id)
        if event.household_id == bad.household_id:
            raise ValueError("cannot evaluate this household")
        await real(uow=uow, event=event)

    for event in (bad, good):
        await producer.send_and_wait(topic, event.to_bytes(), key=b"same-partition")
    consumer = risk_consumer(runtime, producer, handler=flaky)
    await consumer.start()
    try:
        assert await drain(consumer, until=2) == 2
        await consumer.commit_pending()
    finally:
        await consumer.close()
    assert calls.count(bad.household_id) == runtime.settings.consumer_max_retries
    assert await count_cases(runtime, bad.household_id) == 0
    assert await count_cases(runtime, good.household_id) == 1
    dead = await read_topic(runtime.settings.kafka_bootstrap, f"{topic}.dlq", expect=1)
    assert [decode(r.value).event_id for r in dead] == [bad.event_id]
    assert dict(dead[0].headers)["attempts"] == b"3"


async def test_a_batch_transaction_is_bounded_by_units_not_messages(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """Feed slices carry many rows each: a run is cut before it passes consumer_batch_units,
    so one poll of large slices never becomes one huge transaction."""
    runtime.settings.consumer_batch_units = 5
    slices = [feed_slice(rows=3, batch=f"b{n}") for n in range(3)] + [declaration_event()]
    topic = runtime.settings.topic("signals")
    for event in slices:
        await producer.send_and_wait(topic, event.to_bytes(), key=b"one-partition")
    transactions: list[list[str]] = []

    async def batch(*, uow, events):  # type: ignore[no-untyped-def]
        transactions.append([e.event_type for e in events])

    table = {"FeedRecordsReceived": batch, "DeclarationSubmitted": batch}
    consumer = risk_consumer(runtime, producer, handlers=table, batch_handler=batch)
    await consumer.start()
    try:
        assert await drain(consumer, until=4) == 4
    finally:
        await consumer.close()
    # 3 + 3 > 5: each slice alone; the declaration (1 unit) joins the last slice (3 + 1 <= 5)
    assert transactions == [
        ["FeedRecordsReceived"],
        ["FeedRecordsReceived"],
        ["FeedRecordsReceived", "DeclarationSubmitted"],
    ]


async def test_one_poll_over_several_partitions_is_one_transaction_in_partition_order(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """A poll that brings records of several partitions hands them to the batch handler
    together (one transaction, not one per partition), each partition's records in order."""
    topic = runtime.settings.topic("signals")
    events = [declaration_event() for _ in range(40)]  # 40 households over the 4 partitions
    partition_of: dict[str, int] = {}
    for event in events:
        key = event.household_id.encode()
        meta = await producer.send_and_wait(topic, event.to_bytes(), key=key)
        partition_of[str(event.event_id)] = meta.partition
    assert len(set(partition_of.values())) > 1
    transactions: list[list[str]] = []

    async def batch(*, uow, events):  # type: ignore[no-untyped-def]
        transactions.append([str(e.event_id) for e in events])

    async def one(*, uow, event):  # type: ignore[no-untyped-def]
        transactions.append([str(event.event_id)])

    consumer = risk_consumer(runtime, producer, handler=one, batch_handler=batch)
    await consumer.start()
    try:
        assert await drain(consumer, until=40) == 40
    finally:
        await consumer.close()
    handled = [e for t in transactions for e in t]
    assert sorted(handled) == sorted(partition_of), "each event handled once"
    spans = [len({partition_of[e] for e in t}) for t in transactions]
    assert max(spans) > 1, f"one transaction per partition: {spans}"
    for t in transactions:  # within a transaction, each partition's events keep their order
        for partition in {partition_of[e] for e in t}:
            mine = [e for e in t if partition_of[e] == partition]
            order = [str(e.event_id) for e in events if partition_of[str(e.event_id)] == partition]
            assert mine == [e for e in order if e in mine]


def feed_slice(*, rows: int, batch: str):  # type: ignore[no-untyped-def]
    records = [
        FeedRecord(line=n, household_id=f"hh-{batch}-{n}", person_id_hash=f"p{n}",
                   person_id_masked="x", recorded_on=date(2026, 3, 1), facts={})
        for n in range(rows)
    ]  # fmt: skip
    return new_event(
        FeedRecordsReceived(batch_id=batch, department="housing", records=records),
        household_id="feed-shard-000",
        source="t",
        correlation_id=batch,
        clock=SystemClock(),
    )


async def test_a_run_in_one_transaction_skips_foreign_events_and_isolates_a_poison_one(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """in_one_transaction: events of types the consumer does not handle neither break the
    run nor reach a handler; a run holding a failing event is rolled back and replayed one
    by one, so the good events take effect once and only the bad one is dead-lettered."""
    good = [declaration_event() for _ in range(3)]
    bad = declaration_event()
    foreign = new_event(
        FeedRecordsReceived(batch_id="x", department="housing", records=[]),
        household_id="feed-shard-001", source="t", correlation_id="x", clock=SystemClock(),
    )  # fmt: skip
    topic = runtime.settings.topic("signals")
    for event in [good[0], foreign, good[1], bad, good[2]]:
        await producer.send_and_wait(topic, event.to_bytes(), key=b"one-partition")
    real = partial(handlers.on_declaration, settings=runtime.settings)

    async def handler(*, uow, event):  # type: ignore[no-untyped-def]
        if event.household_id == bad.household_id:
            raise ValueError("poison")
        await real(uow=uow, event=event)

    table = {"DeclarationSubmitted": handler}
    consumer = risk_consumer(
        runtime, producer, handlers=table, batch_handler=in_one_transaction(table)
    )
    await consumer.start()
    try:
        assert await drain(consumer, until=5) == 5
        await consumer.commit_pending()
    finally:
        await consumer.close()
    for event in good:
        assert await count_cases(runtime, event.household_id) == 1
    assert await count_cases(runtime, bad.household_id) == 0
    dead = await read_topic(runtime.settings.kafka_bootstrap, f"{topic}.dlq", expect=1)
    assert [decode(r.value).event_id for r in dead] == [bad.event_id]
