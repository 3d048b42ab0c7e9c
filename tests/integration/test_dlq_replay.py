"""`holdline dlq`: a dead-lettered event, once fixed and replayed, takes effect exactly once; a
permanently bad one is discarded with its reason, and records are selected by offset or event id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select
from typer.testing import CliRunner

import services.risk
from services.cli import app
from services.risk import handlers
from services.risk.config import RiskSettings
from services.risk.models import cases, metadata
from shared.db import UnitOfWork
from shared.dlq import DlqError, Selection, dead_messages, discard, list_dead_letters, replay
from shared.events import Envelope
from shared.kafka import EventConsumer, ensure_topics, make_producer
from shared.migrations import upgrade
from shared.service import Runtime
from shared.settings import ServiceSettings
from tests.support import declaration_event, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
async def runtime(kafka_bootstrap: str, pg_url: str, topic_prefix: str) -> AsyncIterator[Runtime]:
    """The risk service's runtime on a fresh database and fresh topics (with their DLQs)."""
    settings = RiskSettings(
        database_url=pg_url, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix,
        consumer_retry_backoff_seconds=0.01,
    )  # fmt: skip
    rt = Runtime(
        settings=settings, metadata=metadata, service_dir=Path(services.risk.__file__).parent
    )
    await upgrade(settings.database_url, rt.service_dir)
    await ensure_topics(settings, [settings.topic("signals"), settings.topic("cases")])
    yield rt
    await rt.engine.dispose()


class Switch:
    """The handler of a bug that gets fixed: fails while `broken`, then does the real work."""

    def __init__(self, settings: RiskSettings) -> None:
        self.broken = True
        self._settings = settings

    async def __call__(self, *, uow: UnitOfWork, event: Envelope[Any]) -> None:
        if self.broken:
            raise RuntimeError("village_code lookup failed")
        await handlers.on_declaration(uow=uow, event=event, settings=self._settings)


async def consume(runtime: Runtime, handler: Switch, producer: AIOKafkaProducer) -> int:
    """Start a consumer, process what arrives within a few polls, commit, leave."""
    consumer = EventConsumer(
        name="risk", topics=[runtime.settings.topic("signals")],
        handlers={"DeclarationSubmitted": handler}, uow_factory=runtime.uow, producer=producer,
        settings=runtime.settings,
    )  # fmt: skip
    await consumer.start()
    seen = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while seen == 0 and loop.time() < deadline:
            seen += await consumer.poll_once()
        await consumer.commit_pending()
    finally:
        await consumer.close()
    return seen


async def count_cases(runtime: Runtime, household_id: str) -> int:
    async with runtime.uow() as uow:
        query = select(func.count()).select_from(cases).where(cases.c.household_id == household_id)
        return int((await uow.execute(query)).scalar_one())


async def test_poison_event_replayed_after_the_fix_takes_effect_once(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, RiskSettings)
    topic = settings.topic("signals")
    event = declaration_event()
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, event.to_bytes(), key=event.household_id.encode())
        handler = Switch(settings)
        assert await consume(runtime, handler, producer) == 1
        assert await count_cases(runtime, event.household_id) == 0

        [letter] = await list_dead_letters(topic, settings)
        assert letter.original_topic == topic and not letter.replayed
        assert letter.headers["error_type"] == "RuntimeError"
        assert "village_code lookup failed" in letter.headers["error"]

        dry = await replay(topic + ".dlq", settings, dry_run=True)  # the .dlq name works too
        assert dry.sent == {topic: 1} and dry.dry_run
        assert not (await list_dead_letters("signals", settings))[0].replayed  # nothing committed

        handler.broken = False
        assert (await replay(topic, settings)).sent == {topic: 1}
        assert await consume(runtime, handler, producer) == 1
        assert await count_cases(runtime, event.household_id) == 1

        again = await replay(topic, settings)
        assert again.sent == {}, "a second replay must send nothing"
        [letter] = await list_dead_letters(topic, settings)
        assert letter.replayed  # and it was not dead-lettered a second time
        on_topic = await read_topic(settings.kafka_bootstrap, topic, expect=2, timeout=10)
        assert len(on_topic) == 2  # the original and exactly one replay
    finally:
        await producer.stop()


