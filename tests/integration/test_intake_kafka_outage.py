"""Accepted means durable: intake answers 202 with Kafka stopped, publishes once when it returns."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.demo import demo_declarations, free_port
from shared import infra
from shared.events import decode
from tests.conftest import new_database
from tests.support import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


async def test_intake_accepts_while_kafka_is_down_and_publishes_exactly_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    env = os.environ | {
        "HOLDLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HOLDLINE_TOPIC_PREFIX": topic_prefix,
        "HOLDLINE_INTAKE_PORT": str(port),
        "HOLDLINE_INTAKE_DATABASE_URL": await new_database(),
        "HOLDLINE_OUTBOX_METRICS_SECONDS": "0.5",
    }
    log = tmp_path / "intake.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "intake"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            timeout=10, headers={"X-App-Key": "holdline-dev-app-key"}
        ) as http:

            async def ready() -> bool:
                return (await http.get(f"{url}/readyz")).status_code == 200

            await _wait(ready, 60, "intake to be ready")
            infra.stop_kafka()
            accepted = []
            for body in demo_declarations(3, seed=11):
                answer = await http.post(f"{url}/v1/declarations", json=body)
                assert answer.status_code == 202, answer.text
                accepted.append(answer.json())
            statuses = [
                (await http.get(f"{url}{a['status_url']}")).json()["status"] for a in accepted
            ]
            assert statuses == ["received"] * len(accepted)
            assert (await http.get(f"{url}/readyz")).status_code == 503

            async def gauges() -> dict[str, float]:
                text = (await http.get(f"{url}/metrics")).text
                return {
                    line.split("{")[0]: float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("holdline_outbox_") and 'service="intake"' in line
                }

            async def stuck_outbox_shows() -> bool:
                # the stuck-outbox alert reads these while the relay's sends wait for the broker
                seen = await gauges()
                return (
                    seen.get("holdline_outbox_backlog") == len(accepted)
                    and seen.get("holdline_outbox_oldest_age_seconds", 0) > 1
                )

            await _wait(stuck_outbox_shows, 30, "the outbox gauges to show the waiting rows")
            infra.start_kafka()

            async def all_published() -> bool:
                for a in accepted:
                    status = (await http.get(f"{url}{a['status_url']}")).json()["status"]
                    if status != "published":
                        return False
                return True

            await _wait(all_published, 120, "the outbox to drain after Kafka returned")

            async def outbox_empty() -> bool:
                return (await gauges()).get("holdline_outbox_backlog") == 0

            await _wait(outbox_empty, 30, "the outbox gauges to show an empty outbox")
    finally:
        if not infra.kafka_running():
            infra.start_kafka()
        proc.terminate()
        proc.wait(20)
    records = await read_topic(kafka_bootstrap, f"{topic_prefix}signals.v1", expect=len(accepted))
    published = sorted(decode(r.value).payload.submission_id for r in records)
    assert published == sorted(a["submission_id"] for a in accepted), log.read_text()[-2000:]
