"""A database that is away answers 503 with Retry-After, not a bare 500 (no server needed)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Request
from sqlalchemy.exc import DBAPIError

from bench.intake_declarations import APP_KEY, declarations
from services.intake.app import create_app as intake_app
from services.intake.config import IntakeSettings
from services.risk.app import create_app as risk_app
from services.risk.config import RiskSettings
from shared.auth import mint_token
from shared.clock import SystemClock
from shared.service import _database_unavailable
from shared.settings import ServiceSettings

NOWHERE = "postgresql+asyncpg://holdline:holdline@127.0.0.1:1/holdline_nowhere"


async def test_a_declaration_and_a_read_meet_a_refused_database_with_503() -> None:
    intake = intake_app(IntakeSettings(database_url=NOWHERE))
    transport = httpx.ASGITransport(app=intake)  # lifespan not run: no migrations, no relay
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        answer = await http.post(
            "/v1/declarations",
            content=declarations(1, seed=3)[0],
            headers={"X-App-Key": APP_KEY, "Content-Type": "application/json"},
        )
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["detail"].startswith("database: unavailable")

    risk = risk_app(RiskSettings(database_url=NOWHERE))
    token = mint_token(
        subject="o-1", role="county", jurisdiction="530102", clock=SystemClock(),
        secret=ServiceSettings().jwt_secret.get_secret_value(),
    )  # fmt: skip
    transport = httpx.ASGITransport(app=risk)
    async with httpx.AsyncClient(transport=transport, base_url="http://risk") as http:
        answer = await http.get("/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503, answer.text


async def test_only_a_statement_on_a_dead_connection_is_a_503() -> None:
    """SQLAlchemy's error of a connection it saw die is a 503; a statement's own error is not."""
    dead = DBAPIError("SELECT 1", None, ConnectionError("gone"), connection_invalidated=True)
    answer = await _database_unavailable(Request({"type": "http"}), dead)
    assert answer.status_code == 503
    own = DBAPIError("INSERT", None, ValueError("bad row"), connection_invalidated=False)
    with pytest.raises(DBAPIError):
        await _database_unavailable(Request({"type": "http"}), own)
