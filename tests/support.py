"""Helpers the integration and e2e tests share: events, a Kafka reader, a webhook receiver."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from shared.clock import SystemClock
from shared.events import DeclarationSubmitted, Envelope, new_event


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


class Receiver:
    """A real HTTP server standing in for a cadre's webhook; records each call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        calls = self.calls

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                calls.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
