"""The feed benchmarks' end: when risk has stored the last slice, confirmed by the records."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bench.feed import wait_evaluated
from services.risk.models import household_signals, metadata, processed_events


async def _store(url: str, slice_no: int, records: int, consumer: str = "risk-feeds") -> None:
    """What risk's feed consumer commits for one slice: its mark and its records' history."""
    engine = create_async_engine(url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                processed_events.insert(),
                [{"consumer": consumer, "event_id": f"slice-{slice_no}", "processed_at": now}],
            )
            await conn.execute(
                household_signals.insert(),
                [{"household_id": f"hh-{slice_no}-{n}", "event_id": f"rec-{slice_no}-{n}",
                  "event_type": "FeedRecordsReceived", "received_at": now, "payload": {},
                  "risk_types": [], "flags": []} for n in range(records)],
            )  # fmt: skip
    finally:
        await engine.dispose()


async def _schema(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


async def test_the_end_is_when_the_last_slice_was_stored(pg_url: str) -> None:
    await _schema(pg_url)
    await _store(pg_url, 1, 3)
    await _store(pg_url, 2, 3, consumer="risk")  # another consumer's marks do not count

    async def last_slice_later() -> tuple[float, float]:
        await asyncio.sleep(0.6)
        began = time.perf_counter()
        await _store(pg_url, 3, 4)  # visible at its commit, before the engine is disposed
        return began, time.perf_counter()

    (began, stored), ended = await asyncio.gather(
        last_slice_later(), wait_evaluated(pg_url, records=10, slices=2, timeout=10)
    )
    assert began <= ended  # not before the last slice was being stored
    assert ended - stored < 0.3  # polled every 0.1 s, not at a count's pace


async def test_slices_done_without_all_their_records_is_an_error(pg_url: str) -> None:
    await _schema(pg_url)
    await _store(pg_url, 1, 3)
    with pytest.raises(RuntimeError, match="only 3 of 5 records"):
        await wait_evaluated(pg_url, records=5, slices=1, timeout=5)


async def test_a_feed_that_never_finishes_times_out_with_the_count(pg_url: str) -> None:
    await _schema(pg_url)
    await _store(pg_url, 1, 2)
    with pytest.raises(TimeoutError, match="risk evaluated 2 of 9 records"):
        await wait_evaluated(pg_url, records=9, slices=3, timeout=0.5)
