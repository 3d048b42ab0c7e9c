"""rules §9: an alert names the household (and, for later steps or a feed's case, the case), not
a submission; intake's GET /v1/households/{household_id}/submissions lists the household's
declarations and cadre reports, for the officials covering their villages, with the path of each
one's contact and nothing of the contact itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from services.intake import handlers
from services.intake.app import create_app
from services.intake.config import IntakeSettings
from services.intake.models import contact_reads, submissions
from shared.events import CaseOpened, new_event
from shared.migrations import upgrade
from tests.integration.test_intake_api import APP, ID_A, ID_B, cadre_report, declaration
from tests.integration.test_intake_contact import PHONE, TOWN, bearer, refusals

pytestmark = [pytest.mark.postgres]
VILLAGE = TOWN + "001"  # where declaration() lives
HH = "hh-alerted"


@pytest.fixture
async def intake(pg_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """Intake in-process on a fresh database (no Kafka: the outbox just waits)."""
    app = create_app(IntakeSettings(database_url=pg_url))
    await upgrade(pg_url, app.state.runtime.service_dir)
    transport = httpx.ASGITransport(app=app, client=("10.4.4.5", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        yield http, app
    await app.state.runtime.engine.dispose()


def url(household: str = HH) -> str:
    return f"/v1/households/{household}/submissions"


async def _declare(http: httpx.AsyncClient, **changes: Any) -> str:
    body = declaration(phone=PHONE, description="父亲住院") | changes
    answer = await http.post("/v1/declarations", json=body, headers=APP)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["submission_id"])


async def _report(http: httpx.AsyncClient, village: str = VILLAGE, **changes: Any) -> str:
    body = cadre_report(household_id=HH, village_code=village) | changes
    answer = await http.post("/v1/cadre-reports", json=body, headers=bearer("village", village))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["submission_id"])


async def _open_case(app: FastAPI, submission: str, case_id: str) -> None:
    runtime, now = app.state.runtime, datetime.now(UTC)
    opened = CaseOpened(
        case_id=case_id, village_code=VILLAGE, risk_types=["illness"], channel="app",
        opened_at=now, deadline=now + timedelta(days=15), submission_id=submission,
    )  # fmt: skip
    event = new_event(opened, household_id=HH, source="risk", correlation_id=submission,
                      clock=runtime.clock)  # fmt: skip
    async with runtime.uow() as uow:
        await handlers.on_case_event(uow=uow, event=event)


async def _other_kind(app: FastAPI, kind: str) -> str:
    """A submission of the household that names no one to reach, in its village."""
    ident = str(uuid.uuid4())
    async with app.state.runtime.uow() as uow:
        await uow.execute(insert(submissions).values(
            id=ident, kind=kind, household_id=HH, event_id="", body_hash="-", body={},
            received_at=datetime.now(UTC), village_code=VILLAGE,
        ))  # fmt: skip
    return ident


async def test_an_alerted_official_finds_the_households_submissions_and_their_contact(
    intake: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    http, app = intake
    first = await _declare(http, household_id=HH)
    report = await _report(http, description="山洪冲毁住房")
    newest = await _declare(http, household_id=HH, risk_types=["disaster"])
    await _declare(http, household_id="hh-neighbour")
    await _open_case(app, first, "case-1")
    # a registry sync of the household names no one to reach: never listed
    await _other_kind(app, "registry")
    synced = await http.post(
        "/v1/registry", headers=bearer("county", "530102"),
        json={"households": [{"household_id": HH, "village_code": VILLAGE,
                              "baseline_status": "formerly_poor", "per_capita_income": 7000,
                              "members": [{"resident_id": ID_A, "name": "赵德明"}]}]},
    )  # fmt: skip
    assert synced.status_code == 202, synced.text

    village = bearer("village", TOWN)
    answer = await http.get(url(), headers=village)
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert [s["submission_id"] for s in listed] == [newest, report, first]  # newest first
    assert [s["kind"] for s in listed] == ["declaration", "cadre_report", "declaration"]
    for item in listed:
        # stage, case and outcome as the submission's own status shows them
        status = (await http.get(f"/v1/submissions/{item['submission_id']}", headers=APP)).json()
        for field in ("stage", "case_id", "outcome", "outcome_reason", "green_channel",
                      "decided_at", "received_at", "kind"):  # fmt: skip
            assert item[field] == status[field], (field, item, status)
        assert item["contact_url"] == f"/v1/submissions/{item['submission_id']}/contact"
    assert (listed[2]["stage"], listed[2]["case_id"]) == ("case_opened", "case-1")
    assert listed[0]["stage"] == "received" and listed[0]["case_id"] is None
    # nothing of the contact: no phone, name or resident ID, and no read recorded
    sent = declaration()
    for secret in (PHONE, "***", sent["declarant_name"], sent["declarant_id"][:10], ID_A[:10],
                   ID_B[:10], "李桂兰", "赵德明", "父亲住院", "山洪"):  # fmt: skip
        assert secret not in answer.text, secret
    async with app.state.runtime.uow() as uow:
        assert (await uow.execute(select(func.count()).select_from(contact_reads))).scalar() == 0
    # the path it gives is the contact read
    contact = await http.get(listed[2]["contact_url"], headers=village)
    assert contact.status_code == 200 and contact.json()["phone"] == PHONE

    # an alert about a later step carries the case id
    by_case = await http.get(url(), params={"case_id": "case-1"}, headers=village)
    assert [s["submission_id"] for s in by_case.json()] == [first]
    limited = await http.get(url(), params={"limit": 1}, headers=village)
    assert [s["submission_id"] for s in limited.json()] == [newest]
    for household, params in (("hh-nobody", {}), (HH, {"case_id": "case-2"})):
        missing = await http.get(url(household), params=params, headers=village)
        assert missing.status_code == 404, missing.text
        assert missing.json()["detail"].startswith(f"household_id: {household} has no ")


async def test_a_household_with_only_a_registry_or_feed_submission_has_none_to_list(
    intake: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    http, app = intake
    await _other_kind(app, "registry")
    await _other_kind(app, "feed")
    answer = await http.get(url(), headers=bearer("admin", ""))
    assert answer.status_code == 404, answer.text
    assert answer.json()["detail"].startswith("household_id:")


async def test_only_officials_covering_the_village_list_it(
    intake: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    """As the contact read: an official's token, never the app's or a department's key."""
    http, _ = intake
    submission = await _declare(http, household_id=HH)
    for who, headers, code, field in refusals():
        answer = await http.get(url(), headers=headers)
        assert answer.status_code == code, (who, answer.text)
        assert answer.json()["detail"].split(":")[0] == field, (who, answer.text)
    for role, where in (("village", TOWN), ("township", TOWN), ("county", "530102"), ("admin", "")):
        answer = await http.get(url(), headers=bearer(role, where, subject=f"{role}-1"))  # type: ignore[arg-type]
        assert answer.status_code == 200, (role, answer.text)
        assert [s["submission_id"] for s in answer.json()] == [submission]


