"""End-to-end benchmark: declaration POST -> the cadre webhook call, under background load.

The four services run as processes on PostgreSQL (tests/support.py `Platform`); a webhook
receiver in this process timestamps every call. Background declarations for other households
arrive at a steady rate while measured declarations are sent a few per second; the figure is
the p50/p99 of (webhook arrival - POST start) of the measured households' CaseOpened call; the
notes add the same for the GreenChannelOpened (urgent) call of those that opened one. The
path holds two Kafka hops (intake -> signals -> risk -> cases -> notify), so the baseline is a
raw two-hop aiokafka round trip (produce to A, a consumer forwards to B, a consumer reads B)
with the same message size, the same background rate and the same broker.

    .venv/bin/python bench/run.py --only e2e [--quick]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    APP_KEY,
    Connection,
    CpuUse,
    Result,
    connect,
    cpu_note,
    drop_database,
    judge,
    percentile,
)
from bench.intake_declarations import declarations
from shared import infra
from shared.kafka import make_producer
from shared.settings import ServiceSettings
from tests.support import Platform, declaration_event

HEADERS = b"X-App-Key: " + APP_KEY.encode() + b"\r\n"


@dataclass
class Sizes:
    """How long and how hard."""

    seconds: float  # measured sending phase
    warmup_seconds: float  # background load alone first: measured declarations meet it running
    background_rate: float  # declarations/s for other households
    measured_rate: float  # measured declarations/s
    drain_seconds: float  # how long to wait for the last measured webhook calls
    baseline_seconds: float


FULL = Sizes(
    seconds=60,
    warmup_seconds=5,
    background_rate=200,
    measured_rate=5,
    drain_seconds=60,
    baseline_seconds=30,
)
QUICK = Sizes(
    seconds=2,
    warmup_seconds=0.5,
    background_rate=5,
    measured_rate=5,
    drain_seconds=10,
    baseline_seconds=1.5,
)


class WebhookReceiver:
    """An HTTP/1.1 keep-alive server on this event loop that timestamps every POST."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, dict[str, Any]]] = []  # (wall-clock arrival, body)
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.time()
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b"{}"
                self.calls.append((arrived, json.loads(body)))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        """Stop listening."""
        if self.server is not None:
            self.server.close()


@dataclass
class Sent:
    """Declarations sent and what intake answered."""

    started: dict[str, float] = field(default_factory=dict)  # submission_id -> POST start
    households: dict[str, str] = field(default_factory=dict)  # submission_id -> household
    accepted: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    dropped: int = 0  # never sent: no free connection before the sending phase ended


