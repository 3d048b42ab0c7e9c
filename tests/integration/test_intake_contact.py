"""rules §9: an official an alert sends to a household reads how to reach it (intake's
GET /v1/submissions/{id}/contact), and every read is recorded and can be audited."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.intake import handlers
from services.intake.app import create_app
from services.intake.config import IntakeSettings
from services.intake.models import contact_reads
from shared.auth import Role, mint_token
from shared.clock import SystemClock
from shared.events import CaseOpened, new_event
from shared.migrations import upgrade
from tests.integration.test_intake_api import (
    APP,
    ID_A,
    ID_B,
    cadre_report,
    declaration,
    registry_household,
)

pytestmark = [pytest.mark.postgres]
HOUSING = {"X-API-Key": "dev-housing-key"}
TOWN = "530102001"
PHONE = "13812345678"


def bearer(role: Role, jurisdiction: str, subject: str = "cadre-7") -> dict[str, str]:
    signed = mint_token(
        subject=subject, role=role, jurisdiction=jurisdiction, clock=SystemClock(),
        secret=IntakeSettings().jwt_secret.get_secret_value(),
    )  # fmt: skip
    return {"Authorization": f"Bearer {signed}"}


@pytest.fixture
async def intake(pg_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """Intake in-process on a fresh database (no Kafka: the outbox just waits)."""
    app = create_app(IntakeSettings(database_url=pg_url, rate_contact_per_official=5))
    await upgrade(pg_url, app.state.runtime.service_dir)
    transport = httpx.ASGITransport(app=app, client=("10.4.4.4", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        yield http, app
    await app.state.runtime.engine.dispose()


async def _declare(http: httpx.AsyncClient, **changes: Any) -> str:
    body = declaration(phone=PHONE, description="父亲住院", medical_spending=30000) | changes
    answer = await http.post("/v1/declarations", json=body, headers=APP)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["submission_id"])


async def _reads(app: FastAPI, submission_id: str) -> int:
    async with app.state.runtime.uow() as uow:
        query = select(func.count()).where(contact_reads.c.submission_id == submission_id)
        return int((await uow.execute(query)).scalar_one())


async def test_an_official_of_the_village_reads_the_phone_and_what_the_farmer_wrote(
    intake: tuple[httpx.AsyncClient, FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    http, app = intake
    sent = declaration(phone=PHONE, description="父亲住院", medical_spending=30000)
    submission = await _declare(http)
    # risk opened the case: the contact carries the stage the alert is about
    runtime = app.state.runtime
    now = datetime.now(UTC)
    opened = CaseOpened(
        case_id="case-1", village_code=sent["village_code"], risk_types=["illness"],
        channel="app", opened_at=now, deadline=now + timedelta(days=15),
        submission_id=submission,
    )  # fmt: skip
    event = new_event(opened, household_id="hh-x", source="risk", correlation_id=submission,
                      clock=runtime.clock)  # fmt: skip
    async with runtime.uow() as uow:
        await handlers.on_case_event(uow=uow, event=event)

    with caplog.at_level(logging.INFO):
        answer = await http.get(
            f"/v1/submissions/{submission}/contact", headers=bearer("village", TOWN)
        )
    assert answer.status_code == 200, answer.text
    contact = answer.json()
    assert contact["phone"] == PHONE and contact["phone_masked"] == "138****5678"
    assert contact["declarant_name"] == sent["declarant_name"]
    assert contact["description"] == "父亲住院"
    assert contact["risk_types"] == sent["risk_types"]
    assert contact["amounts"]["medical_spending"] == 30000
    assert contact["village_code"] == sent["village_code"] and contact["kind"] == "declaration"
    assert contact["stage"] == "case_opened" and contact["case_id"] == "case-1"
    # the resident ID only masked, never in full
    full_id = sent["declarant_id"]
    assert contact["declarant_id_masked"].startswith(full_id[:6])
    assert "*" in contact["declarant_id_masked"]
    assert full_id not in answer.text and full_id[:17] not in answer.text
    # one INFO line says who read which submission, without the phone or the ID
    lines = [r for r in caplog.records if r.name == "services.intake.contact"]
    assert [(r.levelname, submission in r.getMessage(), "cadre-7" in r.getMessage())
            for r in lines] == [("INFO", True, True)]  # fmt: skip
    assert PHONE not in caplog.text and full_id[:17] not in caplog.text

    # the read is recorded: a county official sees who read it
    county = bearer("county", "530102", subject="county-1")
    audit = await http.get(f"/v1/submissions/{submission}/contact/audit", headers=county)
    assert audit.status_code == 200, audit.text
    [entry] = audit.json()
    assert (entry["subject"], entry["role"], entry["jurisdiction"]) == ("cadre-7", "village", TOWN)
    assert abs(datetime.fromisoformat(entry["read_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    # reading the audit is no read of the contact
    assert await _reads(app, submission) == 1


def refusals() -> list[tuple[str, dict[str, str], int, str]]:
    """Who may not read a village-001 household's contact (or list its submissions): who, their
    headers, the status and the field its message names."""
    return [
        ("no credentials", {}, 401, "Authorization"),
        ("the app key (farmers)", APP, 401, "Authorization"),
        ("a forged token", {"Authorization": "Bearer abc.def.ghi"}, 401, "Authorization"),
        ("a department's key", HOUSING, 403, "role"),
        ("a village cadre of another village", bearer("village", "530102002"), 403,
         "village_code"),
        ("a county official elsewhere", bearer("county", "110105"), 403, "village_code"),
    ]  # fmt: skip


async def test_who_may_read_a_contact_and_nothing_is_recorded_for_a_refusal(
    intake: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    http, app = intake
    submission = await _declare(http)
    url = f"/v1/submissions/{submission}/contact"
    for who, headers, code, field in refusals():
        answer = await http.get(url, headers=headers)
        assert answer.status_code == code, (who, answer.text)
        assert answer.json()["detail"].split(":")[0] == field, (who, answer.text)
    assert await _reads(app, submission) == 0
    for role, where in (("township", TOWN), ("county", "530102"), ("admin", "")):
        answer = await http.get(url, headers=bearer(role, where, subject=f"{role}-1"))  # type: ignore[arg-type]
        assert answer.status_code == 200, (role, answer.text)
    assert await _reads(app, submission) == 3
    unknown = await http.get(f"/v1/submissions/{uuid.uuid4()}/contact", headers=bearer("admin", ""))
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith("submission_id:")

    audit = f"{url}/audit"
    for who, headers, code, field in [
        ("a township official", bearer("township", TOWN), 403, "role"),
        ("a county official elsewhere", bearer("county", "110105"), 403, "village_code"),
        ("the app key", APP, 401, "Authorization"),
    ]:
        answer = await http.get(audit, headers=headers)
        assert answer.status_code == code, (who, answer.text)
        assert answer.json()["detail"].split(":")[0] == field, (who, answer.text)
    listed = await http.get(audit, headers=bearer("admin", ""), params={"limit": 2})
    assert [e["subject"] for e in listed.json()] == ["admin-1", "county-1"]


async def test_a_cadre_report_names_its_cadre_and_members_masked_and_a_registry_sync_no_one(
    intake: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    http, _ = intake
    village = bearer("village", TOWN, subject="cadre-9")
    report = cadre_report(description="山洪冲毁住房")
    answer = await http.post("/v1/cadre-reports", json=report, headers=village)
    assert answer.status_code == 202, answer.text
    contact = await http.get(
        f"/v1/submissions/{answer.json()['submission_id']}/contact", headers=village
    )
    assert contact.status_code == 200, contact.text
    body = contact.json()
    assert body["kind"] == "cadre_report" and body["reported_by"] == "cadre-9"
    assert [m["name"] for m in body["members"]] == ["李桂兰", "王强"]
    assert body["description"] == "山洪冲毁住房" and body["amounts"]["loss_amount"] == 18000
    assert body["phone"] is None and body["declarant_name"] is None
    for full_id in (ID_A, ID_B):
        assert full_id[:17] not in contact.text
    sync = {"households": [registry_household(ID_A, 7000, village="530102001001")]}
    synced = await http.post("/v1/registry", json=sync, headers=bearer("county", "530102"))
    assert synced.status_code == 202, synced.text
    registry = await http.get(
        f"/v1/submissions/{synced.json()['submission_id']}/contact", headers=bearer("admin", "")
    )
    assert registry.status_code == 404 and registry.json()["detail"].startswith("submission_id:")


async def test_contact_reads_are_rate_limited_per_official(
    intake: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    http, app = intake
    submission = await _declare(http)
    url = f"/v1/submissions/{submission}/contact"
    for _ in range(5):  # rate_contact_per_official=5
        assert (await http.get(url, headers=bearer("village", TOWN))).status_code == 200
    limited = await http.get(url, headers=bearer("village", TOWN))
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["detail"].startswith("Authorization:")
    # another official is not held back by this one's reads; the refused read is not recorded
    other = await http.get(url, headers=bearer("village", TOWN, subject="cadre-8"))
    assert other.status_code == 200, other.text
    assert await _reads(app, submission) == 6