async def test_unknown_topic_and_unreachable_broker_are_clear_errors(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    with pytest.raises(DlqError, match=r"^topic: .*nothere\.v1\.dlq does not exist"):
        await replay("nothere", settings)
    offline = ServiceSettings(kafka_bootstrap="127.0.0.1:1", kafka_request_timeout_ms=2000)
    with pytest.raises(DlqError, match=r"^kafka: cannot reach the broker at 127\.0\.0\.1:1 "):
        await list_dead_letters("signals", offline)


def test_cli_reports_an_unknown_topic_without_a_traceback(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    env = {"HOLDLINE_KAFKA_BOOTSTRAP": kafka_bootstrap, "HOLDLINE_TOPIC_PREFIX": topic_prefix}
    result = CliRunner().invoke(app, ["dlq", "list", "nothere"], env=env)
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output


HEADERS = [
    ("error_type", b"MalformedEvent"), ("error", b"not JSON"), ("consumer", b"risk"),
    ("attempts", b"0"),
]  # fmt: skip


async def dead_letters(settings: ServiceSettings, *values: tuple[bytes, bytes]) -> str:
    """Records (key, value) on one partition of the signals DLQ, as a consumer leaves them."""
    topic = settings.topic("signals")
    await ensure_topics(settings, [topic])
    producer = make_producer(settings)
    await producer.start()
    try:
        for key, value in values:
            headers = [*HEADERS, ("original_topic", topic.encode())]
            await producer.send_and_wait(
                f"{topic}.dlq", value, key=key, partition=0, headers=headers
            )
    finally:
        await producer.stop()
    return topic


async def test_discard_and_selected_replay_mark_records_once_and_a_replay_skips_them(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    first, last = declaration_event("hh-a"), declaration_event("hh-c")
    topic = await dead_letters(
        settings, (b"hh-a", first.to_bytes()), (b"hh-b", b"{not json"), (b"hh-c", last.to_bytes())
    )
    a, bad, c = await list_dead_letters(topic, settings)
    # whose declaration is stuck: the key, and the event when the value can be decoded
    assert (a.household, a.event_type, a.event_id) == (
        "hh-a", "DeclarationSubmitted", str(first.event_id),
    )  # fmt: skip
    assert (bad.household, bad.event_type, bad.event_id) == ("hh-b", None, None)

    why = "malformed by a retired client; the farmer declared again"
    dropped = await discard(topic, settings, selection=Selection.parse(["0:1"], []), reason=why)
    assert [d.offset for d in dropped.discarded] == [1] and not dropped.already
    again = await discard(topic, settings, selection=Selection.parse(["0:1"], []), reason=why)
    assert not again.discarded and [d.offset for d in again.already] == [1]

    by_id = Selection.parse([], [str(first.event_id)])
    assert (await replay(topic, settings, selection=by_id)).sent == {topic: 1}
    assert (await replay(topic, settings, selection=by_id)).sent == {}  # once
    a, bad, c = await list_dead_letters(topic, settings)
    assert a.replayed and a.mark is not None and a.mark.action == "replayed"
    assert bad.discarded and not bad.replayed and bad.mark is not None
    assert bad.mark.reason == why
    assert not c.handled

    # a whole replay passes over the discarded record, and the next one sends nothing
    assert (await replay(topic, settings)).letters == (c,)
    assert (await replay(topic, settings)).sent == {}
    assert (await discard(topic, settings, selection=by_id, reason="late")).already == (a,)
    a, bad, c = await list_dead_letters(topic, settings)
    assert a.replayed and bad.discarded and c.replayed and bad.mark.reason == why  # type: ignore[union-attr]
    on_topic = await read_topic(kafka_bootstrap, topic, expect=2, timeout=10)
    assert sorted(r.key for r in on_topic) == [b"hh-a", b"hh-c"]


def test_cli_lists_whose_records_and_selects_them_without_tracebacks(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    event = declaration_event("hh-stuck")
    asyncio.run(dead_letters(settings, (b"hh-stuck", event.to_bytes()), (b"hh-bad", b"\xff")))
    env = {"HOLDLINE_KAFKA_BOOTSTRAP": kafka_bootstrap, "HOLDLINE_TOPIC_PREFIX": topic_prefix}

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["dlq", *args], env=env)

    listed = run("list", "signals")
    assert listed.exit_code == 0, listed.output
    assert "2 messages (2 records), 2 waiting" in listed.output
    assert f"key=hh-stuck  DeclarationSubmitted  event_id={event.event_id}" in listed.output
    assert "key=hh-bad  ?  event_id=?" in listed.output

    discarded = run("discard", "signals", "--offset", "0:1", "--reason", "bytes, not an event")
    assert discarded.exit_code == 0, discarded.output
    assert "discarded 1 messages (1 records)" in discarded.output
    assert (
        "already discarded" in run("discard", "signals", "--offset", "0:1", "--reason", "x").output
    )
    replayed = run("replay", "signals", "--event-id", str(event.event_id))
    assert "re-published 1 messages (1 records)" in replayed.output and "0:0" in replayed.output
    listed = run("list", "signals")
    assert "0 waiting" in listed.output and "1 discarded" in listed.output
    assert "bytes, not an event" in listed.output

    for args, message in (
        (["replay", "signals", "--offset", "1"], "--offset: '1' is not PARTITION:OFFSET"),
        (["replay", "signals", "--offset", "0:99"], "holds no record at 0:99"),
        (["discard", "signals", "--event-id", "nope", "--reason", "r"], "holds no event nope"),
        (["discard", "signals", "--reason", "r"], "select the records with --offset"),
        (["discard", "signals", "--offset", "0:0", "--reason", " "], "--reason: say why"),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


class Flaky:
    """A group's handler: fails while `broken`, then records the events it handled."""

    def __init__(self) -> None:
        self.broken = True
        self.handled: list[str] = []

    async def __call__(self, *, uow: UnitOfWork, event: Envelope[Any]) -> None:
        if self.broken:
            raise RuntimeError("gateway lookup failed")
        self.handled.append(str(event.event_id))


async def consume_as(
    runtime: Runtime, name: str, handler: Any, producer: AIOKafkaProducer, records: int
) -> None:
    """One consumer group takes the next `records` messages of the signals topic, then leaves."""
    consumer = EventConsumer(
        name=name, topics=[runtime.settings.topic("signals")],
        handlers={"DeclarationSubmitted": handler}, uow_factory=runtime.uow, producer=producer,
        settings=runtime.settings,
    )  # fmt: skip
    await consumer.start()
    seen = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while seen < records and loop.time() < deadline:
            seen += await consumer.poll_once()
        await consumer.commit_pending()
    finally:
        await consumer.close()
    assert seen == records, (name, seen)


async def test_a_message_two_groups_dead_lettered_is_listed_and_replayed_once(
    runtime: Runtime, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = runtime.settings
    assert isinstance(settings, RiskSettings)
    topic = settings.topic("signals")
    event = declaration_event()
    producer = make_producer(settings)
    await producer.start()
    risk, other = Flaky(), Flaky()

    async def both(records: int) -> None:
        await consume_as(runtime, "risk", risk, producer, records)
        await consume_as(runtime, "risk-other", other, producer, records)

    try:
        await producer.send_and_wait(topic, event.to_bytes(), key=event.household_id.encode())
        await both(1)
        assert len(await list_dead_letters(topic, settings)) == 2  # one record per group
        env = {"HOLDLINE_KAFKA_BOOTSTRAP": kafka_bootstrap, "HOLDLINE_TOPIC_PREFIX": topic_prefix}
        listed = await asyncio.to_thread(
            CliRunner().invoke, app, ["dlq", "list", "signals"], env=env
        )
        assert "1 messages (2 records), 1 waiting" in listed.output, listed.output
        assert "failed in risk, risk-other  waiting" in listed.output

        # replayed while still poison: one copy goes back, each group fails it once more
        assert (await replay(topic, settings)).sent == {topic: 1}
        await both(1)
        letters = await list_dead_letters(topic, settings)
        assert len(letters) == 4
        [message] = dead_messages(letters)
        assert len(message.waiting) == 2 and message.consumers == ("risk", "risk-other")

        risk.broken = other.broken = False
        result = await replay(topic, settings)
        assert result.sent == {topic: 1} and len(result.letters) == 2
        await both(1)
        assert risk.handled == other.handled == [str(event.event_id)]  # each group once
        assert (await replay(topic, settings)).sent == {}
        on_topic = await read_topic(settings.kafka_bootstrap, topic, expect=3, timeout=10)
        assert len(on_topic) == 3  # the original and one copy per replay
    finally:
        await producer.stop()
