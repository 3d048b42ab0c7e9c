"""The chaos run's traffic: declarations over the API, department feed uploads, poison messages.

Every valid signal names one of a fixed set of households and reports a risk, so each must end up
in that household's case (the first one opens it, the rest merge). A few feed lines are invalid on
purpose (they must be recorded as rejected), and a few poison messages go straight onto the
signals topic (they must land in the DLQ and nowhere else).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.demo import resident_id

APP_KEY = {"X-App-Key": "holdline-dev-app-key"}  # the development app key
RISKS = [["illness"], ["disaster"], ["accident", "illness"], ["housing_unsafe"], ["schooling"]]
RECORDED_ON = "2026-10-31"
Say = Callable[[str], None]


def village_of(h: int) -> str:
    """A valid village code (rules §9.4), spread over a few townships."""
    return f"5301020{h % 3 + 1:02d}{h % 5 + 1:03d}"


def feed_facts(department: str, rng: random.Random) -> dict[str, Any]:
    """Facts that report a risk for each department used (services/risk/feeds.py)."""
    match department:
        case "medical_insurance":
            spent = round(rng.uniform(20_000, 60_000), 2)
            return {"out_of_pocket_spending": spent, "serious_illness_claim": rng.random() < 0.2}
        case "agriculture":
            return {"project": "肉牛养殖", "failed": True, "loss_amount": rng.randint(5, 50) * 1000}
        case "emergency_management":
            return {"event": "disaster", "disaster_subtype": "flood", "loss_amount": 30_000}
        case "education":
            return {"schooling_stage": "junior", "dropped_out": True}
        case _:
            return {"house_rating": rng.choice("CD")}


DEPARTMENTS = ("medical_insurance", "agriculture", "emergency_management", "education", "housing")


@dataclass
class FeedUpload:
    """One NDJSON upload of one department."""

    department: str
    body: bytes
    valid: int
    invalid: int


@dataclass
class Traffic:
    """Everything the run sends, built up front from the seed."""

    households: list[str]
    declarations: list[dict[str, Any]]
    uploads: list[FeedUpload]
    poison: list[tuple[str, bytes]]

    @property
    def feed_rows(self) -> int:
        """Valid feed lines."""
        return sum(u.valid for u in self.uploads)

    @property
    def invalid_rows(self) -> int:
        """Feed lines that must be rejected and recorded."""
        return sum(u.invalid for u in self.uploads)


def build_traffic(signals: int, seed: int, uploads: int = 19) -> Traffic:
    """`signals` valid signals over signals/20 households: some declarations, the rest feeds."""
    rng = random.Random(seed)
    count = max(signals // 20, 3)
    households = [f"chaos-{seed}-h{h}" for h in range(count)]
    # every household gets a signal first, then they are drawn at random
    order = list(range(count)) + [rng.randrange(count) for _ in range(max(signals - count, 0))]
    rng.shuffle(order)
    order = order[:signals]
    # declarations go one by one through the API: 5%, at most 1,000 (feeds carry the volume)
    n_decl = max(min(signals // 20, 1_000), 1)
    declarations = []
    for n, h in enumerate(order[:n_decl]):
        village = village_of(h)
        declarations.append(
            {
                "household_id": households[h],
                "declarant_name": "王秀英",
                "declarant_id": resident_id(rng, village),
                "phone": f"13{rng.randint(0, 999_999_999):09d}",
                "village_code": village,
                "risk_types": RISKS[n % len(RISKS)],
                "description": "家庭突发困难，申请监测帮扶",
                "medical_spending": rng.choice([0, 12_000, 35_000]),
                "idempotency_key": f"chaos-{seed}-d{n}",
            }
        )
    feed_order = order[n_decl:]
    per_upload = max(-(-len(feed_order) // uploads), 1)
    out: list[FeedUpload] = []
    for u, start in enumerate(range(0, len(feed_order), per_upload)):
        department = DEPARTMENTS[u % len(DEPARTMENTS)]
        lines, invalid = [], 0
        for i, h in enumerate(feed_order[start : start + per_upload]):
            village = village_of(h)
            row = {
                "resident_id": resident_id(rng, village),
                "household_id": households[h],
                "village_code": village,
                "recorded_on": RECORDED_ON,
            } | feed_facts(department, rng)
            lines.append(json.dumps(row, ensure_ascii=False))
            if i % 200 == 17:  # rules §8: a bad line is rejected and recorded, the rest go on
                lines.append(json.dumps(row | {"resident_id": "11010519491231002"}))
                invalid += 1
        body = ("\n".join(lines) + "\n").encode()
        out.append(FeedUpload(department, body, len(lines) - invalid, invalid))
    return Traffic(households, declarations, out, poison_messages(seed))


def poison_messages(seed: int) -> list[tuple[str, bytes]]:
    """(key, value) of messages no consumer can take: each must end in the DLQ."""
    now = "2026-11-01T00:00:00+00:00"

    def envelope(n: int, event_type: str, version: str) -> bytes:
        body = {
            "event_id": str(uuid.UUID(int=seed * 1000 + n)), "event_type": event_type,
            "schema_version": version, "occurred_at": now, "household_id": f"poison-{n}",
            "source": "chaos", "correlation_id": f"poison-{n}", "payload": {},
        }  # fmt: skip
        return json.dumps(body).encode()

    return [
        ("poison-0", b'{"event_id": "poison-0", this is not JSON'),
        ("poison-1", envelope(1, "FeedRecordReceived", "9.0")),  # a major version from the future
        ("poison-2", envelope(2, "HouseholdTeleported", "1.0")),  # an event type nobody knows
        ("poison-3", b"\xff\xfe not even UTF-8"),
        ("poison-4", envelope(4, "DeclarationSubmitted", "2.1")),
        ("poison-5", b"[1, 2, 3]"),
    ]


@dataclass
class Sent:
    """What the platform answered: the client's view of what was accepted."""

    declarations: dict[str, str] = field(default_factory=dict)  # idempotency key -> submission
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    batches: dict[str, tuple[int, int]] = field(default_factory=dict)  # batch id -> (acc, rej)
    upload_retries: int = 0
    declaration_retries: int = 0
    poison_sent: list[str] = field(default_factory=list)


