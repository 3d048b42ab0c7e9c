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


async def test_a_stopped_loop_fails_the_liveness_probe_so_the_service_is_restarted(
    tmp_path: Path,
) -> None:
    """A consumer or dispatcher loop that ended leaves a process that answers HTTP but does no
    work: /healthz (the liveness probe) and /readyz fail and name it, and a gauge says so."""
    settings = IntakeSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}",
        kafka_bootstrap="127.0.0.1:9",
    )
    app = create_app(settings)
    runtime = app.state.runtime
    failed = asyncio.Event()

    async def statuses(runtime: object) -> None:
        await failed.wait()
        raise RuntimeError("statuses table missing")

    runtime.background.append(statuses)
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t"
        ) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok", "service": "intake"}
            assert (await http.get("/readyz")).json()["checks"]["background"] == "ok"
            failed.set()
            await asyncio.sleep(0.05)
            live = await http.get("/healthz")
            assert live.status_code == 503
            assert live.json()["stopped"] == {"statuses": "RuntimeError('statuses table missing')"}
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["background"] == (
                "error: stopped: statuses (RuntimeError('statuses table missing'))"
            )
            scraped = (await http.get("/metrics")).text
            assert (
                'holdline_background_loop_stopped{service="intake",task="statuses"} 1.0' in scraped
            )
    finally:
        await runtime.stop()
