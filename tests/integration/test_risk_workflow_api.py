"""The case workflow through the HTTP API on PostgreSQL: roles, jurisdiction, notice, history,
green channel, identification, ledger, elimination and rollback (rules §4, §5, §7)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.risk import handlers, monitoring
from services.risk import repository as repo
from services.risk.app import assistance_run, create_app
from services.risk.config import RiskSettings
from services.risk.models import cases, households, outbox
from services.risk.signal_batch import SignalBatch
from shared.auth import Role, mint_token
from shared.clock import FrozenClock
from shared.events import (
    DeclarationSubmitted,
    Envelope,
    FeedRecordReceived,
    IncomeUpdated,
    MeasureAssigned,
    MeasureCompleted,
    Member,
    Payload,
    RegistryRecordReceived,
    VisitRecorded,
    decode,
    new_event,
)
from shared.migrations import upgrade
from shared.service import Runtime

pytestmark = [pytest.mark.postgres]
TOWN = "530102001"
VILLAGE = TOWN + "001"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
WORKER = Member(person_id_hash="p1", person_id_masked="530102***********1", name="王秀英", age=35)
ELDER = Member(
    person_id_hash="p2", person_id_masked="530102***********2", name="王老汉", age=70,
    labour_capacity="none",
)  # fmt: skip


class Platform:
    """The risk app on a fresh database, a frozen clock and a token minter."""

    def __init__(self, runtime: Runtime, http: httpx.AsyncClient, clock: FrozenClock) -> None:
        self.runtime, self.http, self.clock = runtime, http, clock
        assert isinstance(runtime.settings, RiskSettings)
        self.settings: RiskSettings = runtime.settings

    def auth(self, role: Role, jurisdiction: str = TOWN) -> dict[str, str]:
        token = mint_token(
            subject=f"{role}-1", role=role, jurisdiction=jurisdiction,
            secret=self.settings.jwt_secret.get_secret_value(), clock=self.clock,
        )  # fmt: skip
        return {"Authorization": f"Bearer {token}"}

    async def signal(
        self, handler: Any, payload: Payload, household: str, at: datetime | None = None
    ) -> None:
        """`payload` handled as an event that happened `at` (by default, the clock's now)."""
        clock = FrozenClock(at) if at is not None else self.clock
        event = new_event(
            payload, household_id=household, source="test", correlation_id="c", clock=clock
        )
        async with self.runtime.uow() as uow:
            await handler(uow=uow, event=event, settings=self.settings)

    async def register(self, household: str, members: list[Member], income: float) -> None:
        await self.signal(
            handlers.on_registry_record,
            RegistryRecordReceived(
                submission_id="r", village_code=VILLAGE, baseline_status="formerly_poor",
                per_capita_income=income, members=members,
            ),
            household,
        )  # fmt: skip

    async def declare(
        self, household: str, risks: list[str], at: datetime | None = None, **amounts: float
    ) -> None:
        await self.signal(
            handlers.on_declaration,
            DeclarationSubmitted(
                submission_id=f"s-{household}", declarant_name="王秀英",
                declarant_id_masked="530102***********1", village_code=VILLAGE,
                risk_types=risks, **amounts,
            ),
            household,
            at,
        )  # fmt: skip

    async def events(self, event_type: str) -> list[Envelope[Any]]:
        async with self.runtime.uow() as uow:
            rows = (await uow.execute(select(outbox.c.value).order_by(outbox.c.id))).scalars()
            decoded = [decode(v) for v in rows]
        return [e for e in decoded if e.event_type == event_type]

    async def open_case_id(self, household: str) -> str:
        cases = (
            await self.http.get(
                "/v1/cases", params={"household_id": household}, headers=self.auth("village")
            )
        ).json()
        return str(next(c["case_id"] for c in cases if c["status"] == "open"))

    async def act(self, case_id: str, role: Role, action: str, **body: Any) -> httpx.Response:
        return await self.http.post(
            f"/v1/cases/{case_id}/actions", json={"action": action, **body}, headers=self.auth(role)
        )

    async def identified_and_helped(self, household: str, members: list[Member]) -> None:
        """Declared, identified through rules §4, then income above the line, a measure
        completed and a clear visit on the day: every rules §7.1 condition but the time
        passed, which the caller adds by advancing the clock."""
        await self.register(household, members, income=5200)
        await self.declare(household, ["illness"], medical_spending=3000)
        await self.identify(await self.open_case_id(household))
        identified_on = self.clock.now().date()
        for handler, payload in (
            (monitoring.on_income_updated, IncomeUpdated(
                per_capita_income=9500, recorded_on=identified_on, source="visit")),
            (monitoring.on_measure_completed, MeasureCompleted(
                measure_id=f"m-{household}", plan_id="p", code="medical_aid",
                completed_on=identified_on)),
            (monitoring.on_visit_recorded, VisitRecorded(
                visit_id=f"v-{household}", cadre_id="c1", visited_on=identified_on)),
        ):  # fmt: skip
            await self.signal(handler, payload, household)

    async def identify(self, case_id: str) -> dict[str, Any]:
        """Walk a case through every step of rules §4 with the right roles."""
        steps: list[tuple[Role, str, dict[str, Any]]] = [
            ("village", "start_home_verification", {}),
            ("village", "complete_home_verification", {"signed_form": True}),
            ("county", "complete_data_comparison", {}),
            ("village", "post_public_notice", {}),
        ]
        for role, action, body in steps:
            assert (await self.act(case_id, role, action, **body)).status_code == 200, action
        self.clock.advance(timedelta(days=self.settings.public_notice_days))
        for role, action in (
            ("village", "complete_village_appraisal"),
            ("township", "approve_township_review"),
            ("county", "approve_county"),
        ):
            answer = await self.act(case_id, role, action)  # type: ignore[arg-type]
            assert answer.status_code == 200, answer.text
        return dict(answer.json())


@asynccontextmanager
async def risk_platform(pg_url: str) -> AsyncIterator[Platform]:
    """The risk app on a fresh database at START, served in-process."""
    settings = RiskSettings(database_url=pg_url)
    clock = FrozenClock(START)
    app = create_app(settings, clock)
    runtime: Runtime = app.state.runtime
    await upgrade(pg_url, runtime.service_dir)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://risk"
        ) as http:
            yield Platform(runtime, http, clock)
    finally:
        await runtime.engine.dispose()


