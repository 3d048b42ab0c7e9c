"""The submitter learns the outcome: intake follows its case to the green channel, the
identification or the rejection (with its reason), or the reassessment of a household already
monitored (rules §4, §5), on real PostgreSQL and Kafka; never moving a submission backwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.intake import handlers
from shared.clock import SystemClock
from shared.events import (
    CaseMerged,
    CaseOpened,
    CaseRejected,
    Envelope,
    GreenChannelOpened,
    HouseholdIdentified,
    MonitoredHouseholdReassessed,
    Payload,
    new_event,
)
from shared.kafka import make_producer
from tests.integration.test_intake_api import (
    APP,
    cadre_report,
    declaration,
    running_intake,
    token,
    wait_status,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
VILLAGE = "530102001001"
NOW = SystemClock().now()


def case_event(payload: Payload, household_id: str) -> Envelope[Any]:
    return new_event(
        payload, household_id=household_id, source="risk", correlation_id="c", clock=SystemClock()
    )


def opened(case_id: str, submission_id: str | None) -> CaseOpened:
    return CaseOpened(
        case_id=case_id, village_code=VILLAGE, risk_types=["illness"], channel="app",
        opened_at=NOW, deadline=NOW + timedelta(days=15), submission_id=submission_id,
    )  # fmt: skip


def green_channel(case_id: str, submission_ids: list[str] | None = None) -> GreenChannelOpened:
    return GreenChannelOpened(
        case_id=case_id, village_code=VILLAGE, risk_types=["illness"],
        provisional_measures=["medical_assistance"], paperwork_due=NOW, reasons=[],
        submission_ids=submission_ids,
    )  # fmt: skip


def identified(case_id: str, green: bool = False) -> HouseholdIdentified:
    return HouseholdIdentified(
        case_id=case_id, village_code=VILLAGE, kind="sudden", risk_types=["illness"],
        reasons=[], green_channel=green,
    )  # fmt: skip


def rejected(case_id: str, rolled_back: bool = False) -> CaseRejected:
    return CaseRejected(
        case_id=case_id, village_code=VILLAGE, step="county_approval", reason="收入超过监测标准",
        actor="county-1", green_channel_rolled_back=rolled_back,
    )  # fmt: skip


async def submit(http: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    answer = await http.post("/v1/declarations", json=declaration(**changes), headers=APP)
    assert answer.status_code == 202, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def handle(app: FastAPI, *events: Envelope[Any]) -> None:
    """One run of case events, as the consumer hands them over in one transaction."""
    async with app.state.runtime.uow() as uow:
        await handlers.on_case_events(uow=uow, events=list(events))


async def status_of(http: httpx.AsyncClient, accepted: dict[str, Any]) -> dict[str, Any]:
    return (await http.get(accepted["status_url"], headers=APP)).json()  # type: ignore[no-any-return]


async def test_the_farmer_sees_identification_and_rejection_with_its_reason_over_kafka(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The consumer follows the outcome events: a case event names no submission, so every
    submission linked to the case gets it (the declaration and the one merged into it)."""
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        first = await submit(http)
        merged = await submit(http, phone="13900000002")
        other = await submit(http, phone="13900000003")
        settings = app.state.runtime.settings
        producer = make_producer(settings)
        await producer.start()
        try:
            join = CaseMerged(
                case_id="case-1", risk_types=["illness"], submission_id=merged["submission_id"]
            )
            events = [
                case_event(opened("case-1", first["submission_id"]), first["household_id"]),
                case_event(join, first["household_id"]),
                case_event(green_channel("case-1"), first["household_id"]),
                case_event(opened("case-2", other["submission_id"]), other["household_id"]),
                case_event(rejected("case-2"), other["household_id"]),
            ]
            for event in events:
                await producer.send(
                    settings.topic("cases"), event.to_bytes(), key=event.household_id.encode()
                )
            await producer.flush()
            gc = await wait_status(http, first["status_url"], "green_channel", field="stage")
            assert gc["green_channel"] == "opened" and gc["outcome"] is None
            rejection = await wait_status(http, other["status_url"], "rejected", field="stage")
            approval = case_event(identified("case-1", green=True), first["household_id"])
            await producer.send_and_wait(
                settings.topic("cases"), approval.to_bytes(), key=first["household_id"].encode()
            )
        finally:
            await producer.stop()
        done = await wait_status(http, first["status_url"], "identified", field="stage")
        also = await status_of(http, merged)
        official = (await http.get(other["status_url"], headers=token("township"))).json()
        openapi = (await http.get("/openapi.json")).json()
    assert rejection["outcome"] == "rejected"
    assert rejection["outcome_reason"] == "收入超过监测标准"
    assert rejection["decided_at"] is not None and rejection["case_id"] == "case-2"
    assert official["outcome_reason"] == "收入超过监测标准"
    for status in (done, also):
        assert status["outcome"] == "identified" and status["monitoring_kind"] == "sudden"
        assert status["case_id"] == "case-1" and status["green_channel"] == "opened"
        assert status["decided_at"] is not None
    read = openapi["components"]["schemas"]["SubmissionRead"]["properties"]
    assert {"outcome", "outcome_reason", "green_channel", "decided_at"} <= set(read)
    stages = read["stage"]["enum"]
    assert {"green_channel", "identified", "rejected", "already_monitored"} <= set(stages)


