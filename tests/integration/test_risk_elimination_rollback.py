"""Elimination and its rollback on PostgreSQL, through the API (rules §7.1, §7.4): a rollback is
refused while the household is being identified again in an open case, and once done it
restarts the evidence of rules §7.1 instead of proposing elimination again at the next visit;
a new risk a cadre finds on a visit is published like a declaration's and, once a later visit
finds it resolved, no longer blocks elimination."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.risk import monitoring
from shared.events import IncomeUpdated, MeasureCompleted, Payload, VisitRecorded
from tests.integration.test_risk_workflow_api import ELDER, WORKER, Platform, risk_platform

pytestmark = [pytest.mark.postgres]


async def proposals(platform: Platform, household: str) -> list[str]:
    """The elimination cases proposed for the household, oldest first."""
    return [
        e.payload.case_id
        for e in await platform.events("CaseStepCompleted")
        if e.payload.step == "elimination_proposed" and e.household_id == household
    ]


async def assist(platform: Platform, household: str, *payloads: Payload) -> None:
    """Assistance events about the household, now."""
    handlers: dict[type[Any], Any] = {
        IncomeUpdated: monitoring.on_income_updated,
        MeasureCompleted: monitoring.on_measure_completed,
        VisitRecorded: monitoring.on_visit_recorded,
    }
    for payload in payloads:
        await platform.signal(handlers[type(payload)], payload, household)


def visit(platform: Platform, n: int, **fields: Any) -> VisitRecorded:
    return VisitRecorded(
        visit_id=f"v{n}", cadre_id="c1", visited_on=platform.clock.now().date(), **fields
    )


async def walk_elimination(platform: Platform, case_id: str) -> None:
    """rules §7.2: the elimination case's steps with the right roles."""
    for role, action in (
        ("village", "complete_home_verification"),
        ("village", "post_public_notice"),
    ):
        assert (await platform.act(case_id, role, action)).status_code == 200, action  # type: ignore[arg-type]
    platform.clock.advance(timedelta(days=platform.settings.public_notice_days))
    for role, action in (
        ("village", "complete_village_appraisal"),
        ("township", "approve_township_review"),
        ("county", "approve_county"),
    ):
        answer = await platform.act(case_id, role, action)  # type: ignore[arg-type]
        assert answer.status_code == 200, answer.text


async def eliminated(platform: Platform, household: str) -> str:
    """Identified, helped, six months above the line, eliminated: the elimination case."""
    await platform.identified_and_helped(household, [WORKER, ELDER])
    platform.clock.advance(timedelta(days=184))
    today = platform.clock.now().date()
    await assist(
        platform,
        household,
        IncomeUpdated(per_capita_income=9600, recorded_on=today, source="visit"),
    )
    [case_id] = await proposals(platform, household)
    await walk_elimination(platform, case_id)
    assert len(await platform.events("RiskEliminated")) >= 1
    return case_id


async def household(platform: Platform, household_id: str) -> dict[str, Any]:
    answer = await platform.http.get(
        f"/v1/households/{household_id}", headers=platform.auth("county")
    )
    assert answer.status_code == 200
    return dict(answer.json())


async def rollback(platform: Platform, household_id: str) -> Any:
    return await platform.http.post(
        f"/v1/households/{household_id}/elimination-rollback",
        json={"reason": "income fell again"},
        headers=platform.auth("county"),
    )


async def test_rules_7_4_no_rollback_while_the_household_is_identified_again(
    pg_url: str,
) -> None:
    """A new shock after elimination opened a case (rules §7.4 "identified again through §4"):
    that case decides, so the rollback is a 409 naming the household and the case, and
    changes nothing."""
    async with risk_platform(pg_url) as platform:
        await eliminated(platform, "hh-r1")
        await platform.declare("hh-r1", ["accident"], loss_amount=30_000)
        open_case = await platform.open_case_id("hh-r1")

        refused = await rollback(platform, "hh-r1")
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert detail.startswith("household_id:") and "hh-r1" in detail and open_case in detail
        assert not await platform.events("EliminationRolledBack")
        assert (await household(platform, "hh-r1"))["status"] == "eliminated"
        assert await platform.open_case_id("hh-r1") == open_case


async def test_rules_7_4_a_rollback_restarts_the_evidence_of_rules_7_1(pg_url: str) -> None:
    """After a rollback the household is monitored again: the clear visit the next day, with
    the same income, proposes nothing; the income clock runs from the rollback, the measures
    count again from the first one carried out after it."""
    async with risk_platform(pg_url) as platform:
        case_id = await eliminated(platform, "hh-r2")
        platform.clock.advance(timedelta(days=30))
        rolled_on = platform.clock.now().date()
        done = await rollback(platform, "hh-r2")
        assert done.status_code == 200, done.text
        assert done.json()["case_id"] == case_id
        after = await household(platform, "hh-r2")
        assert after["status"] == "monitoring"
        assert after["income_above_since"] == rolled_on.isoformat()
        assert after["measures_completed"] == 0

        platform.clock.advance(timedelta(days=1))
        await assist(
            platform, "hh-r2",
            visit(platform, 10, per_capita_income=9600),
            MeasureCompleted(measure_id="m2", plan_id="p2", code="medical_aid",
                             completed_on=platform.clock.now().date()),
        )  # fmt: skip
        assert await proposals(platform, "hh-r2") == [case_id]  # the first one only

        # six months of income above the line after the rollback: proposed again
        platform.clock.advance(timedelta(days=184))
        await assist(platform, "hh-r2", visit(platform, 11, per_capita_income=9700))
        assert len(await proposals(platform, "hh-r2")) == 2


