"""rules §4 channel 4 on PostgreSQL: a household identified through the API reports a new
emergency; risk publishes MonitoredHouseholdReassessed on the cases topic (green channel, with
its provisional help), opens no case, and keeps the new risk against elimination (rules §7.1);
a department record re-reading the household afterwards says nothing."""

from __future__ import annotations

from datetime import date

import pytest

from services.risk import handlers
from services.risk.models import outbox
from shared.events import FeedRecordReceived
from tests.integration.test_risk_workflow_api import VILLAGE, WORKER, Platform, risk_platform

pytestmark = [pytest.mark.postgres]


async def test_a_monitored_households_emergency_is_reassessed(pg_url: str) -> None:
    platform: Platform
    async with risk_platform(pg_url) as platform:
        await platform.register("hh-m", [WORKER], income=5200)
        await platform.declare("hh-m", ["illness"], medical_spending=3000)
        await platform.identify(await platform.open_case_id("hh-m"))

        await platform.declare("hh-m", ["accident"], loss_amount=30_000)
        [event] = await platform.events("MonitoredHouseholdReassessed")
        p = event.payload
        assert event.household_id == "hh-m" and event.source == "risk"
        assert p.level == "green_channel" and p.provisional_measures == ["temporary_assistance"]
        assert p.new_risk_types == ["accident"] and p.submission_id == "s-hh-m"
        assert p.village_code == VILLAGE and p.channel == "app"
        async with platform.runtime.uow() as uow:
            topics = set(
                (await uow.execute(outbox.select().with_only_columns(outbox.c.topic))).scalars()
            )
        assert topics == {platform.settings.topic("cases")}
        assert len(await platform.events("CaseOpened")) == 1  # the identification case only

        household = await platform.http.get("/v1/households/hh-m", headers=platform.auth("village"))
        assert household.json()["status"] == "monitoring"

        # a department record re-reading the household: nothing new, nobody told
        await platform.signal(
            handlers.on_feed_record,
            FeedRecordReceived(
                batch_id="b", department="medical_insurance", line=1, person_id_hash="p1",
                person_id_masked="530102***********1", village_code=VILLAGE,
                recorded_on=date(2026, 3, 1), facts={"out_of_pocket_spending": 2000},
            ),
            "hh-m",
        )  # fmt: skip
        assert len(await platform.events("MonitoredHouseholdReassessed")) == 1
