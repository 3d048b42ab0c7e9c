"""Assistance on real PostgreSQL: a hand-added measure names the right person (rules §6.1), only
the responsible cadre records a household's visits (§6.10), and what outlives an elimination
runs until its own end (§6.7)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.assistance import handlers
from services.assistance.models import measures, visits
from shared.events import GreenChannelOpened, HouseholdIdentified, Member, RiskEliminated, new_event
from tests.integration import test_assistance_api as api_tests
from tests.integration.test_assistance_api import (
    SICK,
    START,
    TOWN,
    VILLAGE,
    WORKER,
    Platform,
    _case_event,
    _plan,
)
from tests.support import refused_field

pytestmark = [pytest.mark.postgres]
STUDENT = Member(
    person_id_hash="p3", person_id_masked="5301***3", age=17, labour_capacity="none",
    schooling_stage="senior",
)  # fmt: skip


# test_assistance_api's: the roster's three cadres of TOWN, a frozen clock
platform = api_tests.platform


async def _count(platform: Platform, table: Any) -> int:
    async with platform.runtime.uow() as uow:
        return int((await uow.execute(select(func.count()).select_from(table))).scalar_one())


async def _add(platform: Platform, plan_id: str, **body: Any) -> httpx.Response:
    return await platform.http.post(
        f"/v1/plans/{plan_id}/measures", json={"reason": "雨露"} | body,
        headers=platform.auth("village", VILLAGE, "c-vil"),
    )  # fmt: skip


async def test_rules_6_1_a_measure_for_a_person_names_a_member_of_the_household(
    platform: Platform,
) -> None:
    """Rain-and-Dew naming nobody, in a household with no student and no schooling risk, was
    a 201 with nothing in the violations."""
    await platform.identify("hh-p", [WORKER, SICK], ["illness"])
    plan = await _plan(platform, "hh-p")
    before = (await _count(platform, measures), len(await platform.events("MeasureAssigned")))
    refused = [
        await _add(platform, plan["plan_id"], code="yulu_plan_subsidy"),
        await _add(platform, plan["plan_id"], code="yulu_plan_subsidy", person_id_hash="p9"),
        await _add(platform, plan["plan_id"], code="microcredit", person_id_hash="p1"),
    ]
    assert [refused_field(r) for r in refused] == ["person_id_hash"] * 3
    assert "yulu_plan_subsidy is for a person" in refused[0].json()["detail"]
    assert "not one of the household's members" in refused[1].json()["detail"]
    assert "for the whole household" in refused[2].json()["detail"]
    after = (await _count(platform, measures), len(await platform.events("MeasureAssigned")))
    assert after == before

    # named, the member's eligibility and the causes answered are the checker's (rules §6.6)
    named = await _add(platform, plan["plan_id"], code="yulu_plan_subsidy", person_id_hash="p1")
    assert named.status_code == 201, named.text
    yulu = next(m for m in named.json()["measures"] if m["code"] == "yulu_plan_subsidy")
    problems = {
        v["problem"] for v in named.json()["violations"] if v["measure_id"] == yulu["measure_id"]
    }
    assert problems == {
        "yulu_plan_subsidy answers no cause",
        "yulu_plan_subsidy: schooling stage None is not one of ['higher_vocational', 'vocational']",
    }
    assert (await _plan(platform, "hh-p"))["violations"] == named.json()["violations"]


async def test_a_person_measure_before_identification_is_refused(platform: Platform) -> None:
    """A green-channel plan does not know the members yet: there is nobody to name."""
    await _case_event(
        platform, "hh-gc",
        GreenChannelOpened(
            case_id="case-hh-gc", village_code=VILLAGE, risk_types=["illness"],
            provisional_measures=["medical_aid"], paperwork_due=START + timedelta(days=14),
            reasons=[],
        ),
    )  # fmt: skip
    plan = await _plan(platform, "hh-gc")
    answer = await _add(platform, plan["plan_id"], code="medical_aid", person_id_hash="p1")
    assert refused_field(answer) == "person_id_hash"
    assert "members yet" in answer.json()["detail"]


async def _due(platform: Platform, household: str) -> dict[str, Any]:
    due = (await platform.http.get("/v1/visits/due", headers=platform.auth("township"))).json()
    return dict(next(d for d in due if d["household_id"] == household))


async def test_rules_6_10_only_the_responsible_cadre_records_a_visit(platform: Platform) -> None:
    """Another active cadre of the township could record a visit, which moved the schedule and
    hid the responsible cadre's missed visits."""
    await platform.identify("hh-v", [WORKER], ["illness"])
    responsible = (await _plan(platform, "hh-v"))["responsible_cadre"]
    assert responsible == "c-lead"
    platform.clock.advance(timedelta(days=40))  # the visit due on 1 April was missed
    due = (await _due(platform, "hh-v"))["next_visit_due"]
    visit = {"household_id": "hh-v", "visited_on": platform.clock.now().date().isoformat()}
    for other in ("c-gen", "c-vil"):
        token = platform.auth("village", TOWN, other)
        answer = await platform.http.post("/v1/visits", json=visit, headers=token)
        assert answer.status_code == 403, answer.text
        assert answer.json()["detail"] == (
            "household_id: hh-v is in the care of cadre c-lead, who alone records its visits"
        )
    assert await _count(platform, visits) == 0
    assert await platform.events("VisitRecorded") == []
    assert (await _due(platform, "hh-v"))["next_visit_due"] == due
    assert (await _due(platform, "hh-v"))["overdue"] is True

    own = await platform.http.post(
        "/v1/visits", json=visit, headers=platform.auth("village", TOWN, "c-lead")
    )
    assert own.status_code == 201 and own.json()["cadre_id"] == "c-lead"
    assert (await _due(platform, "hh-v"))["overdue"] is False


