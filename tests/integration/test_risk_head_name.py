"""The household head's name on risk's events (schema 1.4, rules §4.13: names may be shown), so
notify's alerts can say whose household: the household row's name, the declarant's when the row
has none yet, None for a department record about a household nobody has named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from services.risk import handlers
from shared.events import DeclarationSubmitted, FeedRecordReceived
from tests.integration.test_risk_workflow_api import VILLAGE, Platform, risk_platform

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def risk(pg_url: str) -> AsyncIterator[Platform]:
    async with risk_platform(pg_url) as built:
        yield built


async def _declare(risk: Platform, household: str, name: str, medical: float) -> None:
    await risk.signal(
        handlers.on_declaration,
        DeclarationSubmitted(
            submission_id=f"s-{household}-{name}", declarant_name=name,
            declarant_id_masked="530102***********1", village_code=VILLAGE,
            risk_types=["illness"], medical_spending=medical,
        ),
        household,
    )  # fmt: skip


async def test_a_case_and_its_green_channel_merges_and_identification_name_the_head(
    risk: Platform,
) -> None:
    # the first declaration names the head: the case opens with its green channel (rules §5.1)
    await _declare(risk, "hh-n1", "张三", 30000)
    [opened] = await risk.events("CaseOpened")
    [green] = await risk.events("GreenChannelOpened")
    assert opened.payload.head_name == "张三" and green.payload.head_name == "张三"
    # another member declaring joins the case; the household keeps the head it knows
    await _declare(risk, "hh-n1", "张小红", 35000)
    [merged] = await risk.events("CaseMerged")
    assert merged.payload.head_name == "张三"

    case_id = await risk.open_case_id("hh-n1")
    for role, action, body in (
        ("village", "start_home_verification", {}),
        (
            "village",
            "complete_home_verification",
            {"signed_form": True, "per_capita_income": 5000, "annual_income": 15000},
        ),
        ("county", "complete_data_comparison", {}),
        ("village", "post_public_notice", {}),
    ):
        answer = await risk.act(case_id, role, action, **body)  # type: ignore[arg-type]
        assert answer.status_code == 200, answer.text
    risk.clock.advance(timedelta(days=risk.settings.public_notice_days))
    for role, action in (
        ("village", "complete_village_appraisal"),
        ("township", "approve_township_review"),
        ("county", "approve_county"),
    ):
        answer = await risk.act(case_id, role, action)  # type: ignore[arg-type]
        assert answer.status_code == 200, answer.text
    [identified] = await risk.events("HouseholdIdentified")
    assert identified.payload.head_name == "张三"

    # key-object tracking (rules §4 channel 4): the monitored household's news names it too
    await _declare(risk, "hh-n1", "张三", 60000)
    [reassessed] = await risk.events("MonitoredHouseholdReassessed")
    assert reassessed.payload.head_name == "张三"


async def test_a_department_record_about_a_household_nobody_named_names_nobody(
    risk: Platform,
) -> None:
    await risk.signal(
        handlers.on_feed_record,
        FeedRecordReceived(
            batch_id="b", department="medical_insurance", line=1, person_id_hash="p9",
            person_id_masked="530102***********9", village_code=VILLAGE,
            recorded_on=date(2026, 3, 1), facts={"out_of_pocket_spending": 30000},
        ),
        "hh-n2",
    )  # fmt: skip
    [opened] = await risk.events("CaseOpened")
    assert opened.household_id == "hh-n2" and opened.payload.head_name is None
    # the farmer then declares: the row learns the name, and the merge carries it
    await _declare(risk, "hh-n2", "李四", 30000)
    [merged] = await risk.events("CaseMerged")
    assert merged.payload.head_name == "李四"