async def test_a_household_across_villages_is_listed_as_far_as_the_official_covers_it(
    intake: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    http, _ = intake
    here = await _declare(http, household_id=HH)
    moved = await _report(http, village="530102002001")
    for who, where, expected in (
        ("village", TOWN, [here]), ("village", "530102002", [moved]),
        ("county", "530102", [moved, here]),
    ):  # fmt: skip
        answer = await http.get(url(), headers=bearer(who, where))  # type: ignore[arg-type]
        assert answer.status_code == 200, (where, answer.text)
        assert [s["submission_id"] for s in answer.json()] == expected, where
    # the limit counts what the official may see, not what lies elsewhere
    answer = await http.get(url(), params={"limit": 1}, headers=bearer("village", TOWN))
    assert [s["submission_id"] for s in answer.json()] == [here]
    outside = await http.get(url(), headers=bearer("village", "530102003"))
    assert outside.status_code == 403, outside.text
    assert outside.json()["detail"].startswith("village_code: 530102002001 is outside")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"case_id": ""}, "case_id"),
        ({"case_id": "c" * 37}, "case_id"),
    ],
)
async def test_a_bad_query_parameter_is_refused_naming_it(
    intake: tuple[httpx.AsyncClient, FastAPI], params: dict[str, Any], field: str
) -> None:
    http, _ = intake
    answer = await http.get(url(), params=params, headers=bearer("admin", ""))
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]
