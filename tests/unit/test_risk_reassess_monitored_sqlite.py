"""rules §4 channel 4 (SQLite): a new signal about a monitoring object is evaluated and its
outcome published as MonitoredHouseholdReassessed: "green_channel" when rules §5.1 is met (with
the provisional help a case would get), "new_risk" for a risk type the household was not
identified for, None otherwise; a declaration or a cadre's report always tells its submitter,
a department record only when it changes something."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from services.risk.config import RiskSettings
from services.risk.handlers import on_cadre_report, on_declaration, on_feed_record
from services.risk.models import cases, households, metadata, outbox, processed_events
from shared.clock import FrozenClock
from shared.db import UnitOfWork, create_engine
from shared.events import (
    CadreReportSubmitted,
    DeclarationSubmitted,
    FeedRecordReceived,
    Payload,
    decode,
    new_event,
)

VILLAGE = "530102001001"
HOUSEHOLD = "hh-m"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 16:00 in Beijing
Handler = Callable[..., Awaitable[None]]


def declaration(risks: list[str], *, loss: float = 0, medical: float = 0) -> DeclarationSubmitted:
    return DeclarationSubmitted(
        submission_id="s-1", declarant_name="王秀英", declarant_id_masked="530102***********1",
        village_code=VILLAGE, risk_types=risks, loss_amount=loss, medical_spending=medical,
    )  # fmt: skip


def report(risks: list[str]) -> CadreReportSubmitted:
    return CadreReportSubmitted(
        submission_id="r-1", cadre_id="c-1", village_code=VILLAGE, risk_types=risks
    )


def feed(department: str, facts: dict[str, Any], line: int = 1) -> FeedRecordReceived:
    return FeedRecordReceived(
        batch_id="b", department=department, line=line, person_id_hash="p1",
        person_id_masked="530102***********1", village_code=VILLAGE,
        recorded_on=date(2026, 3, 1), facts=facts,
    )  # fmt: skip


async def _run(
    steps: list[tuple[Handler, Payload]], db: Path, settings: dict[str, Any]
) -> tuple[list[tuple[Any, bool]], dict[str, Any], int]:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        # a monitoring object identified for illness; its identification case is closed
        await conn.execute(
            insert(households).values(
                id=HOUSEHOLD, village_code=VILLAGE, head_name="王秀英", status="monitoring",
                kind="marginal", risk_types=["illness"], risk_codes=",illness,",
                new_risk_types=[], members=[], guarantees={}, per_capita_income=5000,
                annual_income=20_000, medical_spending=3000, updated_at=START,
            )
        )  # fmt: skip
    risk = RiskSettings(database_url=f"sqlite+aiosqlite:///{db}", **settings)
    try:
        for n, (handler, payload) in enumerate(steps):
            clock = FrozenClock(START + timedelta(hours=n))
            event = new_event(
                payload, household_id=HOUSEHOLD, source="t", correlation_id="c", clock=clock
            )
            async with UnitOfWork(engine, outbox, processed_events, clock) as uow:
                await handler(uow=uow, event=event, settings=risk)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(outbox.c.value, outbox.c.bulk))).all()
            row = (await conn.execute(select(households))).one()._asdict()
            opened = len((await conn.execute(select(cases.c.id))).all())
    finally:
        await engine.dispose()
    return [(decode(value), bulk) for value, bulk in rows], row, opened


def run(
    steps: list[tuple[Handler, Payload]], **settings: Any
) -> tuple[list[tuple[Any, bool]], dict[str, Any]]:
    """The outbox (event, bulk lane) after the steps, and the household row; no case opens."""
    with tempfile.TemporaryDirectory() as tmp:
        published, row, opened = asyncio.run(_run(steps, Path(tmp) / "risk.db", settings))
    assert opened == 0
    assert {e.event_type for e, _ in published} <= {"MonitoredHouseholdReassessed"}
    return published, row


def test_an_emergency_of_a_monitored_household_opens_the_green_channel() -> None:
    """rules §5.1 met by the declaration (an accident, a loss above min(10,000, income)): the
    provisional help a case would get, the submitter told, the new risk kept (rules §7.1)."""
    [(event, bulk)], row = run([(on_declaration, declaration(["accident"], loss=50_000))])
    p = event.payload
    assert event.household_id == HOUSEHOLD and event.correlation_id == "c" and not bulk
    assert p.level == "green_channel"
    assert p.provisional_measures == ["temporary_assistance"]
    assert p.risk_types == ["accident"] and p.new_risk_types == ["accident"]
    assert p.channel == "app" and p.submission_id == "s-1" and p.village_code == VILLAGE
    assert any(r.rule == "rules §5.1" for r in p.reasons)
    assert row["new_risk_types"] == ["accident"] and row["risk_types"] == ["illness"]


def test_the_green_channel_follows_the_same_settings_as_a_cases() -> None:
    """Accidents not in green_channel_risk_types: the same declaration is a new risk only."""
    [(event, _)], _ = run(
        [(on_declaration, declaration(["accident"], loss=50_000))],
        green_channel_risk_types=("illness", "disaster"),
    )
    assert event.payload.level == "new_risk" and event.payload.provisional_measures == []
    assert event.payload.new_risk_types == ["accident"]


def test_an_identified_risk_above_the_bar_is_a_green_channel_too() -> None:
    """Illness is identified already, but the spending now exceeds rules §5.1's bar."""
    [(event, _)], row = run([(on_declaration, declaration(["illness"], medical=30_000))])
    assert event.payload.level == "green_channel"
    assert event.payload.provisional_measures == ["medical_aid"]
    assert event.payload.new_risk_types == [] and row["new_risk_types"] == []


