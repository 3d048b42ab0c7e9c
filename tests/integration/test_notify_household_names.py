"""Alerts name the family (rules §4.13: names may be shown): notify remembers the head's name a
risk event tells (schema 1.4) and names the household with it in every later message about it,
those of assistance's events, escalations and digests too; the webhook body keeps the
household id and adds `household_name`. Without a name, the id as before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select

from services.notify import digests, escalation, handlers
from services.notify.models import household_names
from shared.events import (
    CaseMerged,
    CaseOpened,
    Envelope,
    GreenChannelOpened,
    PlanCreated,
    VisitOverdue,
)
from tests.integration import test_notify_escalation as escalation_tests
from tests.integration.test_notify_escalation import (
    VILLAGE,
    Platform,
    Recorder,
    assigned,
    roster,
)

pytestmark = [pytest.mark.postgres]


# test_notify_escalation's: a webhook receiver, notify at noon in Beijing
recorder = escalation_tests.recorder
platform = escalation_tests.platform


def opened(p: Platform, household: str, head_name: str | None) -> Envelope[Any]:
    now = p.clock.now()
    return p.event(
        CaseOpened(
            case_id=f"case-{household}", village_code=VILLAGE, risk_types=["illness"],
            channel="app", opened_at=now, deadline=now + timedelta(days=15),
            home_visit_due=now + timedelta(days=2), head_name=head_name,
        ),
        household,
    )  # fmt: skip


def plan(p: Platform, household: str) -> Envelope[Any]:
    return p.event(
        PlanCreated(
            plan_id=str(uuid4()), case_id=f"case-{household}", village_code=VILLAGE,
            measures=["medical_aid"], case_deadline=p.clock.now() + timedelta(days=10),
        ),
        household,
    )  # fmt: skip


def overdue(p: Platform, household: str) -> Envelope[Any]:
    return p.event(
        VisitOverdue(cadre_id="r1", village_code=VILLAGE, due_on=p.clock.now().date()), household
    )


async def _names(p: Platform) -> dict[str, str]:
    async with p.runtime.uow() as uow:
        rows = await uow.execute(select(household_names))
        return {r.household_id: r.head_name for r in rows}


async def test_a_name_risk_told_names_the_family_in_assistances_later_alerts(
    platform: Platform, recorder: Recorder
) -> None:
    p = platform
    case = opened(p, "hh-zs", "张三")
    await p.feed(*roster(p, recorder.base), case)
    await p.deliver()
    [village] = recorder.take()
    assert (
        village["text"] == "【防返贫】农户张三户报因病风险，请3月4日前入户核实，3月17日前完成认定"
    )
    assert village["household_id"] == "hh-zs" and village["household_name"] == "张三"
    # redelivered, in a run: the name is written once, the same
    async with p.runtime.uow() as uow:
        await handlers.on_events(uow=uow, events=[case], settings=p.settings)
    assert await _names(p) == {"hh-zs": "张三"}

    # days later, in other transactions: assistance's events carry no name; notify knows it
    p.clock.advance(timedelta(days=3))
    await p.feed(assigned(p, "hh-zs"), overdue(p, "hh-zs"))
    await p.deliver()
    [visit] = recorder.take()
    assert visit["path"] == "/r1" and visit["event_type"] == "VisitOverdue"
    assert visit["text"] == "【防返贫】农户张三户应于3月5日前走访，已逾期，请尽快入户"
    assert visit["household_id"] == "hh-zs" and visit["household_name"] == "张三"

    # a run of a plan and an assignment: low priority, they leave as one digest naming them
    async with p.runtime.uow() as uow:
        await handlers.on_events(uow=uow, events=[plan(p, "hh-zs")], settings=p.settings)
    p.clock.advance(timedelta(minutes=61))
    assert await digests.release_digests(uow_factory=p.runtime.uow, settings=p.settings) == 2
    await p.deliver()
    [digest] = recorder.take()
    assert digest["event_type"] == "Digest" and "农户张三户" in digest["text"]
    assert "hh-zs" not in digest["text"] and digest["household_name"] == "张三"
    assert digest["households"] == ["hh-zs"]


async def test_the_latest_name_wins_and_an_escalation_names_it(
    platform: Platform, recorder: Recorder
) -> None:
    p = platform
    # a department record opened the case: no name yet, the id is shown
    await p.feed(*roster(p, recorder.base), opened(p, "hh-li", None), assigned(p, "hh-li"))
    await p.deliver()
    [first] = [c for c in recorder.take() if c.get("event_type") == "CaseOpened"]
    assert "hh-li" in first["text"] and "household_name" not in first
    assert await _names(p) == {}
    # the farmer's declaration joined it: risk's merge names the head (no route: nobody told)
    merged = p.event(
        CaseMerged(case_id="case-hh-li", risk_types=["illness"], head_name="李四"), "hh-li"
    )
    await p.feed(merged)
    assert await _names(p) == {"hh-li": "李四"}
    green = p.event(
        GreenChannelOpened(
            case_id="case-hh-li", village_code=VILLAGE, risk_types=["illness"],
            provisional_measures=["medical_aid"], paperwork_due=p.clock.now() + timedelta(days=14),
            reasons=[],
        ),
        "hh-li",
    )  # fmt: skip
    await p.feed(green)
    await p.deliver()
    urgent = recorder.take()
    assert urgent and all("李四户" in _text(c) and "hh-li" not in _text(c) for c in urgent)
    # a later event with another name (the head changed): the latest one is used from now on
    await p.feed(
        p.event(
            CaseMerged(case_id="case-hh-li", risk_types=["illness"], head_name="李小四"), "hh-li"
        )
    )
    p.clock.advance(timedelta(minutes=121))
    assert await escalation.escalate_due(uow_factory=p.runtime.uow, settings=p.settings) > 0
    await p.deliver()
    up = [c for c in recorder.take() if "无人确认" in _text(c)]
    assert up and all("李小四户" in _text(c) for c in up), up
    assert all(c["household_name"] == "李小四" for c in up if "household_name" in c)


async def test_an_id_or_phone_typed_as_a_name_is_masked_in_text_and_body(
    platform: Platform, recorder: Recorder
) -> None:
    p = platform
    await p.feed(*roster(p, recorder.base), opened(p, "hh-bad", "王五13812345678"))
    await p.deliver()
    [call] = recorder.take()
    assert "13812345678" not in str(call)
    assert (
        call["household_name"] == "王五138****5678" and "王五138****56…户" in call["text"]
    )  # cut to 12


def _text(call: dict[str, Any]) -> str:
    text = call.get("text")
    return text["content"] if isinstance(text, dict) else str(text)


async def test_a_name_told_again_is_not_written_again(platform: Platform) -> None:
    """Most risk events repeat the name already stored: the row stays as it was (no new row
    version); a changed name is written."""
    p = platform
    await p.feed(opened(p, "hh-same", "王五"))

    async def stored() -> tuple[str, object]:
        async with p.runtime.uow() as uow:
            row = (
                await uow.execute(
                    select(household_names).where(household_names.c.household_id == "hh-same")
                )
            ).one()
        return row.head_name, row.updated_at

    first = await stored()
    p.clock.advance(timedelta(days=1))
    await p.feed(opened(p, "hh-same", "王五"))
    assert await stored() == first
    p.clock.advance(timedelta(days=1))
    await p.feed(opened(p, "hh-same", "王老五"))
    name, updated = await stored()
    assert name == "王老五" and updated != first[1]
