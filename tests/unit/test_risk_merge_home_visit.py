"""rules §4.10 on a merge (SQLite): a self-declaration that joins a case a department record or a
cadre's report opened starts the home-visit clock, and its CaseMerged says so, with the village,
so notify can tell the village cadre; every other merge says nothing of a visit."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.notify import routing, templates
from services.risk.config import RiskSettings
from services.risk.handlers import on_cadre_report, on_declaration, on_feed_record
from services.risk.models import metadata, outbox, processed_events
from shared.clock import FrozenClock
from shared.db import UnitOfWork, create_engine
from shared.events import (
    CadreReportSubmitted,
    CaseMerged,
    DeclarationSubmitted,
    Envelope,
    FeedRecordReceived,
    Payload,
    decode,
    new_event,
)

VILLAGE = "530102001001"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 16:00 in Beijing
Handler = Callable[..., Awaitable[None]]


def declaration(medical: float = 3000) -> DeclarationSubmitted:
    return DeclarationSubmitted(
        submission_id="s", declarant_name="王秀英", declarant_id_masked="530102***********1",
        village_code=VILLAGE, risk_types=["illness"], medical_spending=medical,
    )  # fmt: skip


def housing(rating: str = "D", line: int = 1) -> FeedRecordReceived:
    return FeedRecordReceived(
        batch_id="b", department="housing", line=line, person_id_hash="p1",
        person_id_masked="530102***********1", village_code=VILLAGE,
        recorded_on=date(2026, 3, 1), facts={"house_rating": rating},
    )  # fmt: skip


def report(risks: list[str]) -> CadreReportSubmitted:
    return CadreReportSubmitted(
        submission_id="r", cadre_id="c-1", village_code=VILLAGE, risk_types=risks
    )


async def _merges(
    steps: list[tuple[Handler, Payload, timedelta]], db: Path
) -> list[Envelope[CaseMerged]]:
    """Each step handled as an event `timedelta` after START; the CaseMerged risk published."""
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    settings = RiskSettings(database_url=f"sqlite+aiosqlite:///{db}")
    try:
        for handler, payload, after in steps:
            clock = FrozenClock(START + after)
            event = new_event(
                payload, household_id="hh-6", source="t", correlation_id="c", clock=clock
            )
            async with UnitOfWork(engine, outbox, processed_events, clock) as uow:
                await handler(uow=uow, event=event, settings=settings)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(outbox.c.value).order_by(outbox.c.id))).scalars()
            published: list[Envelope[Any]] = [decode(v) for v in rows]
    finally:
        await engine.dispose()
    return [e for e in published if e.event_type == "CaseMerged"]


def merges(steps: list[tuple[Handler, Payload, timedelta]]) -> list[Envelope[CaseMerged]]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_merges(steps, Path(tmp) / "risk.db"))


def test_rules_4_10_a_declaration_joining_a_feeds_case_asks_the_village_for_a_visit() -> None:
    """The housing record opened the case on Monday; the farmer declares on Tuesday 16:00 in
    Beijing: the visit is due Thursday 16:00, and notify routes the merge to the village."""
    [merged] = merges(
        [(on_feed_record, housing(), timedelta()), (on_declaration, declaration(), timedelta(1))]
    )
    payload = merged.payload
    assert payload.home_visit_due == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    assert payload.level == "village" and payload.village_code == VILLAGE
    route = routing.route_for(merged.event_type, payload.get("level"))
    assert route is not None and route.targets == ("village",)
    assert templates.deadline_of(payload) == payload.home_visit_due


def test_rules_4_10_a_declaration_joining_a_cadres_case_asks_the_village_too() -> None:
    [merged] = merges(
        [
            (on_cadre_report, report(["housing_unsafe"]), timedelta()),
            (on_declaration, declaration(), timedelta(1)),
        ]
    )
    assert merged.payload.level == "village" and merged.payload.home_visit_due is not None


def test_ordinary_merges_ask_nobody_for_a_visit() -> None:
    """A second declaration (the clock runs already), a cadre's report and a department record
    bringing a new risk all join the case; none of their CaseMerged has a level or a route."""
    found = merges(
        [
            (on_declaration, declaration(), timedelta()),  # opens the case, visit due
            (on_declaration, declaration(3500), timedelta(hours=2)),
            (on_cadre_report, report(["lack_of_labour"]), timedelta(hours=3)),
            (on_feed_record, housing(), timedelta(hours=4)),  # housing_unsafe is new
        ]
    )
    assert len(found) == 3
    for merged in found:
        assert merged.payload.level is None and merged.payload.home_visit_due is None
        assert merged.payload.village_code == VILLAGE
        assert routing.route_for(merged.event_type, merged.payload.get("level")) is None
