"""Fixtures for the real Kafka broker and PostgreSQL server: missing means failed, never skipped."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared import infra
from shared.kafka import make_producer

KAFKA = os.environ.get("HOLDLINE_KAFKA_BOOTSTRAP", f"127.0.0.1:{infra.kafka_port()}")
PG_PORT = str(infra.InfraSettings.from_env().pg_port)
PG_DSN = f"postgresql://holdline:holdline@127.0.0.1:{PG_PORT}"
HINT = "start it with `holdline infra up` (make test does)"
# databases this test session made; dropped when it ends, unless HOLDLINE_KEEP_TEST_DATABASES
# is set (to look at them after a failure)
CREATED: list[str] = []


def _reachable(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The real broker; the test fails when it is not there."""
    if not _reachable(KAFKA):
        pytest.fail(f"Kafka is not reachable at {KAFKA}: {HINT}", pytrace=False)
    return KAFKA


# topic prefixes handed out in this session; their topics are deleted when it ends
PREFIXES: list[str] = []


def new_topic_prefix(label: str = "t") -> str:
    """A prefix no other test uses, its topics deleted when the session ends."""
    prefix = f"holdline.{label}{uuid.uuid4().hex[:10]}."
    PREFIXES.append(prefix)
    return prefix


@pytest.fixture
def topic_prefix() -> str:
    """Topics of one test, apart from every other test's."""
    return new_topic_prefix()


async def new_database() -> str:
    """A fresh, empty PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"holdline_t_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(f"{PG_DSN}/postgres", timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_DSN}: {exc}; {HINT}", pytrace=False)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = f"postgresql+asyncpg://holdline:holdline@127.0.0.1:{PG_PORT}/{name}"
    CREATED.append(url)
    return url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the session's databases (a full run makes about 150, over a gigabyte on disk) and
    delete its topics, unless HOLDLINE_KEEP_TEST_DATABASES asks to keep both."""
    if os.environ.get("HOLDLINE_KEEP_TEST_DATABASES"):
        return
    if CREATED:
        from bench.common import drop_database  # ends their sessions first; warns, never raises

        async def drop_all() -> None:
            for url in CREATED:
                await drop_database(url)

        asyncio.run(drop_all())
        CREATED.clear()
    # and the session's topics: a broker that keeps every run's partitions runs out of heap
    if PREFIXES and _reachable(KAFKA):
        from bench.common import delete_topics

        asyncio.run(delete_topics(KAFKA, PREFIXES))
        PREFIXES.clear()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test."""
    yield await new_database()


@pytest.fixture
async def producer(runtime: Any) -> AsyncIterator[AIOKafkaProducer]:
    """An idempotent producer for the test module's `runtime` fixture."""
    prod = make_producer(runtime.settings)
    await prod.start()
    yield prod
    await prod.stop()
