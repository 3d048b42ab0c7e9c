"""/readyz: database and Kafka by default; intake can be told to stay ready without Kafka."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.intake.app import create_app
from services.intake.config import IntakeSettings


async def readyz(tmp_path: Path, **overrides: object) -> httpx.Response:
    settings = IntakeSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}",
        kafka_bootstrap="127.0.0.1:9",  # nothing listens there: Kafka is away
        **overrides,  # type: ignore[arg-type]
    )
    app = create_app(settings)  # lifespan not run: no producer was ever connected
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        return await http.get("/readyz")


async def test_kafka_away_means_not_ready_by_default(tmp_path: Path) -> None:
    answer = await readyz(tmp_path)
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"] == "ok"
    assert answer.json()["checks"]["kafka"].startswith("error")


async def test_intake_can_stay_ready_while_kafka_is_away(tmp_path: Path) -> None:
    """Submissions wait in the outbox during an outage, so a load balancer keeps sending them."""
    answer = await readyz(tmp_path, readiness_requires_kafka=False)
    assert answer.status_code == 200
    assert answer.json()["checks"]["kafka"].startswith("error"), "still reported"