@pytest.fixture
async def platform(pg_url: str) -> AsyncIterator[Platform]:
    async with risk_platform(pg_url) as built:
        yield built


async def test_rules_4_full_identification_through_the_api(platform: Platform) -> None:
    await platform.register("hh-1", [WORKER, ELDER], income=5200)
    await platform.declare("hh-1", ["illness"], medical_spending=3000)
    case_id = await platform.open_case_id("hh-1")
    url = f"/v1/cases/{case_id}"

    assert (await platform.http.get(url)).status_code == 401
    foreign = await platform.http.get(url, headers=platform.auth("village", "530102002"))
    assert foreign.status_code == 403 and "village_code" in foreign.json()["detail"]
    detail = (await platform.http.get(url, headers=platform.auth("village"))).json()
    assert detail["stage"] == "risk_discovered"
    assert detail["home_visit_due"].startswith("2026-03-04")  # rules §4.10: 2 working days
    assert any(r["rule"] == "rules §2.1" and r["threshold"] == 8700 for r in detail["reasons"])

    wrong_role = await platform.act(case_id, "township", "start_home_verification")
    assert wrong_role.status_code == 403 and wrong_role.json()["detail"].startswith("role:")
    assert (await platform.act(case_id, "village", "start_home_verification")).status_code == 200
    unsigned = await platform.act(case_id, "village", "complete_home_verification")
    assert unsigned.status_code == 409 and unsigned.json()["detail"].startswith("signed_form:")
    assert (
        await platform.act(case_id, "village", "complete_home_verification", signed_form=True)
    ).status_code == 200
    assert (await platform.act(case_id, "village", "post_public_notice")).status_code == 200
    notice = await platform.http.get(f"{url}/public-notice", headers=platform.auth("village"))
    assert "王秀英" in notice.json()["text"] and "illness" not in notice.json()["text"]

    # rules §4.4: not before five days, and rules §4.3: not before data comparison
    platform.clock.advance(timedelta(days=4, hours=23))
    early = await platform.act(case_id, "village", "complete_village_appraisal")
    assert early.status_code == 409 and "public notice runs until" in early.json()["detail"]
    platform.clock.advance(timedelta(hours=1))
    uncompared = await platform.act(case_id, "village", "complete_village_appraisal")
    assert uncompared.status_code == 409 and "data comparison" in uncompared.json()["detail"]
    assert (await platform.act(case_id, "county", "complete_data_comparison")).status_code == 200
    for role, action in (
        ("village", "complete_village_appraisal"),
        ("township", "approve_township_review"),
        ("county", "approve_county"),
    ):
        assert (await platform.act(case_id, role, action)).status_code == 200, action  # type: ignore[arg-type]

    final = (await platform.http.get(url, headers=platform.auth("county"))).json()
    assert final["status"] == "identified" and final["kind"] == "unstable"
    assert [h["action"] for h in final["history"]] == [
        "open", "start_home_verification", "complete_home_verification", "post_public_notice",
        "complete_data_comparison", "complete_village_appraisal", "approve_township_review",
        "approve_county",
    ]  # fmt: skip
    assert all(h["actor"] and h["at"] for h in final["history"])
    [identified] = await platform.events("HouseholdIdentified")
    assert identified.payload.kind == "unstable" and identified.payload.risk_types == ["illness"]
    assert {r.rule for r in identified.payload.reasons} >= {"rules §2.1", "rules §1 unstable"}
    steps = await platform.events("CaseStepCompleted")
    assert len(steps) == 6
    # the township and the county are told which decision awaits them (schema 1.3)
    assert {e.payload.purpose for e in steps} == {"identification"}
    [review] = [e for e in steps if "approve_township_review" in e.payload.next_steps]
    assert review.payload.step == "complete_village_appraisal"

    ledger = await platform.http.get(
        "/v1/ledger", params={"kind": "unstable", "risk_type": "illness"},
        headers=platform.auth("county", "530102"),
    )  # fmt: skip
    assert [r["household_id"] for r in ledger.json()["items"]] == ["hh-1"]
    outside = await platform.http.get(
        "/v1/ledger", params={"region_prefix": "5301"}, headers=platform.auth("county", "530102")
    )
    assert outside.status_code == 403
    counts = await platform.http.get(
        "/v1/ledger/counts", params={"level": "township"}, headers=platform.auth("county", "530102")
    )
    assert counts.json() == [
        {"region": TOWN, "by_status": {"monitoring": 1}, "by_kind": {"unstable": 1},
         "open_cases": 0}
    ]  # fmt: skip


