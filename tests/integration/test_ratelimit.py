"""Rate limits hold: the app's declarations per phone and per address, and the guessable
acknowledgement links per client; the requests let through are all kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.intake.app import create_app as intake_app
from services.intake.config import IntakeSettings
from services.notify import acks, handlers
from services.notify.app import create_app as notify_app
from services.notify.config import NotifySettings
from services.notify.models import notifications
from shared.events import CaseOpened
from shared.migrations import upgrade
from tests.integration.test_intake_api import APP, declaration
from tests.integration.test_security_matrix import _handle

pytestmark = [pytest.mark.postgres]


def _client(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://svc")


async def test_declarations_over_the_phone_and_address_limits_get_429_and_none_is_lost(
    pg_url: str,
) -> None:
    settings = IntakeSettings(
        database_url=pg_url, rate_per_phone=3, rate_per_ip=4, rate_window_seconds=3600
    )
    app = intake_app(settings)
    await upgrade(pg_url, app.state.runtime.service_dir)
    accepted: list[str] = []
    async with _client(app, "10.0.0.1") as http, _client(app, "10.0.0.2") as other:
        for n in range(4):  # N = 3 per phone, then one more
            answer = await http.post("/v1/declarations", json=declaration(), headers=APP)
            if n < 3:
                assert answer.status_code == 202, answer.text
                accepted.append(answer.json()["status_url"])
        assert answer.status_code == 429
        assert answer.json()["detail"].startswith("phone:")
        assert int(answer.headers["Retry-After"]) >= 1
        # the same phone is limited from any address; another phone is not
        again = await other.post("/v1/declarations", json=declaration(), headers=APP)
        assert again.status_code == 429 and again.json()["detail"].startswith("phone:")
        # 10.0.0.1 has used its 4 attempts (the refused one counts too)
        fresh = await http.post(
            "/v1/declarations", json=declaration(phone="13912345678"), headers=APP
        )
        assert fresh.status_code == 429 and fresh.json()["detail"].startswith("client:")
        third = await other.post(
            "/v1/declarations", json=declaration(phone="13912345678"), headers=APP
        )
        assert third.status_code == 202, third.text
        accepted.append(third.json()["status_url"])
        for status_url in accepted:  # every 202 was kept
            kept = await http.get(status_url, headers=APP)
            assert kept.status_code == 200, kept.text
    await app.state.runtime.engine.dispose()


async def test_acknowledgement_attempts_are_limited_per_client(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOLDLINE_NOTIFY_ACK_RATE_PER_CLIENT", "4")
    settings = NotifySettings(database_url=pg_url, quiet_hours_start=0, quiet_hours_end=0)
    app = notify_app(settings)
    await upgrade(pg_url, app.state.runtime.service_dir)
    now = datetime.now(UTC)
    opened = CaseOpened(
        case_id=str(uuid.uuid4()), village_code="530102001001", risk_types=["illness"],
        channel="app", opened_at=now, deadline=now + timedelta(days=15),
        home_visit_due=now + timedelta(days=2),
    )  # fmt: skip
    await _handle(app, handlers.on_routed_event, opened, "hh-acks")
    async with app.state.runtime.uow() as uow:
        notification = (await uow.execute(select(notifications.c.id))).scalars().first()
    assert notification is not None
    token = acks.sign(
        notification, expires_at=now + timedelta(hours=1),
        secret=settings.secret_key.get_secret_value(),
    )  # fmt: skip
    async with _client(app, "10.0.0.7") as guesser, _client(app, "10.0.0.8") as cadre:
        for n in range(4):
            guess = token[:-3] + f"{n:03d}"
            assert (await guesser.post(f"/v1/acks/{guess}")).status_code == 401
        locked = await guesser.post(f"/v1/acks/{token}")
        assert locked.status_code == 429, locked.text
        assert locked.json()["detail"].startswith("client:")
        assert int(locked.headers["Retry-After"]) >= 1
        # the page shows the alert, so a locked client does not read it either; another
        # client is not affected
        assert (await guesser.get(f"/v1/acks/{token}")).status_code == 429
        assert (await cadre.get(f"/v1/acks/{token}")).status_code == 200
        answer = await cadre.post(f"/v1/acks/{token}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["notification_id"] == notification
    await app.state.runtime.engine.dispose()