async def test_an_outcome_is_never_overwritten_by_an_earlier_stage(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        accepted = await submit(http)
        sid, home = accepted["submission_id"], accepted["household_id"]
        # an outcome for a case no submission is linked to yet changes nothing
        await handle(app, case_event(rejected("case-9"), home))
        assert (await status_of(http, accepted))["outcome"] is None
        await handle(
            app,
            case_event(opened("case-9", sid), home),
            case_event(green_channel("case-9"), home),  # in the same run, after the link
            case_event(rejected("case-9", rolled_back=True), home),
        )
        decided = await status_of(http, accepted)
        assert decided["stage"] == "rejected" and decided["green_channel"] == "rolled_back"
        # redelivered or late earlier events, and a second decision, leave it as it is
        monitored = MonitoredHouseholdReassessed(
            village_code=VILLAGE, risk_types=[], new_risk_types=[], channel="app",
            submission_id=sid,
        )  # fmt: skip
        await handle(
            app,
            case_event(opened("case-9", sid), home),
            case_event(CaseMerged(case_id="case-10", risk_types=[], submission_id=sid), home),
            case_event(green_channel("case-9"), home),
            case_event(identified("case-9"), home),
            case_event(monitored, home),
        )
        assert await status_of(http, accepted) == decided
        assert decided["case_id"] == "case-9"
        assert decided["outcome_reason"] == "收入超过监测标准"


async def test_a_run_of_green_channels_keeps_the_order_of_the_links_around_it(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A feed opens thousands of cases, nearly all through the green channel and without a
    submission: their green channels go in one statement, but a declaration that joins a case
    after its green channel opened still reads "merged", as it would one event at a time."""
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        first, later = await submit(http), await submit(http)
        home = first["household_id"]
        feed_cases = [f"feed-{n}" for n in range(50)]
        await handle(
            app,
            case_event(opened("case-a", first["submission_id"]), home),
            *(case_event(opened(c, None), f"hh-{c}") for c in feed_cases[:25]),
            case_event(green_channel("case-a"), home),
            *(case_event(green_channel(c), f"hh-{c}") for c in feed_cases[:25]),
            # joins case-a after its green channel opened
            case_event(
                CaseMerged(case_id="case-a", risk_types=[], submission_id=later["submission_id"]),
                home,
            ),
            *(case_event(green_channel(c), f"hh-{c}") for c in feed_cases[25:]),
        )
        assert (await status_of(http, first))["stage"] == "green_channel"
        joined = await status_of(http, later)
        assert (joined["stage"], joined["case_id"]) == ("case_merged", "case-a")
        # a later green channel of the same case moves it on, as one event at a time would
        await handle(app, case_event(green_channel("case-a"), home))
        assert (await status_of(http, later))["stage"] == "green_channel"
        # risk says which submissions a case opening with its green channel has: none for a
        # feed's case, which intake then passes over without a statement
        third = await submit(http)
        await handle(
            app,
            case_event(opened("case-b", third["submission_id"]), home),
            case_event(green_channel("case-b", submission_ids=[]), home),
        )
        assert (await status_of(http, third))["stage"] == "case_opened"
        await handle(
            app, case_event(green_channel("case-b", submission_ids=[third["submission_id"]]), home)
        )
        assert (await status_of(http, third))["stage"] == "green_channel"


async def test_a_declaration_about_a_monitored_household_reaches_a_final_stage(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """rules §4 channel 4: no case is opened; the submitter learns the household is monitored
    already, with the risk types it brought that were not identified and the green channel."""
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        plain = await submit(http)
        new_risk = await submit(http, phone="13900000002")
        green = (
            await http.post("/v1/cadre-reports", json=cadre_report(), headers=token("village"))
        ).json()

        def reassessed(accepted: dict[str, Any], level: Any, new: list[str]) -> Envelope[Any]:
            payload = MonitoredHouseholdReassessed(
                village_code=VILLAGE, risk_types=["illness", *new], new_risk_types=new,
                channel="app", level=level, submission_id=accepted["submission_id"],
                provisional_measures=["temporary_relief"] if level == "green_channel" else [],
            )  # fmt: skip
            return case_event(payload, accepted["household_id"])

        await handle(
            app,
            reassessed(plain, None, []),
            reassessed(new_risk, "new_risk", ["disaster"]),
            reassessed(green, "green_channel", ["disaster"]),
        )
        statuses = [await status_of(http, a) for a in (plain, new_risk, green)]
    for status in statuses:
        assert status["stage"] == status["outcome"] == "already_monitored"
        assert status["case_id"] is None and status["decided_at"] is not None
    assert [s["new_risk_types"] for s in statuses] == [[], ["disaster"], ["disaster"]]
    assert [s["green_channel"] for s in statuses] == [None, None, "opened"]
    assert statuses[2]["kind"] == "cadre_report"
