"""Pre-serialised outbox rows (feed slices) in one statement, inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from services.intake.models import outbox
from shared.db import UnitOfWork, bulk_insert


async def record_many(uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
    """Put many events on the outbox in one statement (never one round trip per event)."""
    await bulk_insert(uow, outbox, rows)
