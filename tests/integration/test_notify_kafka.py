"""The notify service in-process on real Kafka and PostgreSQL: roster and cases in, calls out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from services.notify.app import create_app
from services.notify.config import NotifySettings
from services.notify.models import notifications, recipients
from shared.events import decode
from shared.kafka import make_producer
from shared.service import Runtime
from tests.integration.test_notify_delivery import (
    VILLAGES,
    FlakyReceiver,
    cadre,
    case_opened,
)
from tests.support import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def wait_until(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():  # type: ignore[misc]
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


async def test_routed_over_kafka_and_delivered_once_despite_failures_and_redelivery(
    kafka_bootstrap: str, pg_url: str, topic_prefix: str
) -> None:
    receiver = FlakyReceiver(failure_rate=0.5, seed=5)
    settings = NotifySettings(
        database_url=pg_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        webhook_url=receiver.url,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        max_attempts=30,
        dispatch_poll_seconds=0.05,
        quiet_hours_start=0,
        quiet_hours_end=0,
    )
    runtime: Runtime = create_app(settings).state.runtime
    await runtime.start()
    producer = make_producer(settings)
    await producer.start()
    try:
        registered = cadre("v9", "village", VILLAGES[0], {"webhook": f"{receiver.url}?c=v9"})
        await producer.send_and_wait(
            settings.topic("assistance"),
            registered.to_bytes(),
            key=registered.household_id.encode(),
        )

        async def projected() -> bool:
            async with runtime.uow() as uow:
                query = select(func.count()).select_from(recipients)
                return bool((await uow.execute(query)).scalar_one())

        await wait_until(projected, "the roster projection")
        cases = [case_opened(f"hh-k{n}", VILLAGES[0]) for n in range(4)]
        cases.append(case_opened("hh-k-nobody", VILLAGES[2]))
        for env in [*cases, cases[0]]:  # the first one is delivered twice by Kafka
            await producer.send_and_wait(
                settings.topic("cases"), env.to_bytes(), key=env.household_id.encode()
            )

        async def all_delivered() -> bool:
            async with runtime.uow() as uow:
                rows = (await uow.execute(select(notifications.c.status))).scalars().all()
            return len(rows) == 5 and set(rows) == {"delivered"}

        await wait_until(all_delivered, "five deliveries")
        published = await read_topic(
            kafka_bootstrap, settings.topic("notifications"), expect=5, timeout=20
        )
    finally:
        await producer.stop()
        await runtime.stop()
        receiver.close()
    delivered = [decode(r.value) for r in published]
    assert [e.event_type for e in delivered] == ["NotificationDelivered"] * 5
    assert {e.payload.recipient for e in delivered} == {"cadre:v9", "office:county"}
    assert sorted(receiver.accepted.values()) == [1] * 5
    assert {e.payload.notification_id for e in delivered} == set(receiver.accepted)
