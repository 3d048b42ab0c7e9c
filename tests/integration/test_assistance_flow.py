"""Assistance on real Kafka and PostgreSQL: identified household in -> plan, cadre, events out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

import services.assistance
from services.assistance.app import consumer_spec
from services.assistance.config import AssistanceSettings
from services.assistance.models import (
    measure_history,
    measures,
    metadata,
    plans,
    responsibilities,
)
from services.assistance.roster import register_cadre
from services.assistance.schemas import CadreIn
from shared.clock import SystemClock
from shared.events import (
    CaseOpened,
    Envelope,
    GreenChannelOpened,
    HouseholdIdentified,
    Member,
    MonitoredHouseholdReassessed,
    Reason,
    decode,
    new_event,
)
from shared.kafka import EventConsumer, ensure_topics
from shared.migrations import upgrade
from shared.service import Runtime
from tests.support import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
VILLAGE = "530102001001"
HOUSEHOLD = "hh-assist-1"


@pytest.fixture
async def runtime(kafka_bootstrap: str, pg_url: str, topic_prefix: str) -> AsyncIterator[Runtime]:
    """The assistance runtime on a fresh database and fresh topics, consumers not started."""
    settings = AssistanceSettings(
        database_url=pg_url, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix,
        consumer_retry_backoff_seconds=0.01,
    )  # fmt: skip
    rt = Runtime(
        settings=settings, metadata=metadata, service_dir=Path(services.assistance.__file__).parent
    )
    await upgrade(settings.database_url, rt.service_dir)
    await ensure_topics(settings, [settings.topic(t) for t in ("cases", "assistance")])
    yield rt
    await rt.engine.dispose()


def _identified() -> HouseholdIdentified:
    return HouseholdIdentified(
        case_id="case-1", village_code=VILLAGE, kind="sudden", risk_types=["illness", "accident"],
        reasons=[Reason(rule="rules §2.3", detail="medical spending")], per_capita_income=9000,
        green_channel=True,
        members=[
            Member(person_id_hash="p-worker", person_id_masked="5301***01", age=42),
            Member(person_id_hash="p-sick", person_id_masked="5301***02", age=70,
                   labour_capacity="none", serious_illness=True),
        ],
    )  # fmt: skip


async def test_identified_household_gets_one_plan_one_cadre_and_events_once(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    settings = runtime.settings
    assert isinstance(settings, AssistanceSettings)
    async with runtime.uow() as uow:
        cadre = CadreIn(
            cadre_id="c-1", name="李明", rank="section", township_code=VILLAGE[:9],
            contacts={"webhook": "http://127.0.0.1:9/hook", "sms": "13800000000"},
        )  # fmt: skip
        assert await register_cadre(uow, cadre=cadre, actor="test", settings=settings) == "created"
    clock = SystemClock()
    green = new_event(
        GreenChannelOpened(
            case_id="case-1", village_code=VILLAGE, risk_types=["illness", "accident"],
            provisional_measures=["temporary_assistance", "medical_aid"],
            paperwork_due=datetime.now(UTC) + timedelta(days=14), reasons=[],
        ),
        household_id=HOUSEHOLD, source="risk", correlation_id="sub-1", clock=clock,
    )  # fmt: skip
    identified = new_event(
        _identified(), household_id=HOUSEHOLD, source="risk", correlation_id="sub-1", clock=clock
    )
    # the last one is a redelivery
    await _deliver(runtime, producer, [green, identified, identified], batch=False)

    async with runtime.uow() as uow:
        plan_rows = (await uow.execute(select(plans))).all()
        measure_rows = (await uow.execute(select(measures).order_by(measures.c.position))).all()
        cadres_held = (await uow.execute(select(responsibilities.c.cadre_id))).scalars().all()
    assert len(plan_rows) == 1 and plan_rows[0].status == "active"
    # rules §6.3: development first; green-channel help is not assigned twice (rules §6.2)
    assert [(m.code, m.person_id_hash) for m in measure_rows] == [
        ("employment_placement", "p-worker"),
        ("temporary_assistance", None),
        ("medical_aid", None),
    ]
    assert all(m.reason for m in measure_rows)
    assert list(cadres_held) == ["c-1"]

    await runtime.relay.publish_pending(producer)
    records = await read_topic(settings.kafka_bootstrap, settings.topic("assistance"), expect=7)
    events = [decode(r.value) for r in records]
    kinds = [e.event_type for e in events]
    assert kinds.count("CadreRegistered") == 1
    assert kinds.count("PlanCreated") == 2  # provisional at once, then the identified plan
    assert kinds.count("MeasureAssigned") == 3
    assert kinds.count("CadreAssigned") == 1
    registered = next(e for e in events if e.event_type == "CadreRegistered")
    assert registered.payload.contacts["sms"] == "13800000000"
    assigned = next(e for e in events if e.event_type == "CadreAssigned")
    assert (assigned.household_id, assigned.payload.cadre_id) == (HOUSEHOLD, "c-1")
    assert assigned.correlation_id == "sub-1"
    # notify routes a plan to the responsible cadre, so the cadre is known before the plan
    assert kinds.index("CadreAssigned") < len(kinds) - 1 - kinds[::-1].index("PlanCreated")
    final_plan = [e for e in events if e.event_type == "PlanCreated"][-1]
    assert final_plan.payload.provisional is False
    assert final_plan.payload.measures == [m.code for m in measure_rows]
    async with runtime.uow() as uow:
        count = (await uow.execute(select(func.count()).select_from(measures))).scalar_one()
    assert count == 3, "the redelivered HouseholdIdentified must create nothing"


async def test_a_redelivered_reassessment_adds_its_measures_once(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """rules §4 channel 4 through the consumer: a monitoring object's green channel and new
    risk reach its plan once, however often Kafka delivers the event."""
    settings = runtime.settings
    assert isinstance(settings, AssistanceSettings)
    clock = SystemClock()
    identified = new_event(
        _identified(), household_id=HOUSEHOLD, source="risk", correlation_id="sub-1", clock=clock
    )
    reassessed = new_event(
        MonitoredHouseholdReassessed(
            village_code=VILLAGE, risk_types=["disaster", "housing_unsafe"],
            new_risk_types=["disaster", "housing_unsafe"], channel="cadre",
            level="green_channel", provisional_measures=["temporary_assistance", "medical_aid"],
            submission_id="sub-2",
        ),
        household_id=HOUSEHOLD, source="risk", correlation_id="sub-2", clock=clock,
    )  # fmt: skip
    # the last one is a redelivery
    await _deliver(runtime, producer, [identified, reassessed, reassessed], batch=True)

    async with runtime.uow() as uow:
        plan_rows = (await uow.execute(select(plans))).all()
        measure_rows = (await uow.execute(select(measures).order_by(measures.c.position))).all()
        sent = (await uow.execute(select(runtime.outbox.c.value))).scalars().all()
    assert len(plan_rows) == 1 and plan_rows[0].status == "active"
    assert plan_rows[0].risk_types == ["disaster", "accident", "illness", "housing_unsafe"]
    assert [(m.code, m.person_id_hash, m.provisional) for m in measure_rows] == [
        ("employment_placement", "p-worker", False),
        ("temporary_assistance", None, False),  # held: the green channel does not add it again
        ("dangerous_house_renovation", None, False),
        ("medical_aid", "p-sick", False),  # held: the sick member has it
    ]
    kinds = [decode(v).event_type for v in sent]
    assert kinds.count("MeasureAssigned") == 4 and kinds.count("PlanCreated") == 2


async def test_an_identification_after_a_reassessment_fills_the_plan_already_made(
    runtime: Runtime, producer: AIOKafkaProducer
) -> None:
    """rules §6.1, one plan per household: a reassessment that reached assistance before the
    household's identification (its plan was made under the event's id) is the plan the
    identification fills, not a second one beside it."""
    clock = SystemClock()
    reassessed = new_event(
        MonitoredHouseholdReassessed(
            village_code=VILLAGE, risk_types=["disaster"], new_risk_types=["disaster"],
            channel="cadre", level="green_channel",
            provisional_measures=["temporary_assistance"], submission_id="sub-2",
        ),
        household_id=HOUSEHOLD, source="risk", correlation_id="sub-2", clock=clock,
    )  # fmt: skip
    identified = new_event(
        _identified(), household_id=HOUSEHOLD, source="risk", correlation_id="sub-1", clock=clock
    )
    await _deliver(runtime, producer, [reassessed, identified, identified], batch=True)

    async with runtime.uow() as uow:
        plan_rows = (await uow.execute(select(plans))).all()
        measure_rows = (await uow.execute(select(measures).order_by(measures.c.position))).all()
    assert [(p.case_id, p.status) for p in plan_rows] == [("case-1", "active")]
    codes = [(m.code, m.person_id_hash) for m in measure_rows]
    assert codes.count(("temporary_assistance", None)) == 1
    assert ("employment_placement", "p-worker") in codes


async def _plans_and_measures(runtime: Runtime) -> tuple[list[tuple], list[tuple], list[str]]:
    """What a run left behind, without ids and times: plans, measures, outgoing event types."""
    outbox = runtime.outbox
    async with runtime.uow() as uow:
        plan_rows = (await uow.execute(select(plans).order_by(plans.c.case_id))).all()
        case_of = {p.id: p.case_id for p in plan_rows}
        measure_rows = (await uow.execute(select(measures))).all()
        sent = (await uow.execute(select(outbox.c.value).order_by(outbox.c.id))).scalars().all()
    return (
        [(p.case_id, p.household_id, p.status, p.measures, p.risk_types) for p in plan_rows],
        sorted(
            (case_of[m.plan_id], m.code, m.category, m.position, m.status, m.provisional)
            for m in measure_rows
        ),
        [f"{e.event_type}:{e.household_id}" for e in map(decode, sent)],
    )


async def test_a_run_of_openings_plans_exactly_as_the_events_one_by_one(
    runtime: Runtime, pg_url: str
) -> None:
    """rules §5.2, §6: the bulk path of a feed's openings leaves the plans, measures and events
    that handling each event in its own transaction leaves, duplicates and late events too."""
    clock = SystemClock()
    now = clock.now()

    def opened(case: str, risks: list[str]) -> Any:
        payload = CaseOpened(
            case_id=case, village_code=VILLAGE, risk_types=risks, channel="department",
            opened_at=now, deadline=now + timedelta(days=15),
        )  # fmt: skip
        return new_event(payload, household_id=f"hh-{case}", source="risk", correlation_id=case,
                         clock=clock)  # fmt: skip

    def green(case: str, codes: list[str]) -> Any:
        payload = GreenChannelOpened(
            case_id=case, village_code=VILLAGE, risk_types=["illness", "disaster"],
            provisional_measures=codes, paperwork_due=now + timedelta(days=14), reasons=[],
        )  # fmt: skip
        return new_event(payload, household_id=f"hh-{case}", source="risk", correlation_id=case,
                         clock=clock)  # fmt: skip

    events = [
        opened("a", ["illness"]),
        green("a", ["temporary_assistance", "medical_aid"]),
        green("b", ["medical_aid"]),  # no CaseOpened first
        opened("b", ["illness"]),  # late: the plan exists
        green("a", ["medical_aid", "temporary_assistance"]),  # nothing new: no PlanCreated
        opened("c", ["accident", "illness"]),
        green("b", ["temporary_assistance"]),  # adds one to an existing provisional plan
    ]
    spec = consumer_spec(runtime.settings)  # type: ignore[arg-type]
    for event in events:  # one by one: each its own transaction, the per-event handlers
        async with runtime.uow() as uow:
            await spec.handlers[event.event_type](uow=uow, event=event)
    one_by_one = await _plans_and_measures(runtime)
    async with runtime.uow() as uow:
        await uow.execute(runtime.outbox.delete())
        for table in (measure_history, measures, plans):
            await uow.execute(table.delete())
    async with runtime.uow() as uow:  # the consumer's run: one transaction, the bulk path
        await spec.batch_handler(uow=uow, events=events)  # type: ignore[misc]
    together = await _plans_and_measures(runtime)
    assert together == one_by_one
    plans_left, measures_left, sent = together
    assert [p[2] for p in plans_left] == ["provisional", "provisional", "pending"]
    assert [m[:2] for m in measures_left if m[0] == "b"] == [
        ("b", "medical_aid"),
        ("b", "temporary_assistance"),
    ]
    assert sent.count("PlanCreated:hh-a") == 2 and sent.count("PlanCreated:hh-b") == 2


async def _deliver(
    runtime: Runtime, producer: AIOKafkaProducer, events: list[Envelope[Any]], *, batch: bool
) -> None:
    """Send `events` to the cases topic and let assistance's consumer take every one of them
    (one event at a time, or in runs through its batch handler)."""
    settings = runtime.settings
    assert isinstance(settings, AssistanceSettings)
    topic = settings.topic("cases")
    for event in events:
        await producer.send_and_wait(topic, event.to_bytes(), key=HOUSEHOLD.encode())
    spec = consumer_spec(settings)
    consumer = EventConsumer(
        name=spec.name, topics=[topic], handlers=spec.handlers, uow_factory=runtime.uow,
        producer=producer, settings=settings,
        batch_handler=spec.batch_handler if batch else None,
    )  # fmt: skip
    await consumer.start()
    try:
        seen = 0
        deadline = asyncio.get_running_loop().time() + 30
        while seen < len(events) and asyncio.get_running_loop().time() < deadline:
            seen += await consumer.poll_once()
        assert seen == len(events)
        await consumer.commit_pending()
    finally:
        await consumer.close()
