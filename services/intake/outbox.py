"""Bulk writes: many outbox (or error) rows in one statement, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, text

from services.intake.models import outbox
from shared.db import UnitOfWork
from shared.events import Envelope


def outbox_row(envelope: Envelope[Any], topic: str, now: datetime) -> dict[str, Any]:
    """The outbox row of one event, keyed by household so the relay keeps household order."""
    return {
        "event_id": str(envelope.event_id),
        "topic": topic,
        "key": envelope.household_id,
        "value": envelope.to_bytes(),
        "created_at": now,
    }


async def bulk_insert(uow: UnitOfWork, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows at once: COPY on PostgreSQL, one multi-row INSERT elsewhere."""
    if not rows:
        return
    if uow.conn.dialect.name != "postgresql":
        await uow.execute(insert(table), rows)
        return
    # make sure the transaction has begun on the driver connection before COPY joins it
    await uow.execute(text("SELECT 1"))
    raw = await uow.conn.get_raw_connection()
    columns = list(rows[0])
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        table.name, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
    )


async def record_many(uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
    """Put many events on the outbox in one statement (never one round trip per event)."""
    await bulk_insert(uow, outbox, rows)
