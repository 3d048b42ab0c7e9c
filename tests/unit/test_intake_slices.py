"""Feed rows travel as slices (rules §8): shape, grouping by household shard, size, and the
partition each shard's slices go to."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from services.intake.config import IntakeSettings
from services.intake.ingest import FeedContext, shard_of, slice_key, slice_rows
from services.intake.pii import Vault
from shared.clock import FrozenClock
from shared.events import SCHEMA_VERSION, FeedRecordsReceived, decode
from shared.kafka import partition_for

NOW = datetime(2026, 11, 2, 8, 30, 15, 123456, tzinfo=UTC)


def context(slice_records: int = 3, shards: int = 4) -> FeedContext:
    return FeedContext(
        department="housing", fmt="ndjson", uow_factory=lambda: None,  # type: ignore[arg-type,return-value]
        vault=Vault("k" * 32), clock=FrozenClock(NOW), topic="holdline.signals.v1",
        batch_rows=100, max_bytes=1 << 20, max_line_bytes=4096, after_commit=lambda: None,
        slice_records=slice_records, shards=shards,
    )  # fmt: skip


def record(n: int, household: str) -> dict[str, object]:
    return {
        "line": n, "household_id": household, "person_id_hash": f"p{n}",
        "person_id_masked": "530102***********1", "village_code": "530102001001",
        "recorded_on": date(2026, 10, 31), "facts": {"house_rating": "D", "note": "危房"},
    }  # fmt: skip


def test_a_slice_is_the_event_contract_and_keeps_every_row_once_in_order() -> None:
    households = [f"hh-{n % 5}" for n in range(20)]
    rows = slice_rows(context(), "batch-1", [record(n, h) for n, h in enumerate(households)], NOW)
    events = [decode(r["value"]) for r in rows]
    assert all(isinstance(e.payload, FeedRecordsReceived) for e in events)
    assert all(len(e.payload.records) <= 3 for e in events)
    assert sorted(r.line for e in events for r in e.payload.records) == list(range(20))
    for row, event in zip(rows, events, strict=True):
        assert row["event_id"] == str(event.event_id)
        assert row["key"] == event.household_id == slice_key(event.payload.shard)
        assert (event.event_type, event.schema_version) == ("FeedRecordsReceived", SCHEMA_VERSION)
        assert event.occurred_at == NOW and event.correlation_id == "batch-1"
        assert event.source == "intake.feed.housing"
        # every row of a household is in its shard's slices, in line order
        assert {shard_of(r.household_id, 4) for r in event.payload.records} == {event.payload.shard}
    by_household: dict[str, list[int]] = {}
    for event in events:
        for r in event.payload.records:
            by_household.setdefault(r.household_id, []).append(r.line)
    assert all(lines == sorted(lines) for lines in by_household.values())
    first = events[0].payload.records[0]
    assert first.recorded_on == date(2026, 10, 31)
    assert first.facts == {"house_rating": "D", "note": "危房"}


def test_the_shard_of_a_household_never_changes() -> None:
    assert shard_of("hh-abc", 16) == shard_of("hh-abc", 16)
    assert {shard_of(f"hh-{n}", 16) for n in range(500)} == set(range(16))


@pytest.mark.parametrize("partitions", [2, 3, 4, 6, 8, 12, 16, 24, 48])
def test_the_default_shards_spread_evenly_over_any_partition_count_that_divides_them(
    partitions: int,
) -> None:
    shards = IntakeSettings.model_fields["feed_shards"].default
    assert shards % partitions == 0
    every = list(range(partitions))
    landed = Counter(partition_for(slice_key(s).encode(), every, every) for s in range(shards))
    assert set(landed.values()) == {shards // partitions}


def test_a_shard_keeps_its_partition_and_other_keys_are_partitioned_like_the_java_client() -> None:
    every = [3, 1, 0, 2]  # in whatever order the metadata lists them
    assert [partition_for(slice_key(s).encode(), every, every) for s in range(6)] == [
        0, 1, 2, 3, 0, 1,
    ]  # fmt: skip
    murmur2 = DefaultPartitioner()
    for key in (b"hh-530102-0001", b"feed-shard-", b"feed-shard-x7", "户-1".encode()):
        assert partition_for(key, [0, 1, 2, 3], [0, 1, 2, 3]) == murmur2(key, [0, 1, 2, 3], [])
    assert partition_for(None, [0, 1, 2, 3], [2]) == 2  # no key: an available partition