async def test_rules_4_8_signals_merge_and_rules_5_green_channel_rolls_back(
    platform: Platform,
) -> None:
    await platform.declare("hh-2", ["disaster"], loss_amount=20_000)
    await platform.declare("hh-2", ["illness"], medical_spending=500)
    [opened] = await platform.events("CaseOpened")
    [merged] = await platform.events("CaseMerged")
    [green] = await platform.events("GreenChannelOpened")
    assert merged.payload.risk_types == ["disaster", "illness"]
    assert green.payload.provisional_measures == ["temporary_assistance"]
    assert green.payload.reasons[0].rule == "rules §5.1"
    assert green.payload.channel == opened.payload.channel == "app"  # the declaration's
    # the green channel opened with the case: its submission is the only one linked to it
    assert green.payload.submission_ids == [opened.payload.submission_id]
    case_id = opened.payload.case_id
    detail = await platform.http.get(f"/v1/cases/{case_id}", headers=platform.auth("village"))
    assert detail.json()["deadline"] == opened.payload.deadline.isoformat().replace("+00:00", "Z")
    assert {f["rule"] for f in detail.json()["flags"]} == {"rules §3.4"}

    for role, action, body in (
        ("village", "start_home_verification", {}),
        ("village", "complete_home_verification", {"signed_form": True}),
    ):
        assert (await platform.act(case_id, role, action, **body)).status_code == 200  # type: ignore[arg-type]
    no_reason = await platform.act(case_id, "village", "reject")
    assert no_reason.status_code == 409 and no_reason.json()["detail"].startswith("reason:")
    rejected = await platform.act(case_id, "village", "reject", reason="loss not confirmed")
    assert rejected.json()["status"] == "rejected"
    [event] = await platform.events("CaseRejected")
    assert event.payload.green_channel_rolled_back and event.payload.step == "village_appraisal"

    # rules §4.7: a later signal opens a new case for the same household
    await platform.declare("hh-2", ["accident"], loss_amount=100)
    assert len(await platform.events("CaseOpened")) == 2


