"""A department record naming no village, about a person risk has never heard of, opens a case
its county can see and place (rules §9.4): held under the county of the resident ID until the
county assigns a village, which notify then tells to verify at home (rules §4.2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.notify import handlers as notify_handlers
from services.risk import handlers
from services.risk.models import outbox as risk_outbox
from shared.clock import FrozenClock
from shared.events import Envelope, FeedRecord, FeedRecordsReceived, decode
from shared.migrations import upgrade
from tests.conftest import new_database
from tests.integration.test_notify_escalation import NOON_BEIJING, Recorder, roster
from tests.integration.test_notify_escalation import Platform as Notify
from tests.integration.test_risk_workflow_api import Platform, risk_platform

pytestmark = [pytest.mark.postgres]
COUNTY = "530102"
HELD = COUNTY + "000000"  # rules §9.4: township 000, village 000: not placed yet
VILLAGE = "530102001001"  # the roster's village (tests/integration/test_notify_escalation.py)


@pytest.fixture
async def risk(pg_url: str) -> AsyncIterator[Platform]:
    async with risk_platform(pg_url) as built:
        yield built


async def _unknown_person_in_hospital(risk: Platform, household: str, masked: str) -> None:
    """The reviewer's row: medical insurance, no village_code, a person not in the registry,
    40,000 yuan out of pocket (rules §2.3, §5.1: the green channel)."""
    record = FeedRecord(
        line=1, household_id=household, person_id_hash=f"h-{household}",
        person_id_masked=masked, recorded_on=date(2026, 3, 1),
        facts={"out_of_pocket_spending": 40000},
    )  # fmt: skip
    await risk.signal(
        handlers.on_feed_slice,
        FeedRecordsReceived(batch_id="b-1", department="medical_insurance", records=[record]),
        household,
    )


async def _listed(risk: Platform, role: Any, jurisdiction: str, **params: str) -> list[str]:
    answer = await risk.http.get("/v1/cases", params=params, headers=risk.auth(role, jurisdiction))
    assert answer.status_code == 200, answer.text
    return [c["village_code"] for c in answer.json()]


async def _place(
    risk: Platform, case_id: str, village: Any, role: Any = "county", where: str = COUNTY
) -> Any:
    body = {"action": "assign_village", "village_code": village}
    if village is None:
        del body["village_code"]
    return await risk.http.post(
        f"/v1/cases/{case_id}/actions", json=body, headers=risk.auth(role, where)
    )


async def test_a_case_without_village_is_held_by_its_county_until_placed(risk: Platform) -> None:
    await _unknown_person_in_hospital(risk, "hh-u", "530102***********1")
    # rules §9.2: a placeholder region names no county: held nowhere, as before (admins only)
    await _unknown_person_in_hospital(risk, "hh-x", "999999***********1")

    # the county sees the case under its placeholder, green channel and all; the township not
    [case] = (
        await risk.http.get(
            "/v1/cases", params={"status": "open", "household_id": "hh-u"},
            headers=risk.auth("county", COUNTY),
        )
    ).json()  # fmt: skip
    assert (case["village_code"], case["green_channel"]) == (HELD, True)
    case_id = case["case_id"]
    url = f"/v1/cases/{case_id}"
    seen = await risk.http.get(url, headers=risk.auth("county", COUNTY))
    assert seen.status_code == 200, seen.text
    # the threshold in force for the county was found (Yunnan's, rules §2.1)
    [income] = [r for r in seen.json()["reasons"] if r["rule"] == "rules §2.1"]
    assert income["threshold"] == 8700
    assert await _listed(risk, "township", "530102001") == []
    refused = await risk.http.get(url, headers=risk.auth("township", "530102001"))
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "village_code: no village yet (530102000000); county 530102 holds it until it places "
        "it, outside your jurisdiction 530102001"
    )
    # the county's worklist of unplaced cases (an admin also sees the one held nowhere)
    assert await _listed(risk, "county", COUNTY, status="open", unplaced="true") == [HELD]
    assert await _listed(risk, "county", COUNTY, unplaced="false") == []
    assert sorted(await _listed(risk, "admin", "", unplaced="true")) == ["", HELD]
    [nowhere] = [
        c for c in (await risk.http.get("/v1/cases", headers=risk.auth("admin", ""))).json()
        if c["household_id"] == "hh-x"
    ]  # fmt: skip
    held_nowhere = await risk.http.get(
        f"/v1/cases/{nowhere['case_id']}", headers=risk.auth("county", COUNTY)
    )
    assert held_nowhere.status_code == 403
    assert "no village yet, and no county holds it" in held_nowhere.json()["detail"]

    # refused: the wrong role, another county's village, not a village, no village at all
    township = await _place(risk, case_id, VILLAGE, role="township")
    assert township.status_code == 403 and township.json()["detail"].startswith("role:")
    foreign = await _place(risk, case_id, "530103001001", role="admin")
    assert foreign.status_code == 409
    assert foreign.json()["detail"] == (
        "village_code: 530103001001 is not in 530102, the county of the case (530102000000)"
    )
    for code in ("530102001000", "53010200100", "５３０１０２００１００１"):
        malformed = await _place(risk, case_id, code)
        assert malformed.status_code == 422, code
        assert "village_code" in malformed.text, malformed.text
    missing = await _place(risk, case_id, None)
    assert missing.status_code == 422
    assert missing.json()["detail"] == "village_code: required with assign_village"
    stray = await risk.http.post(
        f"{url}/actions", json={"action": "complete_data_comparison", "village_code": VILLAGE},
        headers=risk.auth("county", COUNTY),
    )  # fmt: skip
    assert stray.status_code == 422 and stray.json()["detail"].startswith("village_code:")

    # the county places it: the case and its household move, the history says from where
    placed = await _place(risk, case_id, VILLAGE)
    assert placed.status_code == 200, placed.text
    detail = placed.json()
    assert (detail["village_code"], detail["stage"]) == (VILLAGE, "risk_discovered")
    assert detail["history"][-1] | {"at": None} == {
        "at": None, "actor": "county-1", "role": "county", "action": "assign_village",
        "from_stage": "risk_discovered", "to_stage": "risk_discovered",
        "note": "village_code 530102000000 -> 530102001001",
    }  # fmt: skip
    household = await risk.http.get("/v1/households/hh-u", headers=risk.auth("village", VILLAGE))
    assert household.status_code == 200 and household.json()["village_code"] == VILLAGE
    assert await _listed(risk, "township", "530102001") == [VILLAGE]
    assert await _listed(risk, "county", COUNTY, unplaced="true") == []
    again = await _place(risk, case_id, VILLAGE)
    assert again.status_code == 409 and again.json()["detail"].startswith("village_code:")
    [step] = await risk.events("CaseStepCompleted")
    assert (step.payload.step, step.payload.village_code, step.payload.role) == (
        "village_assigned", VILLAGE, "county",
    )  # fmt: skip
    assert step.payload.purpose == "identification"  # a department record's case
    assert "530102000000 -> 530102001001" in step.payload.note

    # the village's later records keep it there: a record without village reads the household
    await _unknown_person_in_hospital(risk, "hh-u", "530102***********1")
    assert (await risk.http.get(url, headers=risk.auth("village", VILLAGE))).status_code == 200

    # a closed case is not moved (rules §4.7: rejected at township review)
    for role, action, body in (
        ("village", "start_home_verification", {}),
        ("village", "complete_home_verification", {"signed_form": True}),
        ("county", "complete_data_comparison", {}),
        ("village", "post_public_notice", {}),
    ):
        assert (await risk.act(case_id, role, action, **body)).status_code == 200, action
    risk.clock.advance(timedelta(days=risk.settings.public_notice_days))
    assert (await risk.act(case_id, "village", "complete_village_appraisal")).status_code == 200
    assert (await risk.act(case_id, "township", "reject", reason="收入高")).status_code == 200
    closed = await _place(risk, case_id, "530102001002")
    assert closed.status_code == 409
    assert closed.json()["detail"] == "case_id: the case is closed (rejected)"


async def _published(risk: Platform) -> list[Envelope[Any]]:
    async with risk.runtime.uow() as uow:
        rows = await uow.execute(select(risk_outbox.c.value).order_by(risk_outbox.c.id))
        return [decode(v) for v in rows.scalars()]


async def test_notify_reaches_the_county_then_the_village_it_placed_the_case_in(
    risk: Platform,
) -> None:
    await _unknown_person_in_hospital(risk, "hh-u", "530102***********1")
    [case] = (await risk.http.get("/v1/cases", headers=risk.auth("county", COUNTY))).json()
    assert (await _place(risk, case["case_id"], VILLAGE)).status_code == 200
    published = await _published(risk)
    assert [e.event_type for e in published] == [
        "CaseOpened", "GreenChannelOpened", "CaseStepCompleted",
    ]  # fmt: skip

    recorder = Recorder()
    p = Notify(await new_database(), recorder, FrozenClock(NOON_BEIJING))
    try:
        await upgrade(p.settings.database_url, p.runtime.service_dir)
        async with p.runtime.uow() as uow:
            await notify_handlers.on_events(
                uow=uow, events=[*roster(p, recorder.base), *published], settings=p.settings
            )
        rows = await p.rows()
    finally:
        await p.runtime.engine.dispose()
        recorder.server.shutdown()
        recorder.server.server_close()
    got = sorted((r.event_type, r.recipient, r.priority) for r in rows)
    assert got == [
        # rules §4.10: the placeholder has no village cadre: the county office hears of it
        ("CaseOpened", "office:county", "normal"),
        # rules §9.4: the village the county placed it in must verify at home (rules §4.2)
        ("CaseStepCompleted", "cadre:v1", "normal"),
        # rules §5.2: the county's leader at once; no township, no responsible cadre: the office
        ("GreenChannelOpened", "cadre:k1", "urgent"),
        ("GreenChannelOpened", "office:county", "urgent"),
    ]
    [placed] = [r for r in rows if r.event_type == "CaseStepCompleted"]
    assert placed.body["text"] == (
        "【防返贫】农户hh-u的风险案件已由县级划归本村，请尽快入户核实并收取签字承诺书"
    )
    assert placed.body["village_code"] == VILLAGE
