"""rules §4.1, §4.8: property tests of case handling over random signal sequences (SQLite).

Never two open cases per household; a merge never moves the deadline; a closed case lets a
later signal open a new one.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from services.risk.config import RiskSettings
from services.risk.handlers import on_declaration, on_feed_record
from services.risk.models import cases, metadata, outbox, processed_events
from shared.clock import FrozenClock
from shared.db import UnitOfWork, create_engine
from shared.events import DeclarationSubmitted, FeedRecordReceived, new_event

HOUSEHOLDS = ["hh-a", "hh-b", "hh-c"]
RISKS = ["illness", "disaster", "schooling", "unstable_employment"]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("declare"), st.sampled_from(HOUSEHOLDS), st.sampled_from(RISKS)),
        st.tuples(st.just("feed"), st.sampled_from(HOUSEHOLDS), st.sampled_from("ABCD")),
        st.tuples(st.just("close"), st.sampled_from(HOUSEHOLDS), st.just("")),
        st.tuples(st.just("wait"), st.sampled_from(HOUSEHOLDS), st.just("")),
    ),
    max_size=25,
)


async def _run(script: list[tuple[str, str, str]], db: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    clock = FrozenClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    risk_settings = RiskSettings(database_url=f"sqlite+aiosqlite:///{db}")
    deadlines: dict[str, datetime] = {}
    try:
        for op, household, arg in script:
            async with UnitOfWork(engine, outbox, processed_events, clock) as uow:
                if op == "declare":
                    payload = DeclarationSubmitted(
                        submission_id="s", declarant_name="n", declarant_id_masked="m",
                        village_code="530102001001", risk_types=[arg],
                    )  # fmt: skip
                    event = new_event(payload, household_id=household, source="t",
                                      correlation_id="c", clock=clock)  # fmt: skip
                    await on_declaration(uow=uow, event=event, settings=risk_settings)
                elif op == "feed":
                    feed = FeedRecordReceived(
                        batch_id="b", department="housing", line=1, person_id_hash="p",
                        person_id_masked="m", village_code="530102001001",
                        recorded_on=clock.now().date(), facts={"house_rating": arg},
                    )  # fmt: skip
                    event = new_event(feed, household_id=household, source="t",
                                      correlation_id="c", clock=clock)  # fmt: skip
                    await on_feed_record(uow=uow, event=event, settings=risk_settings)
                elif op == "close":
                    await uow.execute(
                        update(cases)
                        .where(cases.c.household_id == household, cases.c.status == "open")
                        .values(status="rejected", stage="rejected")
                    )
                else:
                    clock.advance(timedelta(days=3))
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(select(cases.c.id, cases.c.household_id, cases.c.deadline)
                                       .where(cases.c.status == "open"))
                ).all()  # fmt: skip
            per_household = [r.household_id for r in rows]
            assert len(per_household) == len(set(per_household)), "two open cases"
            for row in rows:
                # a merge never moves the deadline, earlier or later
                assert deadlines.setdefault(row.id, row.deadline) == row.deadline
    finally:
        await engine.dispose()


@settings(max_examples=20, deadline=None)
@given(ops)
def test_rules_4_8_one_open_case_and_a_fixed_deadline(script: list[tuple[str, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(script, Path(tmp) / "risk.db"))


def test_rules_4_7_a_closed_case_lets_a_later_signal_open_a_new_one() -> None:
    script = [
        ("declare", "hh-a", "illness"),
        ("close", "hh-a", ""),
        ("declare", "hh-a", "disaster"),
    ]

    async def check(db: Path) -> None:
        await _run(script, db)
        engine = create_engine(f"sqlite+aiosqlite:///{db}")
        async with engine.connect() as conn:
            statuses = sorted((await conn.execute(select(cases.c.status))).scalars())
        await engine.dispose()
        assert statuses == ["open", "rejected"]

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(check(Path(tmp) / "risk.db"))