async def test_rules_7_elimination_after_six_months_and_rollback(platform: Platform) -> None:
    await platform.register("hh-3", [WORKER, ELDER], income=5200)
    await platform.declare("hh-3", ["illness"], medical_spending=3000)
    await platform.identify(await platform.open_case_id("hh-3"))
    identified_on = platform.clock.now().date()

    async def assistance(handler: Any, payload: Payload) -> None:
        await platform.signal(handler, payload, "hh-3")

    await assistance(
        monitoring.on_income_updated,
        IncomeUpdated(per_capita_income=9500, recorded_on=identified_on, source="visit"),
    )
    await assistance(
        monitoring.on_measure_completed,
        MeasureCompleted(measure_id="m1", plan_id="p1", code="medical_aid",
                         completed_on=identified_on),
    )  # fmt: skip
    await assistance(
        monitoring.on_visit_recorded,
        VisitRecorded(visit_id="v1", cadre_id="c1", visited_on=identified_on),
    )
    assert await platform.events("CaseStepCompleted") and not [
        e for e in await platform.events("CaseStepCompleted")
        if e.payload.step == "elimination_proposed"
    ]  # fmt: skip

    # rules §7.1: six months later the same income proposes elimination
    platform.clock.advance(timedelta(days=184))
    await assistance(
        monitoring.on_income_updated,
        IncomeUpdated(per_capita_income=9600, recorded_on=platform.clock.now().date(),
                      source="visit"),
    )  # fmt: skip
    proposals = [
        e for e in await platform.events("CaseStepCompleted")
        if e.payload.step == "elimination_proposed"
    ]  # fmt: skip
    assert len(proposals) == 1
    case_id = proposals[0].payload.case_id
    for role, action in (
        ("village", "complete_home_verification"),
        ("village", "post_public_notice"),
    ):
        assert (await platform.act(case_id, role, action)).status_code == 200  # type: ignore[arg-type]
    platform.clock.advance(timedelta(days=5))
    for role, action in (
        ("village", "complete_village_appraisal"),
        ("township", "approve_township_review"),
        ("county", "approve_county"),
    ):
        assert (await platform.act(case_id, role, action)).status_code == 200, action  # type: ignore[arg-type]
    [eliminated] = await platform.events("RiskEliminated")
    assert {r.rule for r in eliminated.payload.reasons} >= {"rules §7.1 income"}
    # every step of the elimination case says so, the proposal and the township review's
    # included; the identification case's said "identification"
    purposes = {
        (e.payload.case_id == case_id, e.payload.purpose)
        for e in await platform.events("CaseStepCompleted")
    }
    assert purposes == {(True, "elimination"), (False, "identification")}
    [review] = [
        e for e in await platform.events("CaseStepCompleted")
        if e.payload.case_id == case_id and "approve_township_review" in e.payload.next_steps
    ]  # fmt: skip
    assert review.payload.purpose == "elimination"

    # rules §7.4: the risk comes back at a visit: the household is identified again through §4
    opened_before = len(await platform.events("CaseOpened"))
    await assistance(
        monitoring.on_visit_recorded,
        VisitRecorded(visit_id="v2", cadre_id="c1", visited_on=platform.clock.now().date(),
                      new_risk_types=["disaster"]),
    )  # fmt: skip
    reopened = await platform.events("CaseOpened")
    assert len(reopened) == opened_before + 1 and reopened[-1].payload.risk_types == ["disaster"]

    rollback_url = "/v1/households/hh-3/elimination-rollback"
    refused = await platform.http.post(
        rollback_url, json={"reason": "x"}, headers=platform.auth("township")
    )
    assert refused.status_code == 403
    # the new case decides whether the household is monitored again (rules §4.8, §7.4); the
    # rollback itself is tests/integration/test_risk_elimination_rollback.py
    refused = await platform.http.post(
        rollback_url, json={"reason": "income fell again"}, headers=platform.auth("county")
    )
    assert refused.status_code == 409
    assert reopened[-1].payload.case_id in refused.json()["detail"]
    assert not await platform.events("EliminationRolledBack")


