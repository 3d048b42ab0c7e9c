"""Assistance API, roster import and visit schedule on real PostgreSQL (events from the outbox)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from services.assistance import closing, handlers, tracking
from services.assistance.app import create_app
from services.assistance.cli import cadres_app, load_roster
from services.assistance.config import AssistanceSettings
from services.assistance.models import outbox
from services.assistance.roster import assign_responsible, register_cadre
from services.assistance.schemas import CadreIn
from services.assistance.visiting import raise_overdue_visits
from shared.auth import Role, mint_token
from shared.clock import FrozenClock
from shared.events import (
    CaseRejected,
    CaseStepCompleted,
    EliminationRolledBack,
    Envelope,
    GreenChannelOpened,
    HouseholdIdentified,
    Member,
    MonitoredHouseholdReassessed,
    RiskEliminated,
    decode,
    new_event,
)
from shared.migrations import upgrade
from shared.service import Runtime

pytestmark = [pytest.mark.postgres]
TOWN = "530102001"
VILLAGE = TOWN + "001"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ROSTER = """cadre_id,name,rank,township_code,village_codes,webhook,sms,email
c-lead,王县长,county_leader,530102001,,http://127.0.0.1:9/lead,,
c-gen,张干部,general,530102001,,,13800000001,
c-vil,赵村干,village,530102001,530102001001;530102001002,,,zhao@example.cn
"""


class Platform:
    """The assistance app on a fresh database, with a frozen clock and a token minter."""

    def __init__(self, runtime: Runtime, http: httpx.AsyncClient, clock: FrozenClock) -> None:
        self.runtime, self.http, self.clock = runtime, http, clock
        settings = runtime.settings
        assert isinstance(settings, AssistanceSettings)
        self.settings = settings

    def auth(self, role: Role, jurisdiction: str = TOWN, subject: str = "o-1") -> dict[str, str]:
        token = mint_token(
            subject=subject, role=role, jurisdiction=jurisdiction,
            secret=self.settings.jwt_secret.get_secret_value(), clock=self.clock,
        )  # fmt: skip
        return {"Authorization": f"Bearer {token}"}

    async def identify(self, household: str, members: list[Member], risks: list[str]) -> None:
        event = new_event(
            HouseholdIdentified(
                case_id=f"case-{household}", village_code=VILLAGE, kind="marginal",
                risk_types=risks, reasons=[], members=members, per_capita_income=5200,
            ),
            household_id=household, source="risk", correlation_id=f"sub-{household}",
            clock=self.clock,
        )  # fmt: skip
        async with self.runtime.uow() as uow:
            await handlers.on_household_identified(uow=uow, event=event, settings=self.settings)

    async def events(self, event_type: str) -> list[Envelope[Any]]:
        async with self.runtime.uow() as uow:
            rows = (await uow.execute(select(outbox.c.value).order_by(outbox.c.id))).scalars()
            decoded = [decode(v) for v in rows]
        return [e for e in decoded if e.event_type == event_type]


@pytest.fixture
async def platform(pg_url: str, tmp_path: Path) -> AsyncIterator[Platform]:
    settings = AssistanceSettings(database_url=pg_url)
    clock = FrozenClock(START)
    app = create_app(settings, clock)
    runtime: Runtime = app.state.runtime
    await upgrade(pg_url, runtime.service_dir)
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    assert await load_roster(roster, settings=settings, clock=clock) == {"created": 3}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://assistance") as http:
        yield Platform(runtime, http, clock)
    await runtime.engine.dispose()


WORKER = Member(person_id_hash="p1", person_id_masked="5301***1", age=35)
SICK = Member(
    person_id_hash="p2", person_id_masked="5301***2", age=66, labour_capacity="none",
    chronic_illness=True,
)  # fmt: skip


async def test_roster_import_is_idempotent_and_a_bad_file_imports_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    roster = tmp_path / "again.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    env = {"HOLDLINE_ASSISTANCE_DATABASE_URL": platform.settings.database_url, "COLUMNS": "200"}
    again = await asyncio.to_thread(CliRunner().invoke, cadres_app, [str(roster)], env=env)
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 3 unchanged" in again.output
    assert len(await platform.events("CadreRegistered")) == 3
    registered = {e.payload.cadre_id: e.payload for e in await platform.events("CadreRegistered")}
    assert registered["c-vil"].contacts == {"email": "zhao@example.cn"}
    assert registered["c-vil"].village_codes == ["530102001001", "530102001002"]

    bad = tmp_path / "bad.csv"
    bad.write_text(ROSTER.replace("13800000001", "12345").replace(",general,", ",boss,"))
    result = CliRunner().invoke(cadres_app, [str(bad)], env=env)
    assert result.exit_code == 2
    assert "line 3: rank" in result.output and "line 3: contacts" in result.output
    assert "nothing was imported" in result.output


async def test_assignment_and_reassignment_when_a_cadre_leaves(platform: Platform) -> None:
    for n in range(5):
        await platform.identify(f"hh-{n}", [WORKER], ["unstable_employment"])
    workload = (await platform.http.get("/v1/workload", headers=platform.auth("township"))).json()
    loads = {c["cadre_id"]: c["load"] for c in workload["cadres"]}
    # rules §6.9 "321": the county leader takes 3, the general cadre 1, the village cadre the rest
    assert loads == {"c-lead": 3, "c-gen": 1, "c-vil": 1}
    assert workload["unassigned_households"] == []

    village_token = platform.auth("village")
    refused = await platform.http.post("/v1/cadres/c-lead/leave", headers=village_token)
    assert refused.status_code == 403
    left = await platform.http.post("/v1/cadres/c-lead/leave", headers=platform.auth("county"))
    assert left.status_code == 200, left.text
    assert set(left.json().values()) == {"c-vil"}  # the general cadre is full
    moved = [e for e in await platform.events("CadreAssigned") if e.payload.previous_cadre_id]
    assert sorted(e.household_id for e in moved) == sorted(left.json())
    gone = [e for e in await platform.events("CadreRegistered") if not e.payload.active]
    assert [e.payload.cadre_id for e in gone] == ["c-lead"]


async def test_cadre_api_auth_and_validation(platform: Platform) -> None:
    body = {"cadre_id": "c-new", "name": "新", "rank": "section", "township_code": TOWN}
    assert (await platform.http.post("/v1/cadres", json=body)).status_code == 401
    village = await platform.http.post("/v1/cadres", json=body, headers=platform.auth("village"))
    assert village.status_code == 403
    other = await platform.http.post(
        "/v1/cadres", json=body, headers=platform.auth("county", jurisdiction="5302")
    )
    assert other.status_code == 403 and other.json()["detail"].startswith("township_code")
    bad = await platform.http.post(
        "/v1/cadres", json=body | {"township_code": "5301"}, headers=platform.auth("county", "5301")
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "township_code"
    made = await platform.http.post(
        "/v1/cadres", json=body, headers=platform.auth("county", "5301")
    )
    assert made.status_code == 201 and made.json()["capacity"] == 2


async def test_plan_with_reasons_hand_edit_and_measure_lifecycle(platform: Platform) -> None:
    await platform.identify("hh-plan", [WORKER, SICK], ["illness", "housing_unsafe"])
    headers = platform.auth("village", VILLAGE, "c-vil")
    assert (await platform.http.get("/v1/households/hh-plan/plan")).status_code == 401
    plan = (await platform.http.get("/v1/households/hh-plan/plan", headers=headers)).json()
    assert [m["code"] for m in plan["measures"]] == [
        "employment_placement", "dangerous_house_renovation", "medical_aid",
    ]  # fmt: skip
    assert all(m["reason"].startswith("rules §6") for m in plan["measures"])
    assert plan["violations"] == [] and plan["responsible_cadre"] == "c-lead"
    assert plan["catalogue_version"] == (await platform.http.get("/v1/catalogue")).json()["version"]
    pwj = (await platform.http.get("/v1/catalogue/public_welfare_job")).json()
    assert (pwj["age_min"], pwj["age_max"], pwj["outlives_elimination"]) == (16, 69, True)
    assert (await platform.http.get("/v1/catalogue/nope")).status_code == 404

    edited = await platform.http.post(
        f"/v1/plans/{plan['plan_id']}/measures",
        json={"code": "drinking_water_project", "reason": "the village wants it"}, headers=headers,
    )  # fmt: skip
    assert edited.status_code == 201
    assert [v["problem"] for v in edited.json()["violations"]] == [
        "drinking_water_project answers no cause"
    ]
    again = await platform.http.post(
        f"/v1/plans/{plan['plan_id']}/measures",
        json={"code": "drinking_water_project", "reason": "twice"}, headers=headers,
    )  # fmt: skip
    assert again.status_code == 409 and again.json()["detail"].startswith("code")

    measure = plan["measures"][0]["measure_id"]
    url = f"/v1/measures/{measure}/transitions"
    for target in ("in_progress", "completed"):
        moved = await platform.http.post(url, json={"status": target}, headers=headers)
        assert moved.status_code == 200 and moved.json()["status"] == target
    assert moved.json()["updated_by"] == "c-vil" and moved.json()["completed_on"] == "2026-03-02"
    late = await platform.http.post(url, json={"status": "cancelled"}, headers=headers)
    assert late.status_code == 409 and late.json()["detail"].startswith("status")
    assert [e.payload.measure_id for e in await platform.events("MeasureCompleted")] == [measure]
    history = await platform.http.get(f"/v1/measures/{measure}/history", headers=headers)
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in history.json()] == [
        (None, "planned", "assistance"), ("planned", "in_progress", "c-vil"),
        ("in_progress", "completed", "c-vil"),
    ]  # fmt: skip
    done = await platform.http.get(
        "/v1/measures", params={"status": "completed", "region": VILLAGE}, headers=headers
    )
    assert [m["measure_id"] for m in done.json()] == [measure]
    guarantee = await platform.http.get(
        "/v1/measures", params={"category": "guarantee_fix"}, headers=headers
    )
    assert {m["code"] for m in guarantee.json()} == {
        "dangerous_house_renovation", "drinking_water_project",
    }  # fmt: skip
    outside = await platform.http.get("/v1/measures", params={"region": "5302"}, headers=headers)
    assert outside.status_code == 403


async def test_visits_income_and_overdue_warnings_exactly_once(platform: Platform) -> None:
    await platform.identify("hh-v", [WORKER, SICK], ["illness"])
    await platform.identify("hh-w", [WORKER], ["water_unsafe"])
    visit = {"household_id": "hh-v", "visited_on": "2026-03-02", "per_capita_income": 7100}
    assert (await platform.http.post("/v1/visits", json=visit)).status_code == 401
    stranger = platform.auth("village", VILLAGE, "not-a-cadre")
    assert (await platform.http.post("/v1/visits", json=visit, headers=stranger)).status_code == 403
    elsewhere = platform.auth("village", "530102002", "c-lead")
    assert (
        await platform.http.post("/v1/visits", json=visit, headers=elsewhere)
    ).status_code == 403
    lead = platform.auth("village", TOWN, "c-lead")
    future = visit | {"visited_on": "2026-03-09"}
    refused = await platform.http.post("/v1/visits", json=future, headers=lead)
    assert refused.status_code == 422 and refused.json()["detail"].startswith("visited_on")
    unknown = await platform.http.post(
        "/v1/visits", json=visit | {"household_id": "hh-none"}, headers=lead
    )
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith("household_id")
    done = await platform.http.post("/v1/visits", json=visit, headers=lead)
    assert done.status_code == 201 and done.json()["income_changed"] is True
    income = await platform.events("IncomeUpdated")
    assert [(e.household_id, e.payload.per_capita_income) for e in income] == [("hh-v", 7100)]
    assert [e.payload.cadre_id for e in await platform.events("VisitRecorded")] == ["c-lead"]
    same = await platform.http.post("/v1/visits", json=visit, headers=lead)
    assert same.json()["income_changed"] is False
    assert len(await platform.events("IncomeUpdated")) == 1

    due = (await platform.http.get("/v1/visits/due", headers=lead)).json()
    assert {d["household_id"]: d["next_visit_due"] for d in due} == {
        "hh-v": "2026-04-01", "hh-w": "2026-04-01",
    }  # fmt: skip
    assert due[0]["household_id"] == "hh-v" and "serious_or_chronic_illness" in due[0]["must_visit"]

    # rules §6.10: 3 days late warns the cadre; 10 days late also the township; never twice
    platform.clock.advance(timedelta(days=33))
    for _ in range(2):
        await raise_overdue_visits(uow_factory=platform.runtime.uow, settings=platform.settings)
    platform.clock.advance(timedelta(days=7))
    for _ in range(2):
        await raise_overdue_visits(uow_factory=platform.runtime.uow, settings=platform.settings)
    warned = sorted(
        (e.household_id, e.payload.level, str(e.payload.due_on))
        for e in await platform.events("VisitOverdue")
    )
    assert warned == [
        ("hh-v", "cadre", "2026-04-01"), ("hh-v", "township", "2026-04-01"),
        ("hh-w", "cadre", "2026-04-01"), ("hh-w", "township", "2026-04-01"),
    ]  # fmt: skip
    fresh = platform.auth("village", TOWN, "c-lead")  # the first token expired meanwhile
    overdue = await platform.http.get(
        "/v1/visits/due", params={"overdue_only": True}, headers=fresh
    )
    assert len(overdue.json()) == 2


async def _case_event(platform: Platform, household: str, payload: Any) -> None:
    event = new_event(
        payload, household_id=household, source="risk", correlation_id=f"sub-{household}",
        clock=platform.clock,
    )  # fmt: skip
    handler = {
        "GreenChannelOpened": handlers.on_green_channel_opened,
        "CaseStepCompleted": handlers.on_case_step,
        "CaseRejected": closing.on_case_rejected,
        "RiskEliminated": closing.on_risk_eliminated,
        "EliminationRolledBack": closing.on_elimination_rolled_back,
        "MonitoredHouseholdReassessed": tracking.on_household_reassessed,
    }[type(payload).__name__]
    async with platform.runtime.uow() as uow:
        await handler(uow=uow, event=event, settings=platform.settings)  # type: ignore[operator]


async def _plan(platform: Platform, household: str) -> dict[str, Any]:
    headers = platform.auth("township")
    answer = await platform.http.get(f"/v1/households/{household}/plan", headers=headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_rules_5_4_rejected_green_channel_keeps_given_help_as_temporary_assistance(
    platform: Platform,
) -> None:
    await _case_event(
        platform, "hh-g",
        GreenChannelOpened(
            case_id="case-hh-g", village_code=VILLAGE, risk_types=["accident"],
            provisional_measures=["temporary_assistance", "medical_aid"],
            paperwork_due=START + timedelta(days=14), reasons=[],
        ),
    )  # fmt: skip
    plan = await _plan(platform, "hh-g")
    assert plan["status"] == "provisional"
    given = {m["code"]: m["measure_id"] for m in plan["measures"]}
    url = f"/v1/measures/{given['temporary_assistance']}/transitions"
    moved = await platform.http.post(
        url, json={"status": "in_progress"}, headers=platform.auth("village")
    )
    assert moved.status_code == 200
    await _case_event(
        platform, "hh-g",
        CaseRejected(case_id="case-hh-g", village_code=VILLAGE, step="county_approval",
                     reason="income above range", actor="county-1", green_channel_rolled_back=True),
    )  # fmt: skip
    plan = await _plan(platform, "hh-g")
    assert plan["status"] == "rolled_back"
    outcome = {m["code"]: (m["status"], m["recorded_as"]) for m in plan["measures"]}
    assert outcome == {
        "temporary_assistance": ("completed", "temporary_assistance"),
        "medical_aid": ("cancelled", None),
    }


async def test_rules_6_7_elimination_ends_measures_except_those_that_outlive_it(
    platform: Platform,
) -> None:
    student = Member(
        person_id_hash="p3", person_id_masked="5301***3", age=17, labour_capacity="none",
        schooling_stage="senior",
    )  # fmt: skip
    await platform.identify("hh-e", [WORKER, student], ["schooling", "unstable_employment"])
    plan = await _plan(platform, "hh-e")
    assert {m["code"] for m in plan["measures"]} == {"employment_placement", "education_aid"}
    for m in plan["measures"]:
        if m["code"] != "education_aid":
            continue  # the job placement is still only planned when the risk goes
        url = f"/v1/measures/{m['measure_id']}/transitions"
        moved = await platform.http.post(
            url, json={"status": "in_progress"}, headers=platform.auth("village")
        )
        assert moved.status_code == 200
    cadre = plan["responsible_cadre"]
    assert await _load(platform, cadre) == 1
    # risk decides an elimination on a case of its own (rules §7.2), not the plan's case
    await _case_event(platform, "hh-e", RiskEliminated(case_id="elim-hh-e", village_code=VILLAGE))
    plan = await _plan(platform, "hh-e")
    assert plan["status"] == "closed" and plan["case_id"] == "case-hh-e"
    assert {m["code"]: m["status"] for m in plan["measures"]} == {
        "employment_placement": "cancelled", "education_aid": "in_progress",
    }  # fmt: skip
    assert plan["responsible_cadre"] is None
    assert await _load(platform, cadre) == 0  # the cadre has room for the next household
    due = (await platform.http.get("/v1/visits/due", headers=platform.auth("township"))).json()
    assert "hh-e" not in {d["household_id"] for d in due}

    # rules §7.4: a rolled-back elimination refills exactly the gap and brings a cadre back
    await _case_event(
        platform, "hh-e",
        EliminationRolledBack(case_id="elim-hh-e", village_code=VILLAGE, reason="income fell"),
    )  # fmt: skip
    plan = await _plan(platform, "hh-e")
    assert plan["status"] == "active" and plan["violations"] == []
    assert plan["responsible_cadre"] is not None
    assigned = (await platform.events("CadreAssigned"))[-1]
    assert assigned.payload.case_id == "case-hh-e"  # the case the household is monitored under
    due = (await platform.http.get("/v1/visits/due", headers=platform.auth("township"))).json()
    assert "hh-e" in {d["household_id"] for d in due}
    live = [(m["code"], m["status"]) for m in plan["measures"] if m["status"] == "planned"]
    assert live == [("employment_placement", "planned")]


async def test_rules_7_4_a_rolled_back_elimination_plans_again_what_was_completed(
    platform: Platform,
) -> None:
    """The risk came back: help carried out before the elimination does not fill the gap
    now, so the refilled plan plans it again (once, however often the roll-back arrives)."""
    await platform.identify("hh-c", [WORKER], ["unstable_employment"])
    plan = await _plan(platform, "hh-c")
    [placement] = plan["measures"]
    url = f"/v1/measures/{placement['measure_id']}/transitions"
    for status in ("in_progress", "completed"):
        moved = await platform.http.post(
            url, json={"status": status}, headers=platform.auth("village")
        )
        assert moved.status_code == 200, moved.text
    await _case_event(platform, "hh-c", RiskEliminated(case_id="elim-hh-c", village_code=VILLAGE))
    for _ in range(2):  # the second one is a redelivery
        await _case_event(
            platform, "hh-c",
            EliminationRolledBack(case_id="elim-hh-c", village_code=VILLAGE, reason="job lost"),
        )  # fmt: skip
    plan = await _plan(platform, "hh-c")
    assert plan["status"] == "active"
    assert sorted((m["code"], m["status"]) for m in plan["measures"]) == [
        ("employment_placement", "completed"),
        ("employment_placement", "planned"),
    ]


async def _load(platform: Platform, cadre_id: str) -> int:
    cadres = (await platform.http.get("/v1/cadres", headers=platform.auth("township"))).json()
    return int(next(c["load"] for c in cadres if c["cadre_id"] == cadre_id))


async def test_a_rejected_elimination_case_leaves_the_household_monitored(
    platform: Platform,
) -> None:
    """rules §7.2: an elimination refused at review is not an identification refused (§5.4):
    the plan, its measures and the responsible cadre stay; a redelivered elimination or
    roll-back finds the plan already where it is."""
    await platform.identify("hh-r", [WORKER], ["unstable_employment"])
    before = await _plan(platform, "hh-r")
    await _case_event(
        platform, "hh-r",
        CaseRejected(case_id="elim-hh-r", village_code=VILLAGE, step="township_review",
                     reason="income not stable", actor="township-1"),
    )  # fmt: skip
    after = await _plan(platform, "hh-r")
    assert after["status"] == "active"
    assert after["measures"] == before["measures"]
    assert after["responsible_cadre"] == before["responsible_cadre"] is not None
    due = (await platform.http.get("/v1/visits/due", headers=platform.auth("township"))).json()
    assert "hh-r" in {d["household_id"] for d in due}

    # the same elimination twice closes the plan once; the same roll-back twice reopens it once
    for _ in range(2):
        await _case_event(
            platform, "hh-r", RiskEliminated(case_id="elim-hh-r", village_code=VILLAGE)
        )
    assert (await _plan(platform, "hh-r"))["status"] == "closed"
    for _ in range(2):
        await _case_event(
            platform, "hh-r",
            EliminationRolledBack(case_id="elim-hh-r", village_code=VILLAGE, reason="income fell"),
        )  # fmt: skip
    plan = await _plan(platform, "hh-r")
    assert plan["status"] == "active" and plan["violations"] == []
    assert len([m for m in plan["measures"] if m["status"] == "planned"]) == 1
    assert len(await platform.events("CadreAssigned")) == 2


async def test_concurrent_assignments_never_exceed_capacity(platform: Platform) -> None:
    """rules §6.9 under concurrency: two consumers, one general cadre with room for one."""
    town, village = "530102009", "530102009001"
    async with platform.runtime.uow() as uow:
        lone = CadreIn(cadre_id="c-lone", name="孤", rank="general", township_code=town)
        await register_cadre(uow, cadre=lone, actor="test", settings=platform.settings)

    async def assign(household: str) -> str | None:
        async with platform.runtime.uow() as uow:
            chosen = await assign_responsible(
                uow, household_id=household, case_id=f"case-{household}", village_code=village,
                settings=platform.settings, correlation_id="t",
            )  # fmt: skip
            await asyncio.sleep(0.2)  # hold the transaction open while the other one runs
            return chosen

    outcomes = await asyncio.gather(assign("hh-x"), assign("hh-y"))
    assert sorted(map(str, outcomes)) == ["None", "c-lone"]


async def test_a_visit_dated_today_in_beijing_is_not_in_the_future(platform: Platform) -> None:
    """At 07:30 on 3 March in Beijing it is still 2 March in UTC: a visit made that morning
    and dated 3 March is accepted, one dated 4 March is refused."""
    await platform.identify("hh-t", [WORKER], ["illness"])
    platform.clock.advance(timedelta(hours=15, minutes=30))  # 2 March 23:30 UTC
    lead = platform.auth("village", TOWN, "c-lead")
    visit = {"household_id": "hh-t", "visited_on": "2026-03-03"}
    assert (await platform.http.post("/v1/visits", json=visit, headers=lead)).status_code == 201
    later = visit | {"visited_on": "2026-03-04"}
    refused = await platform.http.post("/v1/visits", json=later, headers=lead)
    assert refused.status_code == 422 and refused.json()["detail"].startswith("visited_on")


def _reassessed(
    level: Literal["green_channel", "new_risk"] | None,
    new: list[str],
    provisional: tuple[str, ...] = (),
) -> MonitoredHouseholdReassessed:
    return MonitoredHouseholdReassessed(
        village_code=VILLAGE, risk_types=new or ["illness"], new_risk_types=new,
        channel="cadre", level=level, provisional_measures=list(provisional),
    )  # fmt: skip


async def _due(platform: Platform, household: str) -> dict[str, Any]:
    due = (await platform.http.get("/v1/visits/due", headers=platform.auth("township"))).json()
    return dict(next(d for d in due if d["household_id"] == household))


async def test_rules_4_channel_4_a_new_risk_fills_the_plan_gap_and_the_cadre_stays(
    platform: Platform,
) -> None:
    """rules §6.2: a new cause of a monitoring object gets exactly its measures in the plan it
    has (§6.1), announced as new measures are; again, or with nothing to do, adds nothing."""
    await platform.identify("hh-n", [WORKER], ["unstable_employment"])
    before = await _plan(platform, "hh-n")
    assert [m["code"] for m in before["measures"]] == ["employment_placement"]
    assert (await _due(platform, "hh-n"))["must_visit"] == ["low_income", "unstable_migrant_work"]
    assigned_before = len(await platform.events("MeasureAssigned"))
    for _ in range(2):  # the second time as a handler run twice would: nothing more
        await _case_event(platform, "hh-n", _reassessed("new_risk", ["housing_unsafe", "disaster"]))
    await _case_event(platform, "hh-n", _reassessed(None, ["water_unsafe"]))
    plan = await _plan(platform, "hh-n")
    assert plan["plan_id"] == before["plan_id"] and plan["status"] == "active"
    assert [(m["code"], m["status"], m["provisional"]) for m in plan["measures"]] == [
        ("employment_placement", "planned", False),  # rules §6.3: development first
        ("temporary_assistance", "planned", False),
        ("dangerous_house_renovation", "planned", False),
    ]
    assert plan["risk_types"] == ["disaster", "housing_unsafe", "unstable_employment"]
    assert plan["violations"] == []
    assert plan["responsible_cadre"] == before["responsible_cadre"] is not None
    assert len(await platform.events("CadreAssigned")) == 1
    assigned = (await platform.events("MeasureAssigned"))[assigned_before:]
    assert sorted(e.payload.code for e in assigned) == [
        "dangerous_house_renovation", "temporary_assistance",
    ]  # fmt: skip
    assert all(e.payload.plan_id == plan["plan_id"] for e in assigned)
    created = (await platform.events("PlanCreated"))[-1]
    assert created.payload.measures == [m["code"] for m in plan["measures"]]
    assert created.payload.case_id == "case-hh-n" and created.payload.provisional is False
    assert len(await platform.events("PlanCreated")) == 2
    # rules §6.11: a disaster makes the household a must-visit one
    assert (await _due(platform, "hh-n"))["must_visit"] == [
        "low_income", "unstable_migrant_work", "disaster_or_upheaval",
    ]  # fmt: skip


async def test_rules_5_2_a_monitored_household_in_the_green_channel_gets_help_at_once(
    platform: Platform,
) -> None:
    await platform.identify("hh-gc", [WORKER, SICK], ["illness"])
    before = await _plan(platform, "hh-gc")
    assert {m["code"] for m in before["measures"]} == {"employment_placement", "medical_aid"}
    green = _reassessed(
        "green_channel", ["accident", "housing_unsafe"], ("temporary_assistance", "medical_aid")
    )
    await _case_event(platform, "hh-gc", green)
    plan = await _plan(platform, "hh-gc")
    assert plan["plan_id"] == before["plan_id"]
    assert plan["status"] == "active"  # the household stays identified
    assert [(m["code"], m["person_id_hash"], m["provisional"]) for m in plan["measures"]] == [
        ("employment_placement", "p1", False),  # rules §6.3: development first
        ("temporary_assistance", None, True),  # rules §5.2, at once; it answers the accident
        ("dangerous_house_renovation", None, False),
        ("medical_aid", "p2", False),  # held already: the green channel does not add it again
    ]
    assert plan["violations"] == []
    assert plan["responsible_cadre"] == before["responsible_cadre"]
    created = (await platform.events("PlanCreated"))[-1]
    assert created.payload.provisional is True


async def test_a_reassessment_without_a_plan_makes_one_and_is_not_lost(
    platform: Platform,
) -> None:
    """As a green channel opened before its case (opening.py): the help gets a plan."""
    await _case_event(
        platform, "hh-lost",
        _reassessed("green_channel", ["accident"], ("temporary_assistance",)),
    )  # fmt: skip
    plan = await _plan(platform, "hh-lost")
    assert plan["status"] == "provisional"
    assert [(m["code"], m["provisional"]) for m in plan["measures"]] == [
        ("temporary_assistance", True)
    ]
    await _case_event(platform, "hh-lost", _reassessed("new_risk", ["housing_unsafe"]))
    plan = await _plan(platform, "hh-lost")
    assert [m["code"] for m in plan["measures"]] == [
        "temporary_assistance", "dangerous_house_renovation",
    ]  # fmt: skip
    assert plan["risk_types"] == ["accident", "housing_unsafe"]
    assigned = await platform.events("MeasureAssigned")
    assert {e.payload.plan_id for e in assigned} == {plan["plan_id"]}


async def test_a_case_placed_in_a_village_takes_its_plan_and_measures_there(
    platform: Platform,
) -> None:
    # a department record opened the case without a village: risk held it under the county's
    # placeholder, and the green channel planned help there
    unplaced = TOWN[:6] + "000000"
    await _case_event(
        platform, "hh-u",
        GreenChannelOpened(
            case_id="case-hh-u", village_code=unplaced, risk_types=["illness"],
            provisional_measures=["medical_aid"], paperwork_due=START + timedelta(days=14),
            reasons=[],
        ),
    )  # fmt: skip
    url = "/v1/households/hh-u/plan"
    assert (
        await platform.http.get(url, headers=platform.auth("village", VILLAGE))
    ).status_code == 403
    # another step changes nothing
    step = CaseStepCompleted(
        case_id="case-hh-u", village_code=unplaced, step="data_comparison", actor="c",
        role="county",
    )  # fmt: skip
    await _case_event(platform, "hh-u", step)
    assert (
        await platform.http.get(url, headers=platform.auth("village", VILLAGE))
    ).status_code == 403
    placed = CaseStepCompleted(
        case_id="case-hh-u", village_code=VILLAGE, step="village_assigned", actor="c",
        role="county", note=f"{unplaced} -> {VILLAGE}",
    )  # fmt: skip
    await _case_event(platform, "hh-u", placed)
    answer = await platform.http.get(url, headers=platform.auth("village", VILLAGE))
    assert answer.status_code == 200, answer.text
    measure = answer.json()["measures"][0]["measure_id"]
    moved = await platform.http.post(
        f"/v1/measures/{measure}/transitions", json={"status": "in_progress"},
        headers=platform.auth("village", VILLAGE),
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