def test_a_risk_the_household_was_not_identified_for_is_new() -> None:
    [(event, _)], row = run([(on_cadre_report, report(["schooling"]))])
    p = event.payload
    assert p.level == "new_risk" and p.new_risk_types == ["schooling"]
    assert p.channel == "cadre" and p.submission_id == "r-1" and p.provisional_measures == []
    assert row["new_risk_types"] == ["schooling"]


def test_a_declaration_or_report_that_changes_nothing_still_tells_its_submitter() -> None:
    published, row = run(
        [
            (on_declaration, declaration(["illness"], medical=2000)),
            (on_cadre_report, report([])),
        ]
    )
    assert [(e.payload.level, e.payload.submission_id) for e, _ in published] == [
        (None, "s-1"),
        (None, "r-1"),
    ]
    assert published[0][0].payload.risk_types == ["illness"]
    assert published[0][0].payload.new_risk_types == []
    assert row["new_risk_types"] == []


def test_a_department_record_is_published_only_when_it_changes_something() -> None:
    """A monthly feed re-reads most monitored households: the medical record under the bar and
    the second reading of a dangerous house say nothing; the first reading of the house (a new
    risk) and spending newly above the bar are published, in the bulk lane."""
    published, row = run(
        [
            (on_feed_record, feed("medical_insurance", {"out_of_pocket_spending": 2500})),
            (on_feed_record, feed("housing", {"house_rating": "D"}, line=2)),
            (on_feed_record, feed("housing", {"house_rating": "D"}, line=3)),
            (on_feed_record, feed("medical_insurance", {"out_of_pocket_spending": 25_000}, 4)),
            (on_feed_record, feed("medical_insurance", {"out_of_pocket_spending": 26_000}, 5)),
        ]
    )
    levels = [(e.payload.level, e.payload.new_risk_types, bulk) for e, bulk in published]
    # the dangerous house stays a fact of the household: every later evaluation has its risk
    new = ["housing_unsafe"]
    assert levels == [("new_risk", new, True), ("green_channel", new, True)]
    for event, _ in published:
        assert event.payload.channel == "department" and event.payload.submission_id is None
    assert row["new_risk_types"] == ["housing_unsafe"]