async def test_rules_7_3_no_labour_household_is_never_proposed(platform: Platform) -> None:
    await platform.register("hh-4", [ELDER], income=3000)
    await platform.signal(
        handlers.on_feed_record,
        FeedRecordReceived(
            batch_id="b", department="civil_affairs", line=1, person_id_hash="p2",
            person_id_masked="x", village_code=VILLAGE, recorded_on=date(2026, 3, 1),
            facts={"dibao": True},
        ),
        "hh-4",
    )  # fmt: skip
    await platform.declare("hh-4", ["illness"], medical_spending=3000)
    await platform.identify(await platform.open_case_id("hh-4"))
    platform.clock.advance(timedelta(days=200))
    for handler, payload in (
        (monitoring.on_measure_completed, MeasureCompleted(
            measure_id="m", plan_id="p", code="dibao", completed_on=date(2026, 4, 1))),
        (monitoring.on_visit_recorded, VisitRecorded(
            visit_id="v", cadre_id="c", visited_on=date(2026, 9, 1))),
        (monitoring.on_income_updated, IncomeUpdated(
            per_capita_income=20_000, recorded_on=date(2026, 3, 20), source="feed")),
    ):  # fmt: skip
        await platform.signal(handler, payload, "hh-4")
    assert not [
        e for e in await platform.events("CaseStepCompleted")
        if e.payload.step == "elimination_proposed"
    ]  # fmt: skip
    household = await platform.http.get("/v1/households/hh-4", headers=platform.auth("village"))
    assert household.json()["status"] == "no_labour_support"


async def test_thresholds_read_api(platform: Platform) -> None:
    everything = (await platform.http.get("/v1/thresholds")).json()
    assert {t["label"]: t["annual_yuan"] for t in everything}["Dehua county, Fujian 2024"] == 19560
    yunnan = await platform.http.get(
        "/v1/thresholds", params={"region_code": VILLAGE, "on": "2025-06-01"}
    )
    assert [t["annual_yuan"] for t in yunnan.json()] == [8700]
    missing = await platform.http.get(
        "/v1/thresholds", params={"region_code": "110101001001", "on": "2025-06-01"}
    )
    assert missing.status_code == 404 and missing.json()["detail"].startswith("region_code:")


async def test_rules_7_assistance_events_of_several_households_as_one_run(
    platform: Platform,
) -> None:
    """The consumer's run (one transaction, households locked first in id order) moves each
    household as its events one by one would: both proposed once, the §7.3 one never."""
    for household in ("hh-6", "hh-5"):
        await platform.identified_and_helped(household, [WORKER, ELDER])
    await platform.register("hh-7", [ELDER], income=3000)
    platform.clock.advance(timedelta(days=184))
    today = platform.clock.now().date()
    run = [
        new_event(payload, household_id=household, source="test", correlation_id="c",
                  clock=platform.clock)
        for household, payload in [
            ("hh-6", VisitRecorded(visit_id="v6", cadre_id="c1", visited_on=today)),
            ("hh-7", MeasureAssigned(measure_id="m7", plan_id="p7", code="dibao",
                                     category="social_security", reason="rules §6.4")),
            ("hh-5", IncomeUpdated(per_capita_income=9600, recorded_on=today, source="visit")),
            ("hh-6", IncomeUpdated(per_capita_income=9700, recorded_on=today, source="visit")),
        ]
    ]  # fmt: skip
    async with platform.runtime.uow() as uow:
        await assistance_run(platform.settings)(uow=uow, events=run)
    proposed = [
        e.household_id for e in await platform.events("CaseStepCompleted")
        if e.payload.step == "elimination_proposed"
    ]  # fmt: skip
    assert sorted(proposed) == ["hh-5", "hh-6"]


