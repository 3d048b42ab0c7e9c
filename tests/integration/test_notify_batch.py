"""Notify's batch path: a run of events in one transaction routes exactly as one by one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.notify import handlers
from services.notify.models import responsibilities
from shared.clock import FrozenClock
from shared.events import (
    CadreAssigned,
    CaseMerged,
    CaseOpened,
    Envelope,
    GreenChannelOpened,
    PlanCreated,
)
from shared.migrations import upgrade
from tests.conftest import new_database
from tests.integration.test_notify_escalation import (
    NOON_BEIJING,
    VILLAGE,
    Platform,
    Recorder,
    assigned,
    roster,
)

pytestmark = [pytest.mark.postgres]
OTHER_COUNTY_VILLAGE = "530202001001"


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


async def _platform(recorder: Recorder) -> Platform:
    p = Platform(await new_database(), recorder, FrozenClock(NOON_BEIJING))
    await upgrade(p.settings.database_url, p.runtime.service_dir)
    return p


def _events(p: Platform) -> list[Envelope[Any]]:
    """Cadres, assignments and routed events for several households and two counties; one
    household's CaseOpened comes before its CadreAssigned, another's after; a declaration
    that joined an open case (rules §4.10) and an ordinary merge."""

    def opened(household: str, village: str = VILLAGE) -> Envelope[Any]:
        return p.event(
            CaseOpened(
                case_id=f"case-{household}",
                village_code=village,
                risk_types=["illness"],
                channel="declaration",
                opened_at=NOON_BEIJING,
                deadline=NOON_BEIJING + timedelta(days=15),
            ),
            household,
        )

    green = p.event(
        GreenChannelOpened(
            case_id="case-g",
            village_code=VILLAGE,
            risk_types=["illness"],
            provisional_measures=["medical_aid"],
            paperwork_due=NOON_BEIJING + timedelta(days=14),
            reasons=[],
        ),
        "hh-g",
    )
    plan = p.event(
        PlanCreated(
            plan_id="plan-a", case_id="case-hh-a", village_code=VILLAGE, measures=["medical_aid"]
        ),
        "hh-a",
    )

    # rules §4.10: the merge that started the home-visit clock goes to the village cadre; an
    # ordinary merge (no level) to nobody
    def merged(household: str, village: str, started: bool) -> Envelope[Any]:
        return p.event(
            CaseMerged(
                case_id=f"case-{household}", risk_types=["illness"], village_code=village,
                home_visit_due=NOON_BEIJING + timedelta(days=2) if started else None,
                level="village" if started else None,
            ),
            household,
        )  # fmt: skip

    # hh-c's cadre changes within the run: the second assignment is the one kept
    reassigned = p.event(
        CadreAssigned(cadre_id="v1", case_id="case-hh-c", village_code=VILLAGE), "hh-c"
    )
    return [
        *roster(p, p.settings.webhook_url.rsplit("/", 1)[0]),
        opened("hh-a"),
        assigned(p, "hh-a"),
        assigned(p, "hh-b"),
        assigned(p, "hh-c"),
        opened("hh-b"),
        reassigned,
        green,
        plan,
        opened("hh-far", OTHER_COUNTY_VILLAGE),
        merged("hh-m", VILLAGE, started=True),
        merged("hh-n", VILLAGE, started=False),
    ]


async def _responsible(p: Platform) -> list[tuple[str, str]]:
    async with p.runtime.uow() as uow:
        rows = await uow.execute(
            select(responsibilities.c.household_id, responsibilities.c.cadre_id)
        )
        return sorted((r.household_id, r.cadre_id) for r in rows)


def _shape(rows: list[Any]) -> list[tuple[Any, ...]]:
    """What a recipient gets, without the per-row ids (ack links carry them: only whether
    there is one counts)."""

    def body(b: dict[str, Any]) -> tuple[Any, ...]:
        return (
            b["household_id"],
            b["event_type"],
            b["case_id"],
            b["priority"],
            b["ack_url"] is None,
        )

    return sorted(
        (r.event_type, r.household_id, r.recipient, r.recipient_level, r.channel, r.address,
         r.priority, r.status, r.next_attempt_at, body(r.body))
        for r in rows
    )  # fmt: skip


async def test_a_run_in_one_transaction_routes_like_one_event_at_a_time(
    recorder: Recorder,
) -> None:
    one_by_one, batched = await _platform(recorder), await _platform(recorder)
    try:
        events = _events(one_by_one)
        await one_by_one.feed(*events)
        woken: list[int] = []
        async with batched.runtime.uow() as uow:
            await handlers.on_events(
                uow=uow, events=events, settings=batched.settings, wake=lambda: woken.append(1)
            )
            assert woken == []  # not before the commit
        assert woken == [1]
        expected = _shape(await one_by_one.rows())
        got = _shape(await batched.rows())
        # rules §6.8: hh-a's plan reaches its responsible cadre, assigned earlier in the run
        assert ("PlanCreated", "hh-a", "cadre:r1", "responsible") in [r[:4] for r in got]
        assert [r[:4] for r in got if r[0] == "CaseMerged"] == [
            ("CaseMerged", "hh-m", "cadre:v1", "village")
        ]
        assert got == expected and len(got) >= 8
        # the run's assignments are stored as one by one, the later of two for one household
        kept = await _responsible(batched)
        assert kept == await _responsible(one_by_one)
        assert kept == [("hh-a", "r1"), ("hh-b", "r1"), ("hh-c", "v1")]

        # a redelivered run adds nothing: (event, recipient, channel) already has its row
        async with batched.runtime.uow() as uow:
            await handlers.on_events(uow=uow, events=events, settings=batched.settings)
        assert len(await batched.rows()) == len(got)

        # cases opened once the rosters exist: the run reads both counties' rosters at once
        later = [e for e in _events(one_by_one) if e.event_type in ("CaseOpened", "PlanCreated")]
        await one_by_one.feed(*later)
        async with batched.runtime.uow() as uow:
            await handlers.on_events(uow=uow, events=later, settings=batched.settings)
        again = _shape(await batched.rows())
        assert again == _shape(await one_by_one.rows()) and len(again) > len(got)
    finally:
        await one_by_one.runtime.engine.dispose()
        await batched.runtime.engine.dispose()


async def test_a_failed_run_wakes_nobody_and_leaves_nothing(recorder: Recorder) -> None:
    p = await _platform(recorder)
    try:
        woken: list[int] = []
        with pytest.raises(RuntimeError):
            async with p.runtime.uow() as uow:
                await handlers.on_events(
                    uow=uow, events=_events(p), settings=p.settings, wake=lambda: woken.append(1)
                )
                raise RuntimeError("the transaction fails after the handler")
        assert woken == [] and await p.rows() == []
    finally:
        await p.runtime.engine.dispose()


async def test_a_plan_with_no_cadre_yet_is_counted_not_notified(recorder: Recorder) -> None:
    from prometheus_client import REGISTRY

    def counted() -> float:
        name = "holdline_notify_no_recipient_total"
        return REGISTRY.get_sample_value(name, {"event_type": "PlanCreated"}) or 0.0

    p = await _platform(recorder)
    try:
        before = counted()
        # rules §6.8: a plan goes to the responsible cadre, and to nobody else when there is none
        plan = p.event(
            PlanCreated(
                plan_id="plan-z",
                case_id="case-hh-z",
                village_code=VILLAGE,
                measures=["medical_aid"],
            ),
            "hh-z",
        )
        async with p.runtime.uow() as uow:
            await handlers.on_events(uow=uow, events=[plan], settings=p.settings)
        assert await p.rows() == []
        assert counted() == before + 1
    finally:
        await p.runtime.engine.dispose()
