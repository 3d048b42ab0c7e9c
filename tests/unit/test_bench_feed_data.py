"""The scaling benchmark's slices stand for intake's: stamped now, and spread over the
partitions as intake's producer spreads them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.feed import slices
from shared.events import decode
from shared.kafka import partition_for


def test_slices_are_stamped_now_so_no_case_they_open_is_overdue_at_once() -> None:
    events = [decode(value) for _, value in slices(2_000)]
    assert all(abs(e.occurred_at - datetime.now(UTC)) < timedelta(minutes=1) for e in events)


def test_each_of_four_partitions_gets_a_quarter_of_the_records() -> None:
    records: Counter[int] = Counter()
    every = [0, 1, 2, 3]
    for key, value in slices(20_000):
        records[partition_for(key, every, every)] += len(decode(value).payload.records)
    assert sorted(records) == [0, 1, 2, 3]
    assert all(abs(n - 5_000) < 250 for n in records.values()), records
