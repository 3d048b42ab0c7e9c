"""Consumer lag series follow partition ownership: a revoked partition's series is dropped."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from shared import metrics
from shared.kafka import _CommitOnRevoke


class Member:
    """The part of EventConsumer the rebalance listener uses."""

    name = "risk-lag-test"

    def __init__(self) -> None:
        self.committed: list[set[TopicPartition]] = []

    async def commit_pending(self, partitions: set[TopicPartition] | None = None) -> None:
        self.committed.append(set(partitions or ()))


def lag(partition: str) -> Any:
    return REGISTRY.get_sample_value(
        "holdline_consumer_lag_messages",
        {"consumer": Member.name, "topic": "t", "partition": partition},
    )


async def test_a_moved_partition_stops_reporting_its_old_lag() -> None:
    metrics.CONSUMER_LAG.labels(Member.name, "t", "0").set(5000)
    metrics.CONSUMER_LAG.labels(Member.name, "t", "1").set(7)
    member = Member()
    await _CommitOnRevoke(member).on_partitions_revoked({TopicPartition("t", 0)})  # type: ignore[arg-type]
    assert member.committed == [{TopicPartition("t", 0)}], "offsets committed before the move"
    assert lag("0") is None
    assert lag("1") == 7
    # revoking a partition that never reported is harmless
    await _CommitOnRevoke(member).on_partitions_revoked({TopicPartition("t", 9)})  # type: ignore[arg-type]