async def _paced(
    rate: float, seconds: float, send: Callable[[int], Awaitable[None]], inflight: int
) -> int:
    """Start send(n) at a steady `rate` for `seconds` (open loop, at most `inflight` at once).
    A send still waiting for a slot when the time is up is dropped, so a server slower than
    `rate` does not stretch the run; returns how many were dropped."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(inflight)
    tasks: set[asyncio.Task[None]] = set()
    start, n, dropped = loop.time(), 0, 0

    async def one(n: int) -> None:
        nonlocal dropped
        async with gate:
            if loop.time() > start + seconds:
                dropped += 1
                return
            await send(n)

    while (now := loop.time()) < start + seconds:
        while n < (now - start) * rate:
            task = asyncio.create_task(one(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.sleep(min(0.005, 1 / rate / 2))
    await asyncio.gather(*tasks)
    return dropped


async def _under_load(
    sizes: Sizes,
    seconds: float,
    background: Callable[[int], Awaitable[None]],
    measured: Callable[[int], Awaitable[None]],
    measured_rate: float,
) -> tuple[int, int]:
    """Background sends alone for the warm-up, then measured ones beside them for `seconds`;
    returns how many of each were dropped. Measured from a cold start, the first measured
    sends would time the first connections, statement preparations and caches of every
    process, not the path under load."""

    async def later() -> int:
        await asyncio.sleep(sizes.warmup_seconds)
        return await _paced(measured_rate, seconds, measured, 8)

    total = sizes.warmup_seconds + seconds
    dropped = await asyncio.gather(_paced(sizes.background_rate, total, background, 64), later())
    return dropped[0], dropped[1]


async def _declare(
    port: int, sizes: Sizes, pids: dict[str, list[int]]
) -> tuple[Sent, Sent, dict[str, Any]]:
    """Background and measured declarations, side by side; returns (background, measured,
    the CPU they cost): what every part of the machine spent a declaration sent after the
    warm-up, and how many of its cores that kept busy."""
    background, measured = Sent(), Sent()
    meters: list[tuple[float, CpuUse]] = []

    async def meter() -> None:
        await asyncio.sleep(sizes.warmup_seconds)
        meters.append((time.time(), CpuUse(pids)))

    metering = asyncio.create_task(meter())
    count = int((sizes.warmup_seconds + sizes.seconds) * sizes.background_rate) + 10
    bg_bodies = declarations(count, seed=11)
    m_bodies = declarations(int(sizes.seconds * sizes.measured_rate) + 10, seed=12)
    pools: dict[int, list[Connection]] = {0: [], 1: []}

    def sender(bodies: list[bytes], into: Sent, kind: int) -> Callable[[int], Awaitable[None]]:
        async def send(n: int) -> None:
            conn = pools[kind].pop() if pools[kind] else Connection("127.0.0.1", port)
            started = time.time()
            try:
                status, answer = await conn.post("/v1/declarations", bodies[n], HEADERS)
            except (asyncio.IncompleteReadError, ConnectionError):
                status, answer = 0, b""
            pools[kind].append(conn)
            if status == 202:
                reply = json.loads(answer)
                into.accepted += 1
                into.started[reply["submission_id"]] = started
                into.households[reply["submission_id"]] = reply["household_id"]
            else:
                into.refused[status] = into.refused.get(status, 0) + 1

        return send

    background.dropped, measured.dropped = await _under_load(
        sizes,
        sizes.seconds,
        sender(bg_bodies, background, 0),
        sender(m_bodies, measured, 1),
        sizes.measured_rate,
    )
    await metering
    since, cpu = meters[0]
    sent = sum(t >= since for s in (background, measured) for t in s.started.values())
    us = cpu.per(max(sent, 1))
    busy = us["all"] * sent / 1e6 / (time.time() - since)
    for conns in pools.values():
        for conn in conns:
            conn.close()
    return background, measured, {"cpu_us_per_declaration": us, "cpu_busy_cores": round(busy, 2)}


def _arrivals(receiver: WebhookReceiver, event_type: str = "CaseOpened") -> dict[str, float]:
    """submission (correlation) id -> first webhook arrival of that event type."""
    out: dict[str, float] = {}
    for arrived, body in receiver.calls:
        if body.get("event_type") == event_type and body.get("correlation_id"):
            out.setdefault(body["correlation_id"], arrived)
    return out


async def _wait_arrivals(receiver: WebhookReceiver, wanted: set[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not wanted <= set(_arrivals(receiver)):
        await asyncio.sleep(0.2)


async def _stages(platform: Platform, measured: Sent) -> dict[str, dict[str, float]]:
    """Each measured declaration's steps in milliseconds, from the services' own timestamps
    (same clock): {submission id: {step: ms}}."""

    async def rows(service: str, query: str, *args: Any) -> list[Any]:
        url = platform.env[f"HOLDLINE_{service.upper()}_DATABASE_URL"]
        conn = await connect(url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    ids = list(measured.started)
    intake = {
        r["id"]: r
        for r in await rows(
            "intake",
            "SELECT s.id, o.event_id, o.created_at, o.published_at FROM submissions s "
            "JOIN outbox o ON o.event_id = s.event_id WHERE s.id = ANY($1::varchar[])",
            ids,
        )
    }
    event_ids = [r["event_id"] for r in intake.values()]
    processed = {
        r["event_id"]: r["processed_at"]
        for r in await rows(
            "risk",
            "SELECT event_id, min(processed_at) AS processed_at FROM processed_events "
            "WHERE event_id = ANY($1::varchar[]) GROUP BY event_id",
            event_ids,
        )
    }
    households = list(measured.households.values())
    risk_out = {
        r["key"]: r
        for r in await rows(
            "risk",
            "SELECT key, min(created_at) AS created_at, min(published_at) AS published_at "
            "FROM outbox WHERE key = ANY($1::varchar[]) AND topic LIKE '%cases%' GROUP BY key",
            households,
        )
    }
    notes = {
        r["household_id"]: r
        for r in await rows(
            "notify",
            "SELECT household_id, min(created_at) AS created_at, min(delivered_at) AS delivered_at"
            " FROM notifications WHERE household_id = ANY($1::varchar[]) "
            "AND event_type = 'CaseOpened' GROUP BY household_id",
            households,
        )
    }
    steps: dict[str, dict[str, float]] = {}
    for sid, posted in measured.started.items():
        row = intake.get(sid)
        if row is None:
            continue
        household = measured.households[sid]
        risk, note = risk_out.get(household), notes.get(household)
        done = processed.get(row["event_id"])
        marks: list[tuple[str, datetime | float | None, datetime | None]] = [
            ("1 POST -> intake commit", posted, row["created_at"]),
            ("2 intake relay publish", row["created_at"], row["published_at"]),
            ("3 Kafka hop + risk consumer picks it up", row["published_at"], done),
            ("4 risk handles, commits CaseOpened", done, risk and risk["created_at"]),
            ("5 risk relay publish", risk and risk["created_at"], risk and risk["published_at"]),
            (
                "6 Kafka hop + notify records the notification",
                risk and risk["published_at"],
                note and note["created_at"],
            ),
            (
                "7 notify dispatch + webhook answered",
                note and note["created_at"],
                note and note["delivered_at"],
            ),
        ]
        steps[sid] = {
            step: round((end.timestamp() - _seconds(start)) * 1000, 1)
            for step, start, end in marks
            if start is not None and end is not None
        }
    return steps


def _seconds(at: datetime | float) -> float:
    return at if isinstance(at, float) else at.timestamp()


def _summarise(
    steps: dict[str, dict[str, float]], latencies: dict[str, float], started: dict[str, float]
) -> dict[str, Any]:
    """Median and p99 of each step, and the steps of the slowest 1% of declarations (with
    when each was sent, seconds into the measured phase): where the tail is spent, not only
    the middle."""
    first = min(started.values(), default=0.0)
    by_step: dict[str, list[float]] = {}
    for values in steps.values():
        for step, ms in values.items():
            by_step.setdefault(step, []).append(ms)
    slowest = sorted(latencies, key=latencies.__getitem__, reverse=True)
    return {
        "stages_median_ms": {k: round(statistics.median(v), 1) for k, v in sorted(by_step.items())},
        "stages_p99_ms": {k: round(percentile(v, 99), 1) for k, v in sorted(by_step.items())},
        "slowest_1pct": [
            {"total_ms": round(latencies[sid], 1), "sent_at_s": round(started[sid] - first, 1)}
            | steps.get(sid, {})
            for sid in slowest[: max(1, len(slowest) // 100)]
        ],
    }


async def platform_latency(sizes: Sizes) -> dict[str, Any]:
    """The four services under load; latencies of the measured households, in ms."""
    receiver = WebhookReceiver()
    await receiver.start()
    logs = Path(tempfile.mkdtemp(prefix="holdline-bench-e2e-"))
    platform = Platform(
        kafka_bootstrap=f"127.0.0.1:{infra.kafka_port()}",
        topic_prefix=f"holdline.benche2e{uuid.uuid4().hex[:8]}.",
        logs=logs,
        webhook_url=receiver.url,
    )
    # one generator address sends everything: lift the per-address abuse limit
    platform.env["HOLDLINE_INTAKE_RATE_PER_IP"] = "1000000000"
    try:
        await platform.start()
        pids = {name: [proc.pid] for name, proc in platform.procs.items()}
        background, measured, cpu = await _declare(platform.ports["intake"], sizes, pids)
        await _wait_arrivals(receiver, set(measured.started), sizes.drain_seconds)
        arrivals = _arrivals(receiver)
        by_sid = {
            sid: (arrivals[sid] - started) * 1000
            for sid, started in measured.started.items()
            if sid in arrivals
        }
        latencies = list(by_sid.values())
        # the measured declarations that opened the green channel: their urgent alerts
        urgent = _arrivals(receiver, "GreenChannelOpened")
        urgent_latencies = [
            (urgent[sid] - started) * 1000
            for sid, started in measured.started.items()
            if sid in urgent
        ]
        background_delivered = sum(sid in arrivals for sid in background.started)
        stages = _summarise(await _stages(platform, measured), by_sid, measured.started)
    finally:
        platform.stop()
        await receiver.stop()
        for name in ("intake", "risk", "assistance", "notify"):
            await drop_database(platform.env[f"HOLDLINE_{name.upper()}_DATABASE_URL"])
    return {
        "latencies_ms": latencies,
        "urgent_latencies_ms": urgent_latencies,
        "measured_sent": measured.accepted,
        "measured_missing": measured.accepted - len(latencies),
        "background_accepted": background.accepted,
        "background_rate_achieved": round(
            background.accepted / (sizes.warmup_seconds + sizes.seconds), 1
        ),
        "background_webhooks_within_drain": background_delivered,
        "refused": {"background": background.refused, "measured": measured.refused},
        "not_sent_intake_too_slow": {
            "background": background.dropped,
            "measured": measured.dropped,
        },
        **stages,
        **cpu,
        "logs": str(logs),
    }


async def kafka_round_trip(sizes: Sizes) -> list[float]:
    """Raw two-hop round trip, ms: produce to A, forward A -> B, receive from B."""
    bootstrap = f"127.0.0.1:{infra.kafka_port()}"
    prefix = f"holdline.benchrt{uuid.uuid4().hex[:8]}."
    topic_a, topic_b = prefix + "a", prefix + "b"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 4, 1) for t in (topic_a, topic_b)])
    finally:
        await admin.close()
    value = declaration_event().to_bytes()  # the size of a DeclarationSubmitted envelope

    def producer() -> AIOKafkaProducer:
        return make_producer(ServiceSettings(kafka_bootstrap=bootstrap))  # the services' own

    def consumer(topic: str, group: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=200,
        )

    send, forward_out = producer(), producer()
    forward_in, receive = consumer(topic_a, prefix + "fwd"), consumer(topic_b, prefix + "rcv")
    started: dict[bytes, float] = {}
    arrived: dict[bytes, float] = {}
    stopping = asyncio.Event()

    async def forwarder() -> None:
        while not stopping.is_set():
            batch = await forward_in.getmany(timeout_ms=500)
            futures = [
                await forward_out.send(topic_b, r.value, key=r.key)
                for records in batch.values()
                for r in records
            ]
            await asyncio.gather(*futures)
            if futures:
                await forward_in.commit()

    async def receiver() -> None:
        while not stopping.is_set():
            batch = await receive.getmany(timeout_ms=500)
            now = time.time()
            for records in batch.values():
                for r in records:
                    if r.key is not None:
                        arrived.setdefault(r.key, now)
            if batch:
                await receive.commit()

    for client in (send, forward_out, forward_in, receive):
        await client.start()
    tasks = [asyncio.create_task(forwarder()), asyncio.create_task(receiver())]
    try:
        # warm up until the consumers hold their partitions and a message makes it through
        warm = b"warm-" + uuid.uuid4().bytes
        deadline = time.monotonic() + 60
        while warm not in arrived and time.monotonic() < deadline:
            await send.send_and_wait(topic_a, value, key=warm)
            await asyncio.sleep(0.5)

        def sender(kind: bytes) -> Callable[[int], Awaitable[None]]:
            async def one(n: int) -> None:
                key = b"%s-%d" % (kind, n)
                started[key] = time.time()
                await (await send.send(topic_a, value, key=key))

            return one

        await _under_load(
            sizes, sizes.baseline_seconds, sender(b"bg"), sender(b"m"), sizes.measured_rate * 4
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(started) <= set(arrived):
            await asyncio.sleep(0.1)
    finally:
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in (send, forward_out, forward_in, receive):
            await client.stop()
    return [
        (arrived[k] - t) * 1000 for k, t in started.items() if k.startswith(b"m-") and k in arrived
    ]


async def run(quick: bool) -> list[Result]:
    """Platform latency, then the raw Kafka baseline, in the same run."""
    sizes = QUICK if quick else FULL
    platform = await platform_latency(sizes)
    baseline = await kafka_round_trip(sizes)
    lat = platform["latencies_ms"]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    b50, b99 = percentile(baseline, 50), percentile(baseline, 99)
    ratio = p99 / b99 if lat and baseline else None
    target = "<= 3x"
    stages = platform["stages_median_ms"]
    slowest = max(stages, key=stages.__getitem__) if stages else "-"
    notes = (
        f"ratio = p99 / baseline p99; p50 {p50:.0f} ms (baseline {b50:.1f} ms); "
        f"{len(lat)} measured under {platform['background_rate_achieved']:.0f} background "
        f"declarations/s; slowest step (median): {slowest}"
    )
    urgent = platform["urgent_latencies_ms"]
    if urgent:
        notes += (
            f"; their green-channel (urgent) alerts p50/p99 {percentile(urgent, 50):.0f}/"
            f"{percentile(urgent, 99):.0f} ms ({len(urgent)})"
        )
    if platform["measured_missing"]:
        notes += f"; {platform['measured_missing']} measured webhook calls never arrived"
    notes += (
        f"; {cpu_note(platform['cpu_us_per_declaration'], 'declaration')}; after the warm-up "
        f"the declarations kept {platform['cpu_busy_cores']} cores busy"
    )
    met = judge(ratio, target)
    if platform["measured_missing"]:
        met = False
    return [
        Result(
            name="e2e",
            figure=round(p99, 1) if lat else None,
            unit="ms p99 (declaration -> webhook)",
            baseline=round(b99, 1) if baseline else None,
            baseline_label="raw aiokafka two-hop round trip p99",
            ratio=round(ratio, 2) if ratio is not None else None,
            target=target,
            met=met,
            notes=notes,
            extra={
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
                "baseline_p50_ms": round(b50, 2),
                "baseline_p99_ms": round(b99, 2),
                "baseline_samples": len(baseline),
                "seconds": sizes.seconds,
                "warmup_seconds": sizes.warmup_seconds,
                "background_rate_target": sizes.background_rate,
                "urgent_p50_ms": round(percentile(urgent, 50), 1) if urgent else None,
                "urgent_p99_ms": round(percentile(urgent, 99), 1) if urgent else None,
                "urgent_samples": len(urgent),
            }
            | {k: v for k, v in platform.items() if not k.endswith("latencies_ms")},
        )
    ]