async def test_rules_7_a_run_of_measures_assigned_moves_households_as_one_by_one(
    platform: Platform,
) -> None:
    """MeasureAssigned runs take risk's bulk path (households read together, one statement for
    the cover); the same events handled one at a time must leave the same households, cases
    and outgoing events. Two copies of each household, tagged 1 and 2, take the two paths."""
    for tag in ("1", "2"):
        await platform.identified_and_helped(f"hh-due{tag}", [WORKER, ELDER])
        await platform.identified_and_helped(f"hh-old{tag}", [ELDER])
        await platform.register(f"hh-open{tag}", [WORKER], income=5200)
        await platform.declare(f"hh-open{tag}", ["illness"], medical_spending=3000)
    platform.clock.advance(timedelta(days=184))

    def measure(n: int, category: str, code: str) -> MeasureAssigned:
        return MeasureAssigned(
            measure_id=f"m{n}", plan_id="p", code=code, category=category, reason="rules §6"
        )

    script = [
        ("hh-open", measure(1, "social_security", "dibao")),
        ("hh-due", measure(2, "employment", "public_welfare_job")),
        ("hh-due", measure(3, "social_security", "medical_insurance")),
        ("hh-old", measure(4, "social_security", "tekun")),
        ("hh-open", measure(5, "social_security", "minimum_living")),
        ("hh-new", measure(6, "social_security", "dibao")),
        ("hh-due", measure(7, "social_security", "dibao")),
        ("hh-plain", measure(8, "industry", "livestock")),
    ]

    def events(tag: str) -> list[Envelope[Any]]:
        return [
            new_event(payload, household_id=household + tag, source="test", correlation_id="c",
                      clock=platform.clock)
            for household, payload in script
        ]  # fmt: skip

    for event in events("1"):
        async with platform.runtime.uow() as uow:
            await monitoring.on_measure_assigned(uow=uow, event=event, settings=platform.settings)
    async with platform.runtime.uow() as uow:
        await assistance_run(platform.settings)(uow=uow, events=events("2"))

    async def state(tag: str) -> dict[str, Any]:
        names = ("hh-due", "hh-old", "hh-open", "hh-new", "hh-plain")
        async with platform.runtime.uow() as uow:
            homes = {
                r.id[:-1]: (r.status, r.social_security, r.updated_at)
                for r in (await uow.execute(select(households))).all()
                if r.id.endswith(tag) and r.id[:-1] in names
            }
            kept = (await uow.execute(select(cases).order_by(cases.c.opened_at))).all()
            open_cases = sorted(
                (c.household_id[:-1], c.purpose, c.stage)
                for c in kept if c.household_id.endswith(tag) and c.status == "open"
            )  # fmt: skip
        sent = [
            (e.household_id[:-1], e.event_type, getattr(e.payload, "step", None))
            for t in ("CaseStepCompleted", "CaseOpened")
            for e in await platform.events(t)
            if e.household_id.endswith(tag) and e.occurred_at >= platform.clock.now()
        ]
        return {"households": homes, "open cases": open_cases, "events": sorted(sent)}

    one_by_one, as_a_run = await state("1"), await state("2")
    assert as_a_run == one_by_one
    homes = as_a_run["households"]
    assert homes["hh-old"][:2] == ("no_labour_support", True)  # rules §7.3
    assert homes["hh-new"][1] is True and homes["hh-open"][1] is True
    assert homes["hh-due"][1] is True and "hh-plain" not in homes
    assert ("hh-due", "elimination", "home_verification") in as_a_run["open cases"]
    assert as_a_run["events"] == [("hh-due", "CaseStepCompleted", "elimination_proposed")]


