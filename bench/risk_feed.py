"""Benchmark: the risk engine consuming a department feed from Kafka into PostgreSQL.

Prints records/s for the batched consumer (one transaction per polled batch, bulk reads and
writes), and, measured in the same run on the same records, the raw aiokafka consume rate
(getmany, no decoding, no database) as the baseline. `--per-event N` also times the one-event-
per-transaction path on the first N records of a second topic, for comparison.

    .venv/bin/python bench/risk_feed.py --records 1000000

The feed mixes departments: two records per household on average (a medical-insurance claim,
and a housing, education or emergency record for some), so most records open or merge a case.
The outbox relay does not run: cases events wait in the outbox, the figure is evaluation alone.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import services.risk
from services.risk import handlers
from services.risk.app import signal_handlers
from services.risk.config import RiskSettings
from services.risk.models import metadata
from shared import infra
from shared.clock import FrozenClock
from shared.events import FeedRecordReceived, new_event
from shared.kafka import EventConsumer, ensure_topics
from shared.migrations import upgrade
from shared.service import Runtime

PG = f"holdline:holdline@127.0.0.1:{infra.InfraSettings.from_env().pg_port}"
KAFKA = f"127.0.0.1:{infra.kafka_port()}"


def feed(records: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of FeedRecordReceived envelopes, serialised once."""
    rng = random.Random(seed)
    # stamped now: cases opened weeks ago would be overdue at once (see feed.slices)
    clock = FrozenClock(datetime.now(UTC))
    out = []
    households = max(records // 2, 1)
    for n in range(records):
        h = rng.randrange(households)
        village = f"5301{h % 20 + 1:02d}{h % 9 + 1:03d}{h % 7 + 1:03d}"
        kind = rng.random()
        if kind < 0.7:
            department, facts = (
                "medical_insurance",
                {
                    "out_of_pocket_spending": round(rng.uniform(0, 30_000), 2),
                    "serious_illness_claim": rng.random() < 0.05,
                },
            )
        elif kind < 0.85:
            department, facts = "housing", {"house_rating": rng.choice("ABCD")}
        elif kind < 0.95:
            department, facts = "education", {
                "schooling_stage": "junior", "dropped_out": rng.random() < 0.3,
            }  # fmt: skip
        else:
            department, facts = "emergency_management", {
                "event": "disaster", "disaster_subtype": "flood",
                "loss_amount": round(rng.uniform(0, 50_000), 2),
            }  # fmt: skip
        envelope = new_event(
            FeedRecordReceived(
                batch_id="bench", department=department, line=n, person_id_hash=f"p{h}",
                person_id_masked="530102***********1", village_code=village,
                recorded_on=date(2026, 10, 31), facts=facts,
            ),
            household_id=f"hh-{h}", source="intake", correlation_id="bench", clock=clock,
        )  # fmt: skip
        out.append((envelope.household_id.encode(), envelope.to_bytes()))
    return out


async def produce(topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Put the feed on the topic; returns seconds."""
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, linger_ms=20, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_consume(topic: str, expected: int) -> float:
    """Baseline: aiokafka getmany over the same records, nothing else; returns records/s."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=KAFKA, group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=1000,
    )  # fmt: skip
    await consumer.start()
    seen = 0
    try:
        await consumer.getmany(timeout_ms=0)  # join the group before timing
        started = time.perf_counter()
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
            seen += sum(len(r) for r in batch.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def risk_consume(
    runtime: Runtime, topic: str, expected: int, *, batched: bool
) -> tuple[float, int]:
    """The risk consumer on the topic; returns records/s and records processed."""
    settings = runtime.settings
    assert isinstance(settings, RiskSettings)
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    consumer = EventConsumer(
        name=f"risk-{'batch' if batched else 'single'}", topics=[topic],
        handlers=signal_handlers(settings), uow_factory=runtime.uow, producer=producer,
        settings=settings,
        batch_handler=partial(handlers.on_signal_batch, settings=settings) if batched else None,
    )  # fmt: skip
    await consumer.start()
    seen = 0
    try:
        started = None
        while seen < expected:
            got = await consumer.poll_once(timeout_ms=1000)
            if started is None and got:
                started = time.perf_counter() - 0.0
            seen += got
            await consumer.commit_pending()
            if seen and seen % 100_000 < got:
                print(f"  ... {seen:,} records", flush=True)
        assert started is not None
        return seen / (time.perf_counter() - started), seen
    finally:
        await consumer.close()
        await producer.stop()


async def database() -> str:
    name = f"holdline_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(f"postgresql://{PG}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG}/{name}"


async def main(records: int, batch: int, per_event: int) -> None:
    prefix = f"holdline.bench{uuid.uuid4().hex[:6]}."
    url = await database()
    settings = RiskSettings(
        database_url=url, kafka_bootstrap=KAFKA, topic_prefix=prefix, consumer_batch_size=batch
    )
    runtime = Runtime(
        settings=settings, metadata=metadata, service_dir=Path(services.risk.__file__).parent
    )
    await upgrade(url, runtime.service_dir)
    topic = settings.topic("signals")
    await ensure_topics(settings, [topic], partitions=4)
    t = time.perf_counter()
    pairs = feed(records)
    print(f"generated {records:,} feed records in {time.perf_counter() - t:.1f}s")
    seconds = await produce(topic, pairs)
    print(f"produced in {seconds:.1f}s ({records / seconds:,.0f} records/s)")
    raw = await raw_consume(topic, records)
    print(f"baseline, raw aiokafka consume:      {raw:>10,.0f} records/s")
    rate, seen = await risk_consume(runtime, topic, records, batched=True)
    print(f"risk engine, batched ({batch}/txn):   {rate:>10,.0f} records/s ({seen:,} records)")
    if per_event:
        single = f"{prefix}single.v1"
        await ensure_topics(settings, [single], partitions=4)
        await produce(single, feed(per_event, seed=8))
        rate1, seen1 = await risk_consume(runtime, single, per_event, batched=False)
        print(f"risk engine, one event per txn:      {rate1:>10,.0f} records/s ({seen1:,} records)")
    await runtime.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="records per poll/transaction")
    parser.add_argument("--per-event", type=int, default=0, help="also time N one by one")
    args = parser.parse_args()
    asyncio.run(main(args.records, args.batch, args.per_event))


__all__: list[Any] = []