RETRYABLE = (httpx.TransportError,)


async def post_declaration(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], sent: Sent
) -> None:
    """POST until intake answers: a lost answer is retried with the same Idempotency-Key."""
    key = body["idempotency_key"]
    payload = {k: v for k, v in body.items() if k != "idempotency_key"}
    while True:
        try:
            answer = await http.post(
                f"{url}/v1/declarations", json=payload, headers=APP_KEY | {"Idempotency-Key": key}
            )
        except RETRYABLE:
            answer = None
        if answer is not None and answer.status_code == 202:
            sent.declarations[key] = answer.json()["submission_id"]
            return
        if answer is not None and answer.status_code < 500 and answer.status_code != 429:
            sent.refused.append((key, answer.status_code, answer.text[:300]))
            return
        sent.declaration_retries += 1
        await asyncio.sleep(0.5)


async def post_feed(http: httpx.AsyncClient, url: str, upload: FeedUpload, sent: Sent) -> None:
    """Upload until one attempt completes; an interrupted one stays on record as aborted."""
    headers = {
        "X-API-Key": f"dev-{upload.department}-key",
        "Content-Type": "application/x-ndjson",
    }
    while True:
        try:
            answer = await http.post(
                f"{url}/v1/feeds/{upload.department}", content=upload.body, headers=headers
            )
        except RETRYABLE:
            answer = None
        if answer is not None and answer.status_code == 202:
            got = answer.json()
            sent.batches[got["batch_id"]] = (got["accepted"], got["rejected"])
            return
        if answer is not None and answer.status_code < 500:
            raise AssertionError(f"feed upload refused: {answer.status_code} {answer.text[:500]}")
        sent.upload_retries += 1
        await asyncio.sleep(1)


async def inject_poison(bootstrap: str, topic: str, messages: list[tuple[str, bytes]]) -> None:
    """Write the poison straight onto a topic risk consumes (as a broken producer would)."""
    while True:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", request_timeout_ms=5000
        )
        try:
            await producer.start()
            for key, value in messages:
                await producer.send_and_wait(topic, value, key=key.encode())
            return
        except KafkaError:
            await asyncio.sleep(1)
        finally:
            await producer.stop()


async def drive(
    *,
    traffic: Traffic,
    intake_url: str,
    bootstrap: str,
    signals_topic: str,
    min_seconds: float,
    say: Say,
    concurrency: int = 6,
) -> Sent:
    """Send everything in a shuffled order, spread over at least `min_seconds`."""
    sent = Sent()
    units: list[tuple[str, Any]] = [("feed", u) for u in traffic.uploads]
    chunk = 25
    decl = traffic.declarations
    units += [("decl", decl[i : i + chunk]) for i in range(0, len(decl), chunk)]
    random.Random(len(units)).shuffle(units)
    half = len(traffic.poison) // 2
    # poison early and again in the middle, while the faults are under way
    units.insert(min(1, len(units)), ("poison", traffic.poison[:half]))
    units.insert(len(units) // 2, ("poison", traffic.poison[half:]))
    started = time.monotonic()
    gate = asyncio.Semaphore(concurrency)
    poisoning: list[asyncio.Task[None]] = []
    timeout = httpx.Timeout(120, connect=5)
    async with httpx.AsyncClient(timeout=timeout) as http:

        async def one_declaration(body: dict[str, Any]) -> None:
            async with gate:
                await post_declaration(http, intake_url, body, sent)

        for n, (kind, unit) in enumerate(units):
            if kind == "feed":
                await post_feed(http, intake_url, unit, sent)
            elif kind == "decl":
                await asyncio.gather(*(one_declaration(b) for b in unit))
            else:
                # in the background: a broker being restarted must not hold up the API traffic
                poisoning.append(asyncio.create_task(inject_poison(bootstrap, signals_topic, unit)))
                sent.poison_sent += [k for k, _ in unit]
            ahead = min_seconds * (n + 1) / len(units) - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
            if (n + 1) % max(len(units) // 10, 1) == 0:
                say(f"drive: {n + 1}/{len(units)} units sent ({time.monotonic() - started:.0f} s)")
    await asyncio.gather(*poisoning)
    return sent