async def test_a_signal_batch_locks_its_households_in_id_order(platform: Platform) -> None:
    """A signal batch and an assistance run lock households in the same (id) order, so neither
    can hold one household while waiting for another the other holds (a deadlock in a chaos
    run: the batch locked in the table's physical order). `hh-lock-b` is stored first, so a
    scan meets it first; while another transaction holds `hh-lock-a`, the batch must be
    waiting for `hh-lock-a` without holding `hh-lock-b`."""
    for household in ("hh-lock-b", "hh-lock-a"):
        await platform.register(household, [WORKER], income=5200)
    holding, release = asyncio.Event(), asyncio.Event()

    async def other() -> None:
        async with platform.runtime.uow() as uow:
            await repo.household(uow, "hh-lock-a", lock=True)
            holding.set()
            await release.wait()

    async def b_is_free() -> bool:
        async with platform.runtime.uow() as uow:
            query = select(households.c.id).where(households.c.id == "hh-lock-b")
            return bool((await uow.execute(query.with_for_update(skip_locked=True))).all())

    async def batch() -> bool:
        await holding.wait()
        try:
            async with platform.runtime.uow() as uow:
                loading = asyncio.ensure_future(
                    SignalBatch(uow, platform.settings).load({"hh-lock-a", "hh-lock-b"})
                )
                await asyncio.sleep(0.5)  # now waiting for hh-lock-a
                waiting = not loading.done()
                free = await b_is_free()
                release.set()
                await loading
        finally:
            release.set()
        return waiting and free

    _, waited_holding_nothing = await asyncio.wait_for(asyncio.gather(other(), batch()), 30)
    assert waited_holding_nothing


async def test_rules_4_10_a_declaration_joining_an_open_case_starts_the_home_visit_clock(
    platform: Platform,
) -> None:
    """A housing record opened the case (no visit due); the farmer then declares: the visit is
    due two working days after the declaration, and a second declaration does not move it."""
    await platform.signal(
        handlers.on_feed_record,
        FeedRecordReceived(
            batch_id="b", department="housing", line=1, person_id_hash="p1",
            person_id_masked="x", village_code=VILLAGE, recorded_on=date(2026, 3, 1),
            facts={"house_rating": "D"},
        ),
        "hh-6",
    )  # fmt: skip
    url = f"/v1/cases/{await platform.open_case_id('hh-6')}"
    assert (await platform.http.get(url, headers=platform.auth("village"))).json()[
        "home_visit_due"
    ] is None
    platform.clock.advance(timedelta(days=1))  # Tuesday 16:00 in Beijing
    await platform.declare("hh-6", ["illness"], medical_spending=3000)
    detail = (await platform.http.get(url, headers=platform.auth("village"))).json()
    assert detail["home_visit_due"] == "2026-03-05T08:00:00Z"  # Thursday 16:00 in Beijing
    platform.clock.advance(timedelta(hours=2))
    await platform.declare("hh-6", ["illness"], medical_spending=3500)
    again = (await platform.http.get(url, headers=platform.auth("village"))).json()
    assert again["home_visit_due"] == "2026-03-05T08:00:00Z"
    # the merge that started the clock asks notify to tell the village cadre; the second not
    started, second = await platform.events("CaseMerged")
    assert started.payload.level == "village" and started.payload.village_code == VILLAGE
    assert started.payload.home_visit_due == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    assert second.payload.level is None and second.payload.home_visit_due is None


async def test_rules_4_10_working_days_skip_the_national_holidays(platform: Platform) -> None:
    """Wednesday 30 September 2026, 10:00 in Beijing: 1-7 October are holidays, so the visit is
    due Friday 9 October, 10:00 (02:00 UTC)."""
    await platform.declare(
        "hh-8", ["illness"], at=datetime(2026, 9, 30, 2, 0, tzinfo=UTC), medical_spending=3000
    )
    [opened] = await platform.events("CaseOpened")
    assert opened.payload.home_visit_due == datetime(2026, 10, 9, 2, 0, tzinfo=UTC)


