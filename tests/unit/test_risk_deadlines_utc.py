"""Working-day deadlines on SQLite (rules §4.9-§4.10, §5.3): every instant risk stores is UTC.
SQLite keeps a datetime's wall time without its offset and reads it back as UTC, so a deadline
computed in Beijing time fell due 8 hours late there, and so did the scheduler's alerts."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.risk.config import RiskSettings
from services.risk.handlers import on_declaration
from services.risk.models import cases, metadata, outbox, processed_events
from services.risk.scheduler import scan_deadlines
from shared.clock import FrozenClock
from shared.db import UnitOfWork, create_engine
from shared.events import DeclarationSubmitted, decode, new_event

DECLARED = datetime(2026, 12, 7, 17, 2, tzinfo=UTC)  # Tuesday 8 December, 01:02 in Beijing
VISIT_DUE = datetime(2026, 12, 9, 17, 2, tzinfo=UTC)  # Thursday 10 December, 01:02 in Beijing
PAPERWORK_DUE = datetime(2026, 12, 21, 17, 2, tzinfo=UTC)  # 10 working days: Tuesday 22
DEADLINE = datetime(2026, 12, 28, 17, 2, tzinfo=UTC)  # 15 working days: Tuesday 29


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _run(db: Path, scans: list[datetime]) -> tuple[dict[str, Any], list[list[str]]]:
    url = f"sqlite+aiosqlite:///{db}"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    settings = RiskSettings(database_url=url, identification_day_basis="working")
    try:
        clock = FrozenClock(DECLARED)
        declaration = DeclarationSubmitted(
            submission_id="s", declarant_name="王秀英", declarant_id_masked="530102***********1",
            village_code="530102001001", risk_types=["illness"], medical_spending=20_000,
        )  # fmt: skip
        event = new_event(
            declaration, household_id="hh", source="t", correlation_id="c", clock=clock
        )
        async with UnitOfWork(engine, outbox, processed_events, clock) as uow:
            await on_declaration(uow=uow, event=event, settings=settings)
        async with engine.connect() as conn:
            row = (await conn.execute(select(cases))).one()._asdict()
        alerts = []
        for at in scans:
            scan_clock = FrozenClock(at)
            last = await _last_outbox_id(engine)
            await scan_deadlines(
                uow_factory=partial(UnitOfWork, engine, outbox, processed_events, scan_clock),
                settings=settings,
            )
            async with engine.connect() as conn:
                values = await conn.execute(select(outbox.c.value).where(outbox.c.id > last))
                alerts.append(
                    sorted(decode(v).payload.get("deadline_kind") for v in values.scalars())
                )
    finally:
        await engine.dispose()
    return row, alerts


async def _last_outbox_id(engine: Any) -> int:
    async with engine.connect() as conn:
        ids = (await conn.execute(select(outbox.c.id))).scalars().all()
    return max(ids, default=0)


def run(scans: list[datetime]) -> tuple[dict[str, Any], list[list[str]]]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_run(Path(tmp) / "risk.db", scans))


def test_working_day_deadlines_are_stored_in_utc_on_sqlite() -> None:
    row, _ = run([])
    assert utc(row["home_visit_due"]) == VISIT_DUE  # rules §4.10
    assert utc(row["paperwork_due"]) == PAPERWORK_DUE  # rules §5.3
    assert utc(row["deadline"]) == DEADLINE  # rules §4.9, 15 working days
    # rules §4.11: two thirds of the way, an instant too
    assert utc(row["warning_at"]) == DECLARED + (DEADLINE - DECLARED) * (2 / 3)


def test_the_scheduler_alerts_when_the_deadline_passes_not_8_hours_later() -> None:
    """The home visit is overdue from 17:02 UTC on 9 December and the paperwork from 17:02 UTC
    on 21 December; each scan an hour after finds it (before the fix: nothing until 01:02)."""
    _, alerts = run(
        [
            datetime(2026, 12, 9, 17, 0, tzinfo=UTC),
            datetime(2026, 12, 9, 18, 2, tzinfo=UTC),
            datetime(2026, 12, 21, 18, 2, tzinfo=UTC),
        ]
    )
    # the township's warning (rules §4.11) falls due the same instant: 14 of 21 days
    assert alerts == [[], ["home_visit"], ["green_channel_paperwork", "identification"]]
