"""Bulk writes: many outbox (or error) rows in one statement, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.intake.models import outbox
from shared.db import UnitOfWork, bulk_insert
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


async def record_many(uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
    """Put many events on the outbox in one statement (never one round trip per event)."""
    await bulk_insert(uow, outbox, rows)
