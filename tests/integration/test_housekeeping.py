"""Housekeeping deletes published outbox rows and dedup marks past their retention, in batches,
and nothing else: unpublished rows stay however old, and so do recent marks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import MetaData, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import FrozenClock
from shared.db import create_engine, messaging_tables
from shared.housekeeping import purge_once, run_housekeeping
from shared.settings import ServiceSettings

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
# what _filled's outbox keeps: never published (every third row) or published within 7 days
KEPT_ROWS = {n for n in range(40) if n % 3 == 0 or n <= 7}


def _settings(**overrides: float) -> ServiceSettings:
    return ServiceSettings(service_name="hk-test", housekeeping_batch=7, **overrides)  # type: ignore[arg-type]


async def _filled(url: str) -> tuple[AsyncEngine, Table, Table]:
    metadata = MetaData()
    outbox, processed = messaging_tables(metadata)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        rows = []
        for n in range(40):
            created = NOW - timedelta(days=n)
            # every third row was never published (the broker was away): it must stay
            published = None if n % 3 == 0 else created + timedelta(seconds=1)
            rows.append(
                {"event_id": f"e{n}", "topic": "t", "key": "k", "value": b"{}",
                 "created_at": created, "published_at": published}
            )  # fmt: skip
        await conn.execute(insert(outbox), rows)
        marks = [
            {"consumer": c, "event_id": f"e{n}", "processed_at": NOW - timedelta(days=3 * n)}
            for n in range(50)
            for c in ("risk", "notify")
        ]
        await conn.execute(insert(processed), marks)
    return engine, outbox, processed


async def _check(url: str) -> None:
    engine, outbox, processed = await _filled(url)
    deleted = await purge_once(engine, outbox, processed, now=NOW, settings=_settings())
    async with engine.connect() as conn:
        left = (await conn.execute(select(outbox.c.event_id, outbox.c.published_at))).all()
        marks = (await conn.execute(select(processed.c.event_id, processed.c.consumer))).all()
    kept = {int(e[1:]) for e, _ in left}
    # published more than 7 days ago: gone; published within 7 days or never published: kept
    assert kept == KEPT_ROWS
    assert deleted["outbox"] == 40 - len(kept)
    # marks older than 100 days (3n > 100, n >= 34) are gone for both consumers, others stay
    assert sorted({int(e[1:]) for e, _ in marks}) == list(range(34))
    assert {c for _, c in marks} == {"risk", "notify"}
    assert deleted["processed_events"] == 2 * (50 - 34)
    # a second pass has nothing left to do
    again = await purge_once(engine, outbox, processed, now=NOW, settings=_settings())
    assert again == {"outbox": 0, "processed_events": 0}
    await engine.dispose()


async def test_sqlite_keeps_unpublished_rows_and_recent_marks(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'hk.db'}")


@pytest.mark.postgres
async def test_postgresql_keeps_unpublished_rows_and_recent_marks(pg_url: str) -> None:
    await _check(pg_url)


async def test_the_loop_counts_what_it_deleted_and_survives_a_failed_pass(tmp_path: Path) -> None:
    engine, outbox, processed = await _filled(f"sqlite+aiosqlite:///{tmp_path / 'hk.db'}")
    settings = _settings(housekeeping_seconds=0.05)
    labels = {"service": "hk-test", "table": "outbox"}
    before = REGISTRY.get_sample_value("holdline_housekeeping_deleted_total", labels) or 0
    # the first pass fails (the database is away), the next one deletes
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'no.db'}")
    task = asyncio.create_task(
        run_housekeeping(broken, outbox, processed, FrozenClock(NOW), settings)
    )
    await asyncio.sleep(0.2)
    assert not task.done(), "a failed pass does not end the loop"
    task.cancel()
    task = asyncio.create_task(
        run_housekeeping(engine, outbox, processed, FrozenClock(NOW), settings)
    )
    for _ in range(100):
        await asyncio.sleep(0.05)
        after = REGISTRY.get_sample_value("holdline_housekeeping_deleted_total", labels) or 0
        if after > before:
            break
    task.cancel()
    assert after - before == 40 - len(KEPT_ROWS)
    await engine.dispose()
    await broken.dispose()


def test_settings_refuse_a_retention_that_would_forget_dedup_marks_at_once() -> None:
    with pytest.raises(ValueError, match="processed_keep_days"):
        ServiceSettings(processed_keep_days=0)


async def test_every_service_runs_housekeeping_beside_its_own_loops(tmp_path: Path) -> None:
    from services.intake.app import create_app
    from services.intake.config import IntakeSettings

    settings = IntakeSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}",
        kafka_bootstrap="127.0.0.1:9",  # nothing listens: the Kafka side keeps retrying
        outbox_keep_days=0,
        housekeeping_seconds=0.05,
    )
    runtime = create_app(settings).state.runtime
    await runtime.start()
    try:
        assert "housekeeping" in {t.get_name() for t in runtime._tasks}
        async with runtime.engine.begin() as conn:
            await conn.execute(
                insert(runtime.outbox),
                {"event_id": "sent", "topic": "t", "key": "k", "value": b"{}",
                 "created_at": NOW, "published_at": NOW},
            )  # fmt: skip
        for _ in range(100):
            await asyncio.sleep(0.05)
            async with runtime.engine.connect() as conn:
                if not (await conn.execute(select(runtime.outbox.c.id))).all():
                    break
        else:
            raise AssertionError("the published row was not deleted by the service's loop")
    finally:
        await runtime.stop()
