"""Notify's listing filters take only the values a notification can have (422 naming the
parameter otherwise), on real PostgreSQL; the OpenAPI document lists them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.notify import handlers
from services.notify.app import create_app
from services.notify.config import NotifySettings
from shared.auth import mint_token
from shared.clock import SystemClock
from shared.events import CaseOpened, new_event
from shared.migrations import upgrade
from shared.service import Runtime

pytestmark = [pytest.mark.postgres]
VILLAGE = "530102001001"
STATUSES = ["pending", "held", "digested", "delivered", "failed"]


@pytest.fixture
async def api(pg_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The notify app on a fresh database holding one pending notification, and a county token."""
    settings = NotifySettings(database_url=pg_url, quiet_hours_start=0, quiet_hours_end=0)
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    await upgrade(pg_url, runtime.service_dir)
    now = datetime.now(UTC)
    opened = CaseOpened(
        case_id=str(uuid.uuid4()), village_code=VILLAGE, risk_types=["illness"], channel="app",
        opened_at=now, deadline=now + timedelta(days=15),
    )  # fmt: skip
    event = new_event(
        opened, household_id="hh-1", source="test", correlation_id="c", clock=runtime.clock
    )
    async with runtime.uow() as uow:
        await handlers.on_routed_event(uow=uow, event=event, settings=settings)
    token = mint_token(
        subject="county-1", role="county", jurisdiction="530102", clock=SystemClock(),
        secret=settings.jwt_secret.get_secret_value(),
    )  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as http:
        yield http, {"Authorization": f"Bearer {token}"}
    await runtime.engine.dispose()


@pytest.mark.parametrize("value", ["bogus", "PENDING", "dead", ""])
async def test_an_unknown_notification_status_is_refused_naming_it(
    api: tuple[httpx.AsyncClient, dict[str, str]], value: str
) -> None:
    http, county = api
    answer = await http.get("/v1/notifications", params={"status": value}, headers=county)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["status"]


async def test_the_known_statuses_filter_and_are_documented(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    http, county = api
    for status in STATUSES:
        answer = await http.get("/v1/notifications", params={"status": status}, headers=county)
        assert answer.status_code == 200, answer.text
        assert {n["status"] for n in answer.json()} <= {status}
    pending = await http.get("/v1/notifications", params={"status": "pending"}, headers=county)
    assert len(pending.json()) >= 1
    spec = (await http.get("/openapi.json")).json()
    [param] = [
        p for p in spec["paths"]["/v1/notifications"]["get"]["parameters"] if p["name"] == "status"
    ]
    assert sorted(param["schema"]["anyOf"][0]["enum"]) == sorted(STATUSES)
