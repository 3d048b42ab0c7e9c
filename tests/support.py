"""Helpers the integration and e2e tests share: events, a Kafka reader, a webhook receiver."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

import services.risk
from services.demo import free_port
from services.risk.config import RiskSettings
from services.risk.models import metadata as risk_metadata
from shared.clock import SystemClock
from shared.events import DeclarationSubmitted, Envelope, new_event
from shared.kafka import ensure_topics
from shared.migrations import upgrade
from shared.service import Runtime
from shared.settings_errors import settings_problems


def refused_field(answer: httpx.Response) -> str:
    """The field a 422 names (FastAPI's field list, or a handler's `field: problem`)."""
    assert answer.status_code == 422, answer.text
    body: dict[str, Any] = answer.json()
    if body.get("errors"):
        return str(body["errors"][0]["field"])
    return str(body["detail"]).split(":", 1)[0]


def declaration_event(household_id: str | None = None) -> Envelope[DeclarationSubmitted]:
    """A DeclarationSubmitted as intake would publish it."""
    household = household_id or f"hh-{uuid.uuid4().hex[:8]}"
    submission = str(uuid.uuid4())
    return new_event(
        DeclarationSubmitted(
            submission_id=submission,
            declarant_name="王秀英",
            declarant_id_masked="530102***********3",
            village_code="530102001001",
            risk_types=["illness"],
            medical_spending=30000,
        ),
        household_id=household,
        source="test",
        correlation_id=submission,
        clock=SystemClock(),
    )


async def risk_runtime(
    kafka_bootstrap: str, pg_url: str, topic_prefix: str, topics: list[str], **settings: Any
) -> Runtime:
    """The risk service's runtime on a migrated database, its `topics` created; consumers and
    relay not started. The caller disposes of its engine."""
    values: dict[str, Any] = {
        "database_url": pg_url, "kafka_bootstrap": kafka_bootstrap, "topic_prefix": topic_prefix,
    }  # fmt: skip
    config = RiskSettings(**(values | settings))
    runtime = Runtime(
        settings=config, metadata=risk_metadata, service_dir=Path(services.risk.__file__).parent
    )
    await upgrade(config.database_url, runtime.service_dir)
    await ensure_topics(config, [config.topic(t) for t in topics])
    return runtime


async def read_topic(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 30, settle: float = 1.5
) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on `topic` from the start: waits for `expect` records, then `settle` seconds
    more so that extra (duplicate) records would be seen too."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        settle_until: float | None = None
        while loop.time() < (settle_until or deadline):
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                records.extend(recs)
            if len(records) >= expect and settle_until is None:
                settle_until = loop.time() + settle
    finally:
        await consumer.stop()
    return records


SERVICES = ("intake", "risk", "assistance", "notify")


async def wait_ready(
    http: httpx.AsyncClient,
    url: str,
    log: Path,
    proc: subprocess.Popen[bytes] | None = None,
    seconds: float = 60,
) -> None:
    """Poll `url` until it answers 200 (a server just started); fails with the tail of its
    `log` if `proc` exits first or `seconds` pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{url}: exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if (await http.get(url)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never became ready:\n{log.read_text()[-3000:]}")


class Platform:
    """The four services as processes on fresh PostgreSQL databases and fresh topics."""

    def __init__(self, *, kafka_bootstrap: str, topic_prefix: str, logs: Path, webhook_url: str):
        self.env = os.environ | {
            "HOLDLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "HOLDLINE_TOPIC_PREFIX": topic_prefix,
            "HOLDLINE_NOTIFY_WEBHOOK_URL": webhook_url,
            "HOLDLINE_NOTIFY_RETRY_BASE_SECONDS": "0.2",
        }
        self.logs = logs
        self.ports = {name: free_port() for name in SERVICES}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    async def start(self) -> None:
        """Fresh databases, four processes, wait until every /readyz answers 200."""
        from tests.conftest import new_database

        for name in SERVICES:
            self.env[f"HOLDLINE_{name.upper()}_PORT"] = str(self.ports[name])
            self.env[f"HOLDLINE_{name.upper()}_DATABASE_URL"] = await new_database()
        for name in SERVICES:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", name],
                env=self.env,
                stdout=(self.logs / f"{name}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        async with httpx.AsyncClient() as http:
            for name in SERVICES:
                url = f"{self.urls[name]}/readyz"
                await wait_ready(http, url, self.logs / f"{name}.log", self.procs[name])

    def log(self, name: str) -> str:
        """What a service printed so far."""
        return (self.logs / f"{name}.log").read_text()

    def stop(self) -> dict[str, bool]:
        """SIGTERM every service; name -> whether it completed a graceful shutdown."""
        for proc in self.procs.values():
            proc.terminate()
        clean = {}
        for name, proc in self.procs.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit code is -15
            clean[name] = "Application shutdown complete" in self.log(name)
        return clean


def refused_setting(settings: Any, variable: str, value: str, monkeypatch: Any) -> str:
    """The one line a service prints when `variable=value` is a setting it cannot use (the
    settings class `settings` refuses it at start, shared/settings_errors.py)."""
    monkeypatch.setenv(variable, value)
    try:
        settings()
    except ValidationError as refused:
        [line] = settings_problems(refused) or []
        return line
    raise AssertionError(f"{variable}={value!r} was accepted")
