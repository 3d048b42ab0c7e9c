"""Risk on real Kafka and PostgreSQL: signals in, cases out; duplicates change nothing;
two scheduler replicas emit each deadline event exactly once (rules §4.9-§4.12)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

import services.risk
from services.risk import handlers
from services.risk.app import signal_consumers, signal_handlers
from services.risk.config import RiskSettings
from services.risk.models import (
    case_signals,
    cases,
    deadline_alerts,
    household_signals,
    metadata,
)
from services.risk.scheduler import scan_deadlines
from shared.clock import FrozenClock
from shared.events import (
    FEED_CHANNEL,
    CadreReportSubmitted,
    DeclarationSubmitted,
    FeedRecord,
    FeedRecordReceived,
    FeedRecordsReceived,
    Payload,
    RegistryRecordReceived,
    decode,
    new_event,
)
from shared.kafka import BatchHandler, EventConsumer, ensure_topics
from shared.migrations import upgrade
from shared.service import Runtime
from tests.support import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
VILLAGE = "530102001001"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def make_runtime(url: str, bootstrap: str, prefix: str, clock: FrozenClock) -> Runtime:
    settings = RiskSettings(database_url=url, kafka_bootstrap=bootstrap, topic_prefix=prefix)
    return Runtime(
        settings=settings,
        metadata=metadata,
        service_dir=Path(services.risk.__file__).parent,
        clock=clock,
    )


@pytest.fixture
async def runtime(kafka_bootstrap: str, pg_url: str, topic_prefix: str) -> AsyncIterator[Runtime]:
    rt = make_runtime(pg_url, kafka_bootstrap, topic_prefix, FrozenClock(START))
    await upgrade(pg_url, rt.service_dir)
    await ensure_topics(rt.settings, [rt.settings.topic(t) for t in ("signals", "cases")])
    yield rt
    await rt.engine.dispose()


async def consume_signals(runtime: Runtime, producer: AIOKafkaProducer, *, until: int) -> int:
    """The risk signal consumer (batched) until `until` records are processed, offsets committed."""
    settings = runtime.settings
    assert isinstance(settings, RiskSettings)
    consumer = EventConsumer(
        name="risk", topics=[settings.topic("signals")], handlers=signal_handlers(settings),
        uow_factory=runtime.uow, producer=producer, settings=settings,
        batch_handler=partial(handlers.on_signal_batch, settings=settings),
    )  # fmt: skip
    await consumer.start()
    try:
        seen = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while seen < until and loop.time() < deadline:
            seen += await consumer.poll_once()
        await consumer.commit_pending()
    finally:
        await consumer.close()
    return seen


def declaration(n: int) -> DeclarationSubmitted:
    return DeclarationSubmitted(
        submission_id=f"s{n}", declarant_name="李四", declarant_id_masked="530102***********1",
        village_code=VILLAGE, risk_types=["unstable_employment"],
    )  # fmt: skip


async def test_signals_in_cases_out_and_a_duplicate_changes_nothing(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    settings = runtime.settings
    assert isinstance(settings, RiskSettings)
    clock = runtime.clock

    def event(payload: Payload, household: str):  # type: ignore[no-untyped-def]
        return new_event(
            payload, household_id=household, source="t", correlation_id="c", clock=clock
        )

    registry = event(
        RegistryRecordReceived(
            submission_id="r", village_code=VILLAGE, baseline_status="ordinary",
            per_capita_income=6000, members=[],
        ),
        "hh-a",
    )  # fmt: skip
    declared = event(declaration(1), "hh-a")
    report = event(
        CadreReportSubmitted(submission_id="c1", cadre_id="k", village_code=VILLAGE,
                             risk_types=["schooling"], schooling_spending=2000),
        "hh-a",
    )  # fmt: skip
    feed = event(
        FeedRecordReceived(
            batch_id="b", department="housing", line=1, person_id_hash="p", person_id_masked="x",
            village_code=VILLAGE, recorded_on=date(2026, 3, 1), facts={"house_rating": "D"},
        ),
        "hh-b",
    )  # fmt: skip
    # rules §5.1: a serious illness costing more than the threshold: the green channel
    claim = event(
        FeedRecordReceived(
            batch_id="b2", department="medical_insurance", line=1, person_id_hash="q",
            person_id_masked="x", village_code=VILLAGE, recorded_on=date(2026, 3, 1),
            facts={"out_of_pocket_spending": 30_000, "serious_illness_claim": True},
        ),
        "hh-g",
    )  # fmt: skip
    topic = settings.topic("signals")
    for e in (registry, declared, report, feed, claim, declared):  # the declaration twice
        await producer.send_and_wait(topic, e.to_bytes(), key=e.household_id.encode())
    seen = await consume_signals(runtime, producer, until=6)
    assert seen == 6
    await runtime.relay.publish_pending(producer)
    out = [decode(r.value) for r in await read_topic(
        settings.kafka_bootstrap, settings.topic("cases"), expect=5)]  # fmt: skip
    assert Counter((e.event_type, e.household_id) for e in out) == {
        ("CaseOpened", "hh-a"): 1, ("CaseMerged", "hh-a"): 1, ("CaseOpened", "hh-b"): 1,
        ("CaseOpened", "hh-g"): 1, ("GreenChannelOpened", "hh-g"): 1,
    }  # fmt: skip
    opened_b = next(e for e in out if e.household_id == "hh-b")
    assert opened_b.payload.risk_types == ["housing_unsafe"]
    assert opened_b.payload.channel == FEED_CHANNEL
    # notify queues a feed's alerts behind the declarations' by this channel
    green = next(e for e in out if e.event_type == "GreenChannelOpened")
    assert green.payload.channel == FEED_CHANNEL
    assert green.payload.submission_ids == []  # intake has no submission to look up
    merged = next(e for e in out if e.event_type == "CaseMerged")
    assert merged.payload.risk_types == ["schooling", "unstable_employment"]
    async with runtime.uow() as uow:
        history = (
            await uow.execute(
                select(func.count()).where(household_signals.c.household_id == "hh-a")
            )
        ).scalar_one()
    assert history == 3, "the duplicate declaration must not enter the signal history"


async def test_a_feed_slice_is_one_unit_of_work_with_one_merge_per_case(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """rules §8: every record of a slice is evaluated and kept in the history; a case that
    records of the slice add a risk type to gets one CaseMerged, a case they only re-read gets
    none; a redelivery changes nothing."""
    settings = runtime.settings
    assert isinstance(settings, RiskSettings)
    declared = new_event(
        declaration(9), household_id="hh-f", source="t", correlation_id="c", clock=runtime.clock
    )
    async with runtime.uow() as uow:  # hh-f's case is open for unstable employment
        await handlers.on_declaration(uow=uow, event=declared, settings=settings)
    rows = [("hh-c", "D"), ("hh-c", "C"), ("hh-c", "D"), ("hh-d", "D"), ("hh-e", "A"),
            ("hh-f", "D"), ("hh-f", "C")]  # fmt: skip
    records = [
        FeedRecord(line=n, household_id=h, person_id_hash=f"p{n}", person_id_masked="x",
                   village_code=VILLAGE, recorded_on=date(2026, 3, 1), facts={"house_rating": r})
        for n, (h, r) in enumerate(rows, start=1)
    ]  # fmt: skip
    slice_ = new_event(
        FeedRecordsReceived(batch_id="b", department="housing", shard=3, records=records),
        household_id="feed-shard-003", source="t", correlation_id="b", clock=runtime.clock,
    )  # fmt: skip
    topic = settings.topic("signals")
    for _ in range(2):  # delivered twice
        await producer.send_and_wait(topic, slice_.to_bytes(), key=b"feed-shard-003")
    assert await consume_signals(runtime, producer, until=2) == 2
    await runtime.relay.publish_pending(producer)
    out = [decode(r.value) for r in await read_topic(
        settings.kafka_bootstrap, settings.topic("cases"), expect=4)]  # fmt: skip
    assert Counter((e.event_type, e.household_id) for e in out) == {
        ("CaseOpened", "hh-c"): 1, ("CaseOpened", "hh-d"): 1,
        ("CaseOpened", "hh-f"): 1, ("CaseMerged", "hh-f"): 1,
    }  # fmt: skip
    merged = next(e for e in out if e.event_type == "CaseMerged")
    assert merged.payload.risk_types == ["housing_unsafe", "unstable_employment"]
    async with runtime.uow() as uow:
        history = Counter((await uow.execute(select(household_signals.c.household_id))).scalars())
        assert history == {"hh-c": 3, "hh-d": 1, "hh-e": 1, "hh-f": 3}
        linked = Counter(
            (await uow.execute(select(case_signals.c.event_type))).scalars()
        )  # every record joins its case, with or without an event
        assert linked == {"DeclarationSubmitted": 1, "FeedRecordReceived": 6}
        kinds = (
            (
                await uow.execute(
                    select(household_signals.c.payload).where(
                        household_signals.c.event_type == "FeedRecordReceived"
                    )
                )
            )
            .scalars()
            .all()
        )
        assert all(p["department"] == "housing" and p["batch_id"] == "b" for p in kinds)


async def test_two_replicas_emit_each_deadline_event_once(
    runtime: Runtime, producer: AIOKafkaProducer, pg_url: str
) -> None:
    settings = runtime.settings
    assert isinstance(settings, RiskSettings)
    for n in range(3):
        envelope = new_event(
            declaration(n), household_id=f"hh-{n}", source="t", correlation_id="c",
            clock=runtime.clock,
        )  # fmt: skip
        async with runtime.uow() as uow:
            await handlers.on_declaration(uow=uow, event=envelope, settings=settings)

    clocks = [FrozenClock(START), FrozenClock(START)]
    replicas = [
        make_runtime(pg_url, settings.kafka_bootstrap, settings.topic_prefix, c) for c in clocks
    ]

    async def both_scan() -> int:
        counts = await asyncio.gather(
            *(scan_deadlines(uow_factory=r.uow, settings=settings) for r in replicas)
        )
        return sum(counts)

    def travel(delta: timedelta) -> None:
        for c in clocks:
            c.advance(delta)

    try:
        assert await both_scan() == 0
        travel(timedelta(days=2, hours=1))  # past the 2-working-day home visit
        assert await both_scan() == 3
        travel(timedelta(days=8))  # day 10 of 15: the township warning
        assert await both_scan() == 3
        assert await both_scan() == 0
        travel(timedelta(days=6))  # day 16: overdue, to the county
        assert await both_scan() == 3
    finally:
        for r in replicas:
            await r.engine.dispose()
    # a restarted replica finds nothing left to send
    restarted = make_runtime(pg_url, settings.kafka_bootstrap, settings.topic_prefix, clocks[0])
    try:
        assert await scan_deadlines(uow_factory=restarted.uow, settings=settings) == 0
    finally:
        await restarted.engine.dispose()

    await runtime.relay.publish_pending(producer)
    out = [decode(r.value) for r in await read_topic(
        settings.kafka_bootstrap, settings.topic("cases"), expect=12)]  # fmt: skip
    alerts = Counter(
        (e.event_type, getattr(e.payload, "deadline_kind", ""), e.household_id)
        for e in out
        if e.event_type in ("CaseDeadlineApproaching", "CaseOverdue")
    )
    assert len(alerts) == 9 and set(alerts.values()) == {1}
    overdue = [e for e in out if e.event_type == "CaseOverdue"]
    assert {(e.payload.deadline_kind, e.payload.level) for e in overdue} == {
        ("home_visit", "township"), ("identification", "county"),
    }  # fmt: skip
    async with runtime.uow() as uow:
        rows = (await uow.execute(select(func.count()).select_from(deadline_alerts))).scalar_one()
    assert rows == 9


async def test_a_failing_record_in_a_batch_is_isolated_and_dead_lettered(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """The batch path falls back to one by one: the bad record goes to the DLQ, others land."""
    settings = runtime.settings
    assert isinstance(settings, RiskSettings)
    settings.consumer_retry_backoff_seconds = 0.01
    topic = settings.topic("signals")
    good = [
        new_event(declaration(n), household_id=f"ok-{n}", source="t", correlation_id="c",
                  clock=runtime.clock)
        for n in range(3)
    ]  # fmt: skip
    bad_payload = declaration(9).model_copy(update={"village_code": "5301020010019999"})
    bad = new_event(
        bad_payload, household_id="bad", source="t", correlation_id="c", clock=runtime.clock
    )
    for e in (good[0], bad, good[1], good[2]):
        await producer.send_and_wait(topic, e.to_bytes(), key=b"one-partition")
    assert await consume_signals(runtime, producer, until=4) == 4
    async with runtime.uow() as uow:
        opened = (
            await uow.execute(select(cases.c.household_id).where(cases.c.status == "open"))
        ).scalars()
        assert sorted(opened) == ["ok-0", "ok-1", "ok-2"]
    dead = await read_topic(settings.kafka_bootstrap, f"{topic}.dlq", expect=1)
    assert [decode(r.value).event_id for r in dead] == [bad.event_id]


async def test_a_declaration_does_not_wait_behind_a_feed_slice(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """A farmer's declaration behind a department feed's slice in the same partition is
    evaluated while the slice is still being evaluated: the slices have a group of their own.
    A message nobody can read is dead-lettered once, by the main group."""
    settings = runtime.settings
    assert isinstance(settings, RiskSettings)
    specs = {spec.name: spec for spec in signal_consumers(settings)}
    assert set(specs) == {"risk", "risk-feeds"}
    held = asyncio.Event()  # the slice's evaluation waits for it, as a long one would

    def holding(batch: BatchHandler) -> BatchHandler:
        async def handle(**kwargs: Any) -> None:
            await held.wait()
            await batch(**kwargs)

        return handle

    records = [
        FeedRecord(line=n, household_id=f"hh-s{n}", person_id_hash=f"p{n}", person_id_masked="x",
                   village_code=VILLAGE, recorded_on=date(2026, 3, 1), facts={"house_rating": "D"})
        for n in range(1, 4)
    ]  # fmt: skip
    slice_ = new_event(
        FeedRecordsReceived(batch_id="b", department="housing", shard=0, records=records),
        household_id="feed-shard-000", source="t", correlation_id="b", clock=runtime.clock,
    )  # fmt: skip
    declared = new_event(
        declaration(1), household_id="hh-farmer", source="t", correlation_id="c",
        clock=runtime.clock,
    )  # fmt: skip
    topic = settings.topic("signals")
    for value in (slice_.to_bytes(), b"not an event", declared.to_bytes()):
        await producer.send_and_wait(topic, value, key=b"k", partition=0)
    consumers = [
        EventConsumer(
            name=spec.name, topics=[topic], handlers=spec.handlers, uow_factory=runtime.uow,
            producer=producer, settings=settings,
            batch_handler=holding(spec.batch_handler)
            if spec.name == "risk-feeds" and spec.batch_handler else spec.batch_handler,
            dead_letter_unreadable=spec.dead_letter_unreadable,
        )
        for spec in specs.values()
    ]  # fmt: skip

    async def polling(consumer: EventConsumer) -> None:
        while True:
            await consumer.poll_once(200)

    async def opened() -> set[str]:
        async with runtime.uow() as uow:
            query = select(cases.c.household_id).where(cases.c.status == "open")
            return set((await uow.execute(query)).scalars())

    for consumer in consumers:
        await consumer.start()
    tasks = [asyncio.create_task(polling(c)) for c in consumers]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while "hh-farmer" not in await opened():
            assert loop.time() < deadline, "the declaration waited behind the slice"
            await asyncio.sleep(0.1)
        assert await opened() == {"hh-farmer"}, "the slice is still held"
        held.set()
        while await opened() != {"hh-farmer", "hh-s1", "hh-s2", "hh-s3"}:
            assert loop.time() < deadline, "the slice was not evaluated"
            await asyncio.sleep(0.1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers:
            await consumer.close()
    dead = await read_topic(settings.kafka_bootstrap, f"{topic}.dlq", expect=1)
    assert [r.value for r in dead] == [b"not an event"]
