"""Officials learn when a case waits for them, and the village learns its outcome: the events
risk publishes while cases are walked through rules §4 and §7.2 by its API, routed by notify
(rules §4.5-§4.7, §7.2), and what notify makes of a monitoring object's new signal (rules §4
channel 4, §5.2, §6.2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.notify import handlers
from services.risk import monitoring
from services.risk.models import outbox as risk_outbox
from shared.clock import FrozenClock
from shared.events import (
    CadreAssigned,
    Envelope,
    IncomeUpdated,
    MonitoredHouseholdReassessed,
    decode,
)
from shared.migrations import upgrade
from tests.conftest import new_database
from tests.integration.test_notify_escalation import (
    NOON_BEIJING,
    VILLAGE,
    Platform,
    Recorder,
    roster,
)
from tests.integration.test_risk_workflow_api import ELDER, WORKER, risk_platform

pytestmark = [pytest.mark.postgres]
# what risk publishes on `cases` that notify reads (CaseMerged, CaseDeadlineApproaching...
# have their own tests)
CASEWORK = {
    "CaseOpened", "CaseStepCompleted", "HouseholdIdentified", "CaseRejected", "RiskEliminated",
}  # fmt: skip


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


@pytest.fixture
async def notify(recorder: Recorder) -> AsyncIterator[Platform]:
    p = Platform(await new_database(), recorder, FrozenClock(NOON_BEIJING))
    await upgrade(p.settings.database_url, p.runtime.service_dir)
    yield p
    await p.runtime.engine.dispose()


async def _casework() -> list[Envelope[Any]]:
    """hh-1 identified through every step of rules §4, then proposed for elimination and
    eliminated through rules §7.2; hh-2 rejected at township review (rules §4.7)."""
    async with risk_platform(await new_database()) as risk:
        await risk.identified_and_helped("hh-1", [WORKER, ELDER])
        await risk.register("hh-2", [WORKER, ELDER], income=5200)
        await risk.declare("hh-2", ["illness"], medical_spending=3000)
        case_id = await risk.open_case_id("hh-2")
        for role, action, body in (
            ("village", "start_home_verification", {}),
            ("village", "complete_home_verification", {"signed_form": True}),
            ("county", "complete_data_comparison", {}),
            ("village", "post_public_notice", {}),
        ):
            assert (await risk.act(case_id, role, action, **body)).status_code == 200  # type: ignore[arg-type]
        risk.clock.advance(timedelta(days=risk.settings.public_notice_days))
        assert (await risk.act(case_id, "village", "complete_village_appraisal")).status_code == 200
        refused = await risk.act(case_id, "township", "reject", reason="收入核实后高于监测范围")
        assert refused.status_code == 200, refused.text

        # rules §7.1: six months later hh-1's income proposes elimination; rules §7.2
        risk.clock.advance(timedelta(days=184))
        await risk.signal(
            monitoring.on_income_updated,
            IncomeUpdated(
                per_capita_income=9600, recorded_on=risk.clock.now().date(), source="visit"
            ),
            "hh-1",
        )
        [proposal] = [
            e for e in await risk.events("CaseStepCompleted")
            if e.payload.step == "elimination_proposed"
        ]  # fmt: skip
        case_id = proposal.payload.case_id
        for action in ("complete_home_verification", "post_public_notice"):
            assert (await risk.act(case_id, "village", action)).status_code == 200
        risk.clock.advance(timedelta(days=5))
        for role, action in (
            ("village", "complete_village_appraisal"),
            ("township", "approve_township_review"),
            ("county", "approve_county"),
        ):
            assert (await risk.act(case_id, role, action)).status_code == 200, action  # type: ignore[arg-type]
        async with risk.runtime.uow() as uow:
            rows = await uow.execute(select(risk_outbox.c.value).order_by(risk_outbox.c.id))
            published = [decode(v) for v in rows.scalars()]
    return [e for e in published if e.event_type in CASEWORK]


async def test_each_step_tells_whoever_must_act_next_and_the_outcome_reaches_the_village(
    notify: Platform, recorder: Recorder
) -> None:
    p = notify
    casework = await _casework()
    # assistance assigns hh-1's responsible cadre when it is identified (rules §6.8)
    at = next(i for i, e in enumerate(casework) if e.event_type == "HouseholdIdentified")
    assigned = p.event(CadreAssigned(cadre_id="r1", case_id="c-1", village_code=VILLAGE), "hh-1")
    events = [*roster(p, recorder.base), *casework[: at + 1], assigned, *casework[at + 1 :]]
    async with p.runtime.uow() as uow:
        await handlers.on_events(uow=uow, events=events, settings=p.settings)
    rows = await p.rows()
    order = {str(e.event_id): i for i, e in enumerate(events)}  # the clock stands still
    got = [
        (r.household_id, r.event_type, r.recipient, r.priority, r.body["text"])
        for r in sorted(rows, key=lambda r: (r.household_id, order[r.source_event_id], r.recipient))
        if r.event_type != "CadreAssigned"
    ]
    assert [g[:4] for g in got] == [
        ("hh-1", "CaseOpened", "cadre:v1", "normal"),
        # rules §4.5: after the village appraisal the township reviews, then the county decides
        ("hh-1", "CaseStepCompleted", "cadre:t1", "normal"),
        ("hh-1", "CaseStepCompleted", "cadre:k1", "normal"),
        # rules §4.6: the village tells the household it is a monitoring object now
        ("hh-1", "HouseholdIdentified", "cadre:v1", "normal"),
        # rules §7.2: risk proposes an elimination; the village makes the home check
        ("hh-1", "CaseStepCompleted", "cadre:v1", "normal"),
        ("hh-1", "CaseStepCompleted", "cadre:t1", "normal"),
        ("hh-1", "CaseStepCompleted", "cadre:k1", "normal"),
        # rules §7: the village and the responsible cadre, in their digests
        ("hh-1", "RiskEliminated", "cadre:r1", "low"),
        ("hh-1", "RiskEliminated", "cadre:v1", "low"),
        ("hh-2", "CaseOpened", "cadre:v1", "normal"),
        ("hh-2", "CaseStepCompleted", "cadre:t1", "normal"),
        # rules §4.7: rejected at township review, with its reason; the county is not asked
        ("hh-2", "CaseRejected", "cadre:v1", "normal"),
    ]
    texts = {(g[0], g[1], g[2]): g[4] for g in got}
    # every message names the family (its declarant, from risk's CaseOpened, rules §4.13),
    # the steps' and outcomes' too, whose events carry no name
    assert all("王秀英户" in g[4] and "hh-" not in g[4] for g in got), got
    assert texts[("hh-1", "CaseStepCompleted", "cadre:v1")] == (
        "【防返贫】监测户王秀英户拟风险消除，请尽快入户核实后组织村级评议"
    )
    # rules §4.5, §7.2: the township and the county read which decision awaits them
    asked = [g[4] for g in got if g[1] == "CaseStepCompleted" and g[2] in ("cadre:t1", "cadre:k1")]
    assert asked == [
        "【防返贫】农户王秀英户已完成村级评议，待乡镇审核是否认定为监测对象，请尽快办理",
        "【防返贫】农户王秀英户已通过乡镇审核，待县级审定是否认定为监测对象，请尽快办理",
        "【防返贫】监测户王秀英户已完成村级评议，待乡镇审核是否风险消除，请尽快办理",
        "【防返贫】监测户王秀英户已通过乡镇审核，待县级审定是否风险消除，请尽快办理",
        "【防返贫】农户王秀英户已完成村级评议，待乡镇审核是否认定为监测对象，请尽快办理",
    ]
    assert texts[("hh-2", "CaseRejected", "cadre:v1")] == (
        "【防返贫】农户王秀英户未认定为监测对象：收入核实后高于监测范围。请尽快告知农户"
    )
    assert texts[("hh-1", "HouseholdIdentified", "cadre:v1")] == (
        "【防返贫】农户王秀英户已认定为监测对象（因病），请尽快告知农户"
    )

    # exactly once per (event, recipient, channel): the same run again adds nothing
    async with p.runtime.uow() as uow:
        await handlers.on_events(uow=uow, events=events, settings=p.settings)
    await p.feed(*casework)
    assert len(await p.rows()) == len(rows)


async def test_a_case_waiting_for_a_township_nobody_covers_reaches_the_county_office(
    notify: Platform,
) -> None:
    """Without a roster, a case waiting for review still reaches someone; an outcome the
    county decided itself does not come back to its office."""
    p = notify
    casework = await _casework()
    await p.feed(*casework)
    rows = await p.rows()
    waiting = [e for e in casework if e.event_type in ("CaseOpened", "CaseStepCompleted")]
    asks = [e for e in waiting if e.event_type == "CaseOpened" or e.payload.next_steps]
    assert {r.recipient for r in rows} == {"office:county"}
    assert sorted(r.event_type for r in rows) == sorted(
        ["CaseOpened"] * 2 + ["CaseStepCompleted"] * 6
    )
    assert {r.source_event_id for r in rows} <= {str(e.event_id) for e in asks}


def _reassessed(p: Platform, household: str, level: str | None) -> Envelope[Any]:
    return p.event(
        MonitoredHouseholdReassessed(
            village_code=VILLAGE,
            risk_types=["illness", "disaster"],
            new_risk_types=["disaster"],
            channel="app",
            level=level,  # type: ignore[arg-type]
            provisional_measures=["medical_aid", "temporary_assistance"]
            if level == "green_channel"
            else [],
            submission_id=f"s-{household}",
        ),
        household,
    )


async def test_a_monitoring_objects_new_signal_alerts_as_its_level_says(
    notify: Platform, recorder: Recorder
) -> None:
    p = notify
    cadres = roster(p, recorder.base)
    assigned = [
        p.event(CadreAssigned(cadre_id="r1", case_id=f"c-{h}", village_code=VILLAGE), h)
        for h in ("hh-g", "hh-n", "hh-0")
    ]
    reassessed = [
        _reassessed(p, "hh-g", "green_channel"),
        _reassessed(p, "hh-n", "new_risk"),
        _reassessed(p, "hh-0", None),
    ]
    async with p.runtime.uow() as uow:
        await handlers.on_events(uow=uow, events=[*cadres, *assigned], settings=p.settings)
    async with p.runtime.uow() as uow:
        await handlers.on_events(uow=uow, events=reassessed, settings=p.settings)
    rows = [r for r in await p.rows() if r.event_type == "MonitoredHouseholdReassessed"]
    got = sorted((r.household_id, r.recipient, r.priority) for r in rows)
    assert got == [
        # rules §5.2: everybody concerned, at once, each with an acknowledgement link
        ("hh-g", "cadre:k1", "urgent"),
        ("hh-g", "cadre:r1", "urgent"),
        ("hh-g", "cadre:t1", "urgent"),
        # rules §6.2: the responsible cadre fills the new gap
        ("hh-n", "cadre:r1", "normal"),
    ]
    urgent = [r for r in rows if r.priority == "urgent"]
    base = p.settings.public_base_url
    assert all(r.body["ack_url"].startswith(f"{base}/v1/acks/") for r in urgent)
    text = urgent[0].body["text"]
    assert text.startswith(
        "【紧急】监测户hh-g因病、因灾符合绿色通道，请立即给予临时救助：医疗救助等 确认:"
    )
    [new_risk] = [r for r in rows if r.household_id == "hh-n"]
    assert new_risk.body["text"] == "【防返贫】监测户hh-n新增因灾风险，请尽快入户并补充帮扶措施"