async def test_rules_7_1_a_new_risk_found_on_a_visit_is_reassessed_then_resolved(
    pg_url: str,
) -> None:
    """A cadre's visit finds a new risk: MonitoredHouseholdReassessed (level new_risk, channel
    visit) so assistance fills the gap and the cadre is told; no case opens; the risk blocks
    elimination (rules §7.1) until a later visit finds the household clear, when it joins the
    risks the household is monitored for and elimination is proposed."""
    async with risk_platform(pg_url) as platform:
        await platform.identified_and_helped("hh-r3", [WORKER, ELDER])
        opened = len(await platform.events("CaseOpened"))
        await assist(platform, "hh-r3", visit(platform, 20, new_risk_types=["schooling"]))
        [event] = await platform.events("MonitoredHouseholdReassessed")
        p = event.payload
        assert event.household_id == "hh-r3"
        assert p.level == "new_risk" and p.new_risk_types == ["schooling"]
        assert p.channel == monitoring.VISIT_CHANNEL and p.submission_id is None
        assert len(await platform.events("CaseOpened")) == opened
        held = await household(platform, "hh-r3")
        assert held["new_risk_types"] == ["schooling"] and held["risk_types"] == ["illness"]

        # the same risk found again: already told, nobody told twice
        await assist(platform, "hh-r3", visit(platform, 21, new_risk_types=["schooling"]))
        assert len(await platform.events("MonitoredHouseholdReassessed")) == 1

        # six months on, income above the line, but the new risk still stands at this visit
        platform.clock.advance(timedelta(days=184))
        today = platform.clock.now().date()
        await assist(
            platform, "hh-r3",
            IncomeUpdated(per_capita_income=9600, recorded_on=today, source="visit"),
            visit(platform, 22, new_risk_types=["schooling"]),
        )  # fmt: skip
        assert await proposals(platform, "hh-r3") == []

        # the next visit finds the child back at school: resolved, elimination proposed
        await assist(platform, "hh-r3", visit(platform, 23))
        resolved = await household(platform, "hh-r3")
        assert resolved["new_risk_types"] == []
        assert resolved["risk_types"] == ["illness", "schooling"]
        assert len(await proposals(platform, "hh-r3")) == 1


async def test_rules_7_1_the_income_clock_reads_records_by_their_dates(pg_url: str) -> None:
    """A visit dated 1 May with 12,000 arriving after an 8 December record of 6,000 neither
    raises the income known nor starts the clock in May; a figure above recorded after the
    lower one starts it then. The income history is not listed among the signals."""
    async with risk_platform(pg_url) as platform:
        await platform.identified_and_helped("hh-r4", [WORKER, ELDER])
        signals_before = len((await household(platform, "hh-r4"))["signals"])
        await assist(
            platform, "hh-r4",
            VisitRecorded(visit_id="v30", cadre_id="c1", visited_on=date(2026, 12, 8),
                          per_capita_income=6000),
            VisitRecorded(visit_id="v31", cadre_id="c1", visited_on=date(2026, 5, 1),
                          per_capita_income=12_000),
        )  # fmt: skip
        held = await household(platform, "hh-r4")
        assert held["income_above_since"] is None and held["per_capita_income"] == 6000
        assert len(held["signals"]) == signals_before

        await assist(
            platform, "hh-r4",
            IncomeUpdated(per_capita_income=12_000, recorded_on=date(2026, 12, 9),
                          source="feed"),
            IncomeUpdated(per_capita_income=12_500, recorded_on=date(2026, 6, 1),
                          source="feed"),
        )  # fmt: skip
        held = await household(platform, "hh-r4")
        assert held["income_above_since"] == "2026-12-09" and held["per_capita_income"] == 12_000


async def test_rules_7_4_a_record_dated_before_the_rollback_does_not_count_again(
    pg_url: str,
) -> None:
    async with risk_platform(pg_url) as platform:
        await eliminated(platform, "hh-r5")
        rolled_on = platform.clock.now().date()
        assert (await rollback(platform, "hh-r5")).status_code == 200
        await assist(
            platform, "hh-r5",
            IncomeUpdated(per_capita_income=9900, recorded_on=rolled_on - timedelta(days=90),
                          source="feed"),
        )  # fmt: skip
        assert (await household(platform, "hh-r5"))["income_above_since"] == rolled_on.isoformat()


async def test_rules_7_1_the_home_verification_figure_is_a_dated_income_record(
    pg_url: str,
) -> None:
    """The per-capita income the home verification establishes is in the history the clock
    reads: a visit dated months before it, with a higher figure, starts no run."""
    async with risk_platform(pg_url) as platform:
        await platform.register("hh-r6", [WORKER, ELDER], income=5200)
        await platform.declare("hh-r6", ["illness"], medical_spending=3000)
        case_id = await platform.open_case_id("hh-r6")
        assert (
            await platform.act(case_id, "village", "start_home_verification")
        ).status_code == 200
        verified = await platform.act(
            case_id, "village", "complete_home_verification", signed_form=True,
            per_capita_income=6000,
        )  # fmt: skip
        assert verified.status_code == 200, verified.text
        verified_on = platform.clock.now().date()
        await assist(
            platform, "hh-r6",
            VisitRecorded(visit_id="v60", cadre_id="c1", per_capita_income=12_000,
                          visited_on=verified_on - timedelta(days=150)),
        )  # fmt: skip
        held = await household(platform, "hh-r6")
        assert held["per_capita_income"] == 6000 and held["income_above_since"] is None