async def test_dates_are_beijing_dates_for_thresholds_and_notices(platform: Platform) -> None:
    """05:00 on 1 January 2025 in Beijing is 31 December 2024 in UTC: Yunnan's 2025 threshold
    (in force from 1 January) applies. A notice posted at 04:00 Beijing time on 3 March shows
    3 March, not UTC's 2 March."""
    await platform.declare(
        "hh-9", ["illness"], at=datetime(2024, 12, 31, 21, 0, tzinfo=UTC), medical_spending=3000
    )
    [opened] = await platform.events("CaseOpened")
    assert [r.threshold for r in opened.payload.reasons if r.rule == "rules §2.1"] == [8700]

    case_id = opened.payload.case_id
    platform.clock.advance(timedelta(hours=12))  # Monday 20:00 UTC, Tuesday 04:00 in Beijing
    for role, action, body in (
        ("village", "start_home_verification", {}),
        ("village", "complete_home_verification", {"signed_form": True}),
        ("village", "post_public_notice", {}),
    ):
        assert (await platform.act(case_id, role, action, **body)).status_code == 200  # type: ignore[arg-type]
    notice = await platform.http.get(
        f"/v1/cases/{case_id}/public-notice", headers=platform.auth("village")
    )
    assert "2026-03-03 to 2026-03-08" in notice.json()["text"]


async def test_rules_1_identification_needs_income_compared_with_a_threshold(
    platform: Platform,
) -> None:
    """A declaration without a known income opens a case on the provisional reading; the county
    cannot approve it until the income is given, nor where no threshold is in force."""
    outside = "110101001001"  # no threshold configured for this region
    for household, village in (("hh-10", VILLAGE), ("hh-11", outside)):
        await platform.signal(
            handlers.on_declaration,
            DeclarationSubmitted(
                submission_id=f"s-{household}", declarant_name="王秀英",
                declarant_id_masked="x", village_code=village, risk_types=["illness"],
                medical_spending=3000,
            ),
            household,
        )  # fmt: skip
    opened = {e.household_id: e.payload.case_id for e in await platform.events("CaseOpened")}

    async def walk(case_id: str, town: str) -> None:
        for role, action, body in (
            ("village", "start_home_verification", {}),
            ("village", "complete_home_verification", {"signed_form": True}),
            ("county", "complete_data_comparison", {}),
            ("village", "post_public_notice", {}),
        ):
            answer = await platform.http.post(
                f"/v1/cases/{case_id}/actions", json={"action": action, **body},
                headers=platform.auth(role, town),  # type: ignore[arg-type]
            )  # fmt: skip
            assert answer.status_code == 200, answer.text

    await walk(opened["hh-10"], TOWN)
    await walk(opened["hh-11"], outside[:9])
    platform.clock.advance(timedelta(days=5))

    async def approve(case_id: str, town: str, **body: Any) -> httpx.Response:
        for role, action in (
            ("village", "complete_village_appraisal"),
            ("township", "approve_township_review"),
            ("county", "approve_county"),
        ):
            answer = await platform.http.post(
                f"/v1/cases/{case_id}/actions",
                json={"action": action, **(body if action == "approve_county" else {})},
                headers=platform.auth(role, town),  # type: ignore[arg-type]
            )
        return answer

    unknown = await approve(opened["hh-10"], TOWN)
    assert unknown.status_code == 409
    assert unknown.json()["detail"].startswith("per_capita_income: not known (rules §2.1)")
    known = await platform.act(opened["hh-10"], "county", "approve_county", per_capita_income=5000)
    assert known.status_code == 200 and known.json()["kind"] == "marginal"

    nowhere = await approve(opened["hh-11"], outside[:9], per_capita_income=5000)
    assert nowhere.status_code == 409
    assert nowhere.json()["detail"].startswith(
        f"threshold: no monitoring threshold is in force for {outside}"
    )