async def test_a_household_waiting_for_a_cadre_takes_no_visit(platform: Platform) -> None:
    """A township with no cadre: the household waits (rules §6.8) and nobody's visit counts."""
    village = "530102009001"
    event = new_event(
        HouseholdIdentified(
            case_id="case-hh-w", village_code=village, kind="marginal", risk_types=["illness"],
            reasons=[], members=[WORKER], per_capita_income=5200,
        ),
        household_id="hh-w", source="risk", correlation_id="sub-hh-w", clock=platform.clock,
    )  # fmt: skip
    async with platform.runtime.uow() as uow:
        await handlers.on_household_identified(uow=uow, event=event, settings=platform.settings)
    visit = {"household_id": "hh-w", "visited_on": START.date().isoformat()}
    answer = await platform.http.post(
        "/v1/visits", json=visit, headers=platform.auth("county", "530102", "c-lead")
    )
    assert answer.status_code == 403
    assert answer.json()["detail"].startswith("household_id: hh-w has no responsible cadre yet")
    assert await _count(platform, visits) == 0


async def test_rules_6_7_measures_under_way_outlive_elimination_until_their_own_end(
    platform: Platform,
) -> None:
    """A public-welfare post and education aid under way stay in progress after the risk is
    eliminated, until an official records their end; a loan never contracted ends with it."""
    await platform.identify("hh-e", [WORKER, STUDENT], ["schooling", "unstable_employment"])
    plan = await _plan(platform, "hh-e")
    for code in ("public_welfare_job", "microcredit"):
        person = "p1" if code == "public_welfare_job" else None
        added = await _add(platform, plan["plan_id"], code=code, person_id_hash=person)
        assert added.status_code == 201, added.text
    plan = await _plan(platform, "hh-e")
    ids = {m["code"]: m["measure_id"] for m in plan["measures"]}
    village = platform.auth("village", VILLAGE, "c-vil")
    for code in ("public_welfare_job", "education_aid"):
        moved = await platform.http.post(
            f"/v1/measures/{ids[code]}/transitions", json={"status": "in_progress"},
            headers=village,
        )  # fmt: skip
        assert moved.status_code == 200, moved.text

    await _case_event(platform, "hh-e", RiskEliminated(case_id="elim-hh-e", village_code=VILLAGE))
    plan = await _plan(platform, "hh-e")
    assert plan["status"] == "closed"
    assert {m["code"]: m["status"] for m in plan["measures"]} == {
        "employment_placement": "cancelled", "microcredit": "cancelled",
        "public_welfare_job": "in_progress", "education_aid": "in_progress",
    }  # fmt: skip
    assert await platform.events("MeasureCompleted") == []
    running = await platform.http.get(
        "/v1/measures", params={"status": "in_progress"}, headers=village
    )
    assert sorted(m["code"] for m in running.json()) == ["education_aid", "public_welfare_job"]

    # the post agreement runs out: the official records its end, on the closed plan
    platform.clock.advance(timedelta(days=90))
    village = platform.auth("village", VILLAGE, "c-vil")
    ended = await platform.http.post(
        f"/v1/measures/{ids['public_welfare_job']}/transitions",
        json={"status": "completed", "note": "post agreement ended"}, headers=village,
    )  # fmt: skip
    assert ended.status_code == 200, ended.text
    assert ended.json()["completed_on"] == "2026-05-31"
    [completed] = await platform.events("MeasureCompleted")
    assert completed.payload.measure_id == ids["public_welfare_job"]
    plan = await _plan(platform, "hh-e")
    assert {m["code"]: m["status"] for m in plan["measures"]}["education_aid"] == "in_progress"


async def test_rules_6_1_identified_again_the_help_that_outlived_elimination_joins_the_new_plan(
    platform: Platform,
) -> None:
    """Education aid under way outlived the elimination (rules §6.7); a new shock has the
    household identified again: the new plan holds that aid as it stands, and plans no second
    one for the same student, only what the new risk needs."""
    await platform.identify("hh-a", [WORKER, STUDENT], ["schooling"])
    first = await _plan(platform, "hh-a")
    aid = next(m["measure_id"] for m in first["measures"] if m["code"] == "education_aid")
    village = platform.auth("village", VILLAGE, "c-vil")
    moved = await platform.http.post(
        f"/v1/measures/{aid}/transitions", json={"status": "in_progress"}, headers=village
    )
    assert moved.status_code == 200, moved.text
    await _case_event(platform, "hh-a", RiskEliminated(case_id="elim-hh-a", village_code=VILLAGE))

    platform.clock.advance(timedelta(days=60))
    event = new_event(
        HouseholdIdentified(
            case_id="case2-hh-a", village_code=VILLAGE, kind="marginal",
            risk_types=["schooling", "illness"], reasons=[], members=[WORKER, STUDENT],
            per_capita_income=5200,
        ),
        household_id="hh-a", source="risk", correlation_id="c2", clock=platform.clock,
    )  # fmt: skip
    async with platform.runtime.uow() as uow:
        await handlers.on_household_identified(uow=uow, event=event, settings=platform.settings)

    plan = await _plan(platform, "hh-a")
    assert plan["plan_id"] != first["plan_id"] and plan["status"] == "active"
    codes = [(m["code"], m["status"]) for m in plan["measures"]]
    assert codes.count(("education_aid", "in_progress")) == 1, codes
    assert [c for c, _ in codes].count("education_aid") == 1, codes
    assert ("medical_aid", "planned") in codes
    listed = await platform.http.get(
        "/v1/measures", params={"household_id": "hh-a"},
        headers=platform.auth("village", VILLAGE, "c-vil"),
    )  # fmt: skip
    assert [m["code"] for m in listed.json()].count("education_aid") == 1
