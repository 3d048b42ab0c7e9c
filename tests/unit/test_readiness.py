"""/readyz: database and Kafka by default; intake can be told to stay ready without Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app
from services.intake.config import IntakeSettings
from shared.service import report_stopped


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


async def test_a_background_loop_that_stops_on_an_error_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def relay() -> None:
        raise ConnectionError("database away")

    async def consumer() -> None:
        await asyncio.sleep(60)

    failed = asyncio.create_task(relay(), name="kafka")
    failed.add_done_callback(report_stopped)
    stopped = asyncio.create_task(consumer(), name="consumer")
    stopped.add_done_callback(report_stopped)
    with caplog.at_level(logging.CRITICAL, logger="shared.service"):
        with contextlib.suppress(ConnectionError):
            await failed
        stopped.cancel()  # a graceful stop is not an error
        with contextlib.suppress(asyncio.CancelledError):
            await stopped
        await asyncio.sleep(0)
    assert [r.getMessage() for r in caplog.records] == [
        "background task kafka stopped: ConnectionError('database away'); restart the service"
    ]
