"""aiokafka 0.14 against the pinned broker: the features Holdline relies on, and the partitioner
its producers install."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from shared.kafka import ensure_topics, make_producer, shard_key
from shared.settings import ServiceSettings
from tests.conftest import new_topic_prefix

pytestmark = pytest.mark.kafka


async def test_admin_idempotent_producer_and_manual_commit(kafka_bootstrap: str) -> None:
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix="holdline.smoke.")
    topic = new_topic_prefix("smoke") + "topic"

    await ensure_topics(settings, [topic], partitions=3)
    await ensure_topics(settings, [topic], partitions=3)  # a second call changes nothing
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic, f"{topic}.dlq"])
    finally:
        await admin.close()
    assert [len(t["partitions"]) for t in described] == [3, 3]

    producer = make_producer(settings)
    await producer.start()
    try:
        # the broker granted a producer id: sends carry sequence numbers it deduplicates
        assert producer._txn_manager is not None
        assert producer._txn_manager.producer_id >= 0
        for n in range(6):
            await producer.send_and_wait(topic, f"m{n}".encode(), key=b"household-1")
    finally:
        await producer.stop()

    group = f"smoke-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        got = []
        while len(got) < 6:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                got.extend(r.value for r in records)
                await consumer.commit({tp: records[-1].offset + 1})
                partition = tp
        assert got == [f"m{n}".encode() for n in range(6)]  # one key, one partition, in order
        assert await consumer.committed(partition) == 6
    finally:
        await consumer.stop()

    again = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await again.start()
    try:
        assert await again.getmany(timeout_ms=2000) == {}  # committed offsets are honoured
    finally:
        await again.stop()
    assert isinstance(partition, TopicPartition)


async def test_the_services_producer_puts_shard_n_on_partition_n_mod_count(
    kafka_bootstrap: str,
) -> None:
    """Through the broker: the partitioner make_producer installs is the one aiokafka uses."""
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix="holdline.smoke.")
    topic = new_topic_prefix("shards") + "topic"
    await ensure_topics(settings, [topic], partitions=4)
    producer = make_producer(settings)
    await producer.start()
    try:
        landed = {
            shard: (await producer.send_and_wait(topic, b"slice", key=shard_key(shard).encode()))
            for shard in range(12)
        }
        household = await producer.send_and_wait(topic, b"event", key=b"hh-530102-0001")
    finally:
        await producer.stop()
    assert {shard: meta.partition for shard, meta in landed.items()} == {
        shard: shard % 4 for shard in range(12)
    }
    assert household.partition == DefaultPartitioner()(b"hh-530102-0001", [0, 1, 2, 3], [])
