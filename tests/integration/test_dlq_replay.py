"""`holdline dlq`: a dead-lettered event, once fixed and replayed, takes effect exactly once."""

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
from shared.dlq import DlqError, list_dead_letters, replay
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
