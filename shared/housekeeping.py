"""Housekeeping of the messaging tables every service owns: without it they only grow.

- `outbox`: a row has done its work once published; published rows are kept
  `outbox_keep_days` (7) for looking into what a service sent, then deleted. Unpublished rows
  are never touched, however old.
- `processed_events`: a mark makes a redelivered event a no-op. Events come back from a topic
  within its retention (14 days) and from a dead-letter replay within the DLQs' (90 days), so
  marks are kept `processed_keep_days` (100) and then deleted.

Deletes go in batches of `housekeeping_batch` rows, one short transaction each, so a pass never
holds locks for long; replicas may run passes at the same time (a row deleted by one is skipped
by the other).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import Delete, Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import metrics
from shared.clock import Clock
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


async def _purge(engine: AsyncEngine, statement: Delete, batch: int) -> int:
    """Run a batched DELETE until it removes fewer than `batch` rows; the total deleted."""
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = (await conn.execute(statement)).rowcount
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # between batches the service's own work goes first


async def purge_once(
    engine: AsyncEngine,
    outbox: Table,
    processed: Table,
    *,
    now: datetime,
    settings: ServiceSettings,
) -> dict[str, int]:
    """One pass over both tables; rows deleted per table."""
    batch = settings.housekeeping_batch
    published_before = now - timedelta(days=settings.outbox_keep_days)
    # published_at < X never matches NULL: unpublished rows stay whatever their age
    old_rows = (
        select(outbox.c.id).where(outbox.c.published_at < published_before).limit(batch)
    ).scalar_subquery()
    marked_before = now - timedelta(days=settings.processed_keep_days)
    old_marks = (
        select(processed.c.consumer, processed.c.event_id)
        .where(processed.c.processed_at < marked_before)
        .limit(batch)
    )
    mark = tuple_(processed.c.consumer, processed.c.event_id)
    return {
        "outbox": await _purge(engine, delete(outbox).where(outbox.c.id.in_(old_rows)), batch),
        "processed_events": await _purge(
            engine, delete(processed).where(mark.in_(old_marks)), batch
        ),
    }


async def run_housekeeping(
    engine: AsyncEngine, outbox: Table, processed: Table, clock: Clock, settings: ServiceSettings
) -> None:
    """A pass shortly after start, then every `housekeeping_seconds`; a failed pass (database
    away) is logged and tried again at the next one."""
    service = settings.service_name
    await asyncio.sleep(min(60.0, settings.housekeeping_seconds))
    while True:
        try:
            now = clock.now()
            deleted = await purge_once(engine, outbox, processed, now=now, settings=settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("housekeeping pass failed (%r); next one in %.0f s", exc,
                        settings.housekeeping_seconds)  # fmt: skip
        else:
            for table, count in deleted.items():
                if count:
                    metrics.HOUSEKEEPING_DELETED.labels(service, table).inc(count)
                    log.info("housekeeping: %d rows deleted from %s", count, table)
        await asyncio.sleep(settings.housekeeping_seconds)
