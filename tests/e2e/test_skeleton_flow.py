"""The four services as processes: a declaration in, exactly one webhook call out."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.demo import Receiver, demo_declarations, official_headers
from tests.conftest import new_database
from tests.support import wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]
SERVICES = ("intake", "risk", "assistance", "notify")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def platform(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> Iterator[tuple[dict[str, str], Receiver]]:  # type: ignore[misc]
    receiver = Receiver()
    env = os.environ | {
        "HOLDLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HOLDLINE_TOPIC_PREFIX": topic_prefix,
        "HOLDLINE_NOTIFY_WEBHOOK_URL": receiver.url,
        "HOLDLINE_NOTIFY_RETRY_BASE_SECONDS": "0.2",
    }
    urls = {}
    for name in SERVICES:
        port = _free_port()
        env[f"HOLDLINE_{name.upper()}_PORT"] = str(port)
        env[f"HOLDLINE_{name.upper()}_DATABASE_URL"] = await new_database()
        urls[name] = f"http://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", name],
            env=env,
            stdout=(tmp_path / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for name in SERVICES
    ]
    try:
        async with httpx.AsyncClient() as http:
            for name in SERVICES:
                await wait_ready(http, f"{urls[name]}/readyz", tmp_path / f"{name}.log")
        yield urls, receiver
    finally:
        for proc in procs:
            proc.terminate()
        for name, proc in zip(SERVICES, procs, strict=True):
            proc.wait(30)
            # uvicorn re-raises SIGTERM after its graceful shutdown, so the code is -15
            log = (tmp_path / f"{name}.log").read_text()
            assert "Application shutdown complete" in log, f"{name} did not stop cleanly:\n{log}"
        receiver.close()


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_declaration_reaches_the_cadre_webhook_exactly_once(platform) -> None:  # type: ignore[no-untyped-def]
    urls, receiver = platform
    body = demo_declarations(1)[0]
    async with httpx.AsyncClient(timeout=10, headers={"X-App-Key": "holdline-dev-app-key"}) as http:
        answer = await http.post(f"{urls['intake']}/v1/declarations", json=body)
        assert answer.status_code == 202, answer.text
        household = answer.json()["household_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not receiver.calls:
            await _sleep(0.2)
        await _sleep(2)  # any duplicate would arrive within this window
        # notify routes other events too (e.g. GreenChannelOpened to the county office):
        # the declaration's CaseOpened must reach the fallback webhook exactly once
        calls = [
            c
            for c in receiver.calls
            if c["household_id"] == household and c.get("event_type") == "CaseOpened"
        ]
        assert len(calls) == 1, receiver.calls
        # the alert names the family by the declarant (rules §4.13), the body keeps the id
        assert calls[0]["household_name"] == body["declarant_name"]
        assert (
            f"{body['declarant_name']}户" in calls[0]["text"] and household not in calls[0]["text"]
        )
        case = (
            await http.get(
                f"{urls['risk']}/v1/cases",
                params={"household_id": household},
                headers=official_headers("village", body["village_code"]),
            )
        ).json()
        assert len(case) == 1
        assert calls[0]["deadline"] == case[0]["deadline"].replace("Z", "+00:00")
        status = (await http.get(f"{urls['intake']}{answer.json()['status_url']}")).json()
        assert status["status"] == "published"
        for name in SERVICES:
            assert (await http.get(f"{urls[name]}/metrics")).status_code == 200
