"""The days behind rules §7.1's visit evidence, on PostgreSQL: a clear visit resolves the new
risks only from the day the latest appeared; a visit recorded late, dated before one already
recorded or before a rollback (§7.4), does not say what the household is like now; and a
cadre's report or a registry record giving a monitored household's income is a dated record
of the income history the §7.1 clock reads."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.risk import handlers
from shared.events import CadreReportSubmitted, Guarantees, RegistryRecordReceived, VisitRecorded
from tests.integration.test_risk_elimination_rollback import (
    assist,
    eliminated,
    household,
    proposals,
    rollback,
)
from tests.integration.test_risk_workflow_api import ELDER, VILLAGE, WORKER, risk_platform

pytestmark = [pytest.mark.postgres]


def visit_on(n: int, day: date, **fields: Any) -> VisitRecorded:
    return VisitRecorded(visit_id=f"v{n}", cadre_id="c1", visited_on=day, **fields)


async def test_rules_7_1_a_clear_visit_before_a_new_risk_appeared_does_not_resolve_it(
    pg_url: str,
) -> None:
    """The farmer declares a new risk on day D; a clear visit dated D-3, recorded after it,
    leaves the risk standing (and elimination blocked); the clear visit of day D resolves it."""
    async with risk_platform(pg_url) as platform:
        await platform.identified_and_helped("hh-d1", [WORKER, ELDER])
        platform.clock.advance(timedelta(days=190))
        await platform.declare("hh-d1", ["schooling"], schooling_spending=500)
        today = platform.clock.now().date()
        held = await household(platform, "hh-d1")
        assert held["new_risk_types"] == ["schooling"]
        assert held["new_risks_since"] == today.isoformat()

        await assist(platform, "hh-d1", visit_on(1, today - timedelta(days=3)))
        held = await household(platform, "hh-d1")
        assert held["new_risk_types"] == ["schooling"], "an earlier visit resolved a later risk"
        assert await proposals(platform, "hh-d1") == []

        await assist(platform, "hh-d1", visit_on(2, today))
        held = await household(platform, "hh-d1")
        assert held["new_risk_types"] == [] and "schooling" in held["risk_types"]
        assert held["new_risks_since"] is None
        assert len(await proposals(platform, "hh-d1")) == 1


async def test_rules_7_1_a_new_risk_found_at_a_visit_dates_from_that_visit(pg_url: str) -> None:
    """A visit recorded days after it happened: its new risk appeared on the visit's day, so
    a clear visit the day after that resolves it, though it is dated before the recording."""
    async with risk_platform(pg_url) as platform:
        await platform.identified_and_helped("hh-d2", [WORKER, ELDER])
        platform.clock.advance(timedelta(days=10))
        today = platform.clock.now().date()
        await assist(
            platform,
            "hh-d2",
            visit_on(1, today - timedelta(days=5), new_risk_types=["housing_unsafe"]),
        )
        held = await household(platform, "hh-d2")
        assert held["new_risks_since"] == (today - timedelta(days=5)).isoformat()
        await assist(platform, "hh-d2", visit_on(2, today - timedelta(days=4)))
        assert (await household(platform, "hh-d2"))["new_risk_types"] == []


async def test_rules_7_1_a_visit_recorded_late_does_not_undo_a_later_one(pg_url: str) -> None:
    """The latest visit found everything secured; one from the week before, recorded after
    it, found the water supply cut: the household is as the latest visit found it."""
    async with risk_platform(pg_url) as platform:
        await platform.identified_and_helped("hh-d3", [WORKER, ELDER])
        today = platform.clock.now().date()
        await assist(platform, "hh-d3", visit_on(1, today))
        cut = Guarantees(drinking_water_safe=False)
        await assist(platform, "hh-d3", visit_on(2, today - timedelta(days=7), guarantees=cut))
        held = await household(platform, "hh-d3")
        assert held["last_visit_on"] == today.isoformat() and held["last_visit_clear"] is True


async def test_rules_7_4_a_visit_dated_before_the_rollback_is_not_the_visit_after_it(
    pg_url: str,
) -> None:
    async with risk_platform(pg_url) as platform:
        await eliminated(platform, "hh-d4")
        rolled_on = platform.clock.now().date()
        assert (await rollback(platform, "hh-d4")).status_code == 200
        await assist(platform, "hh-d4", visit_on(1, rolled_on - timedelta(days=2)))
        held = await household(platform, "hh-d4")
        assert held["last_visit_clear"] is False and held["last_visit_on"] == rolled_on.isoformat()
        await assist(platform, "hh-d4", visit_on(2, rolled_on))
        assert (await household(platform, "hh-d4"))["last_visit_clear"] is True


async def test_rules_7_1_a_cadre_report_of_low_income_restarts_the_clock(pg_url: str) -> None:
    """Six months above the line, then a cadre reports the income fell below it: the clock
    stops (no elimination proposed) and starts again from a later figure above."""
    async with risk_platform(pg_url) as platform:
        await platform.identified_and_helped("hh-d5", [WORKER, ELDER])
        platform.clock.advance(timedelta(days=100))
        await platform.signal(
            handlers.on_cadre_report,
            CadreReportSubmitted(
                submission_id="cr-d5", village_code=VILLAGE, cadre_id="c1", risk_types=[],
                per_capita_income=3000,
            ),
            "hh-d5",
        )  # fmt: skip
        held = await household(platform, "hh-d5")
        assert held["per_capita_income"] == 3000 and held["income_above_since"] is None
        platform.clock.advance(timedelta(days=90))
        await assist(platform, "hh-d5", visit_on(1, platform.clock.now().date()))
        assert await proposals(platform, "hh-d5") == []


async def test_rules_7_1_a_registry_record_is_a_dated_income_record(pg_url: str) -> None:
    """A registry sync carrying a monitored household's income above the line starts the run
    on its day; a visit dated before it with a lower figure does not stop that run."""
    async with risk_platform(pg_url) as platform:
        await platform.register("hh-d6", [WORKER, ELDER], income=5200)
        await platform.declare("hh-d6", ["illness"], medical_spending=3000)
        await platform.identify(await platform.open_case_id("hh-d6"))
        platform.clock.advance(timedelta(days=10))
        synced_on = platform.clock.now().date()
        await platform.signal(
            handlers.on_registry_record,
            RegistryRecordReceived(
                submission_id="r2", village_code=VILLAGE, baseline_status="formerly_poor",
                per_capita_income=9800, members=[WORKER, ELDER],
            ),
            "hh-d6",
        )  # fmt: skip
        held = await household(platform, "hh-d6")
        assert held["income_above_since"] == synced_on.isoformat()
        await assist(
            platform, "hh-d6", visit_on(1, synced_on - timedelta(days=30), per_capita_income=4000)
        )
        held = await household(platform, "hh-d6")
        assert held["income_above_since"] == synced_on.isoformat()
        assert held["per_capita_income"] == 9800
