"""Intake endpoints on real PostgreSQL and Kafka: durability, idempotency, auth, PII (rules §9)."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.demo import demo_declarations
from services.intake.app import create_app
from services.intake.config import IntakeSettings
from services.intake.models import submissions
from shared.auth import Role, mint_token
from shared.clock import SystemClock
from shared.events import CaseMerged, CaseOpened, decode, new_event
from shared.kafka import make_producer
from tests.conftest import new_database
from tests.support import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
APP = {"X-App-Key": "holdline-dev-app-key"}
# valid IDs (GB 11643 check characters) in Kunming, Wuhua district (530102)
ID_A = "530102195003150018"
ID_B = "530102198807070025"


@asynccontextmanager
async def running_intake(
    *, kafka: str, prefix: str, database_url: str | None = None, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """Intake in-process (lifespan run by hand) with an HTTP client on it."""
    settings = IntakeSettings(
        database_url=database_url or await new_database(),
        kafka_bootstrap=kafka,
        topic_prefix=prefix,
        outbox_poll_seconds=0.2,
        **overrides,
    )
    app = create_app(settings)
    runtime = app.state.runtime
    await runtime.start()
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
            yield http, app
    finally:
        await runtime.stop()


def token(role: Role, jurisdiction: str = "530102") -> dict[str, str]:
    """A bearer header for an official."""
    signed = mint_token(
        subject=f"{role}-1", role=role, jurisdiction=jurisdiction,
        secret=IntakeSettings().jwt_secret.get_secret_value(), clock=SystemClock(),
    )  # fmt: skip
    return {"Authorization": f"Bearer {signed}"}


async def wait_status(http: httpx.AsyncClient, url: str, want: str, field: str = "status") -> dict:  # type: ignore[type-arg]
    for _ in range(150):
        body = (await http.get(url, headers=APP)).json()
        if body.get(field) == want:
            return body  # type: ignore[no-any-return]
        await asyncio.sleep(0.2)
    pytest.fail(f"{url} never reached {field}={want}: {body}")


def declaration(**changes: Any) -> dict[str, Any]:
    return demo_declarations(1, seed=5)[0] | changes


def cadre_report(**changes: Any) -> dict[str, Any]:
    return {
        "household_member_id": ID_A,
        "village_code": "530102001001",
        "risk_types": ["disaster"],
        "per_capita_income": 6200,
        "loss_amount": 18000,
        "members": [
            {"resident_id": ID_A, "name": "李桂兰", "labour_capacity": "partial"},
            {"resident_id": ID_B, "name": "王强", "age": 38},
        ],
        "guarantees": {"house_rating": "C", "drinking_water_safe": True},
        "basic_living_seriously_difficult": True,
        "facts_verified": True,
    } | changes


def registry_household(resident_id: str, income: float, village: str = "530102001002") -> dict:  # type: ignore[type-arg]
    return {
        "village_code": village,
        "baseline_status": "formerly_poor",
        "per_capita_income": income,
        "members": [{"resident_id": resident_id, "name": "赵德明"}],
    }


async def test_declaration_is_durable_published_once_and_never_in_clear(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """rules §9: the event and the stored row carry hash and mask, never the resident ID."""
    body = declaration()
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        answer = await http.post("/v1/declarations", json=body, headers=APP)
        assert answer.status_code == 202, answer.text
        accepted = answer.json()
        assert accepted["status"] == "received"
        status = await wait_status(http, accepted["status_url"], "published")
        assert status["stage"] == "published" and status["case_id"] is None
        async with app.state.runtime.engine.connect() as conn:
            stored = (await conn.execute(select(submissions.c.body))).scalar_one()
    records = await read_topic(kafka_bootstrap, f"{topic_prefix}signals.v1", expect=1)
    assert len(records) == 1
    event = decode(records[0].value)
    assert records[0].key.decode() == accepted["household_id"]
    assert event.payload.submission_id == accepted["submission_id"]
    assert event.payload.declarant_id_hash and event.payload.declarant_id_masked.endswith(
        body["declarant_id"][-1]
    )
    for text in (records[0].value.decode(), json.dumps(stored)):
        assert body["declarant_id"] not in text
        assert body["phone"] not in text


async def test_idempotency_key_replays_the_answer_and_refuses_a_different_body(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    body = declaration()
    key = {"Idempotency-Key": str(uuid.uuid4())} | APP
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, _):
        first = await http.post("/v1/declarations", json=body, headers=key)
        again = await http.post("/v1/declarations", json=body, headers=key)
        other = await http.post("/v1/declarations", json=body | {"loss_amount": 1}, headers=key)
        # an empty key is no key: two such posts are two submissions, not a server error
        blank = APP | {"Idempotency-Key": ""}
        blanks = [await http.post("/v1/declarations", json=body, headers=blank) for _ in (1, 2)]
        assert [b.status_code for b in blanks] == [202, 202]
        assert blanks[0].json()["submission_id"] != blanks[1].json()["submission_id"]
        await wait_status(http, first.json()["status_url"], "published")
    assert first.status_code == again.status_code == 202
    assert again.json()["submission_id"] == first.json()["submission_id"]
    assert other.status_code == 409
    assert other.json()["detail"].startswith("Idempotency-Key:")
    records = await read_topic(kafka_bootstrap, f"{topic_prefix}signals.v1", expect=3)
    assert len(records) == 3


async def test_cadre_report_and_registry_upsert(kafka_bootstrap: str, topic_prefix: str) -> None:
    """Cadre report members travel hashed; an unchanged registry household publishes nothing."""
    county = token("county", "530102")
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, _):
        report = await http.post(
            "/v1/cadre-reports", json=cadre_report(), headers=token("village", "530102001")
        )
        assert report.status_code == 202, report.text
        sync = {"households": [registry_household(ID_A, 6000), registry_household(ID_B, 9000)]}
        first = await http.post("/v1/registry", json=sync, headers=county)
        replayed = await http.post(
            "/v1/registry", json=sync, headers=county | {"Idempotency-Key": "sync-1"}
        )
        assert replayed.json()["created"] == 0  # the first sync already created both
        again = await http.post(
            "/v1/registry", json=sync, headers=county | {"Idempotency-Key": "sync-1"}
        )
        assert again.json() == replayed.json()
        same = await http.post("/v1/registry", json=sync, headers=county)
        sync["households"][1]["per_capita_income"] = 5000
        changed = await http.post("/v1/registry", json=sync, headers=county)
        for answer in (first, same, changed):
            assert answer.status_code == 202, answer.text
        assert [first.json()[k] for k in ("created", "updated", "unchanged")] == [2, 0, 0]
        assert [same.json()[k] for k in ("created", "updated", "unchanged")] == [0, 0, 2]
        assert [changed.json()[k] for k in ("created", "updated", "unchanged")] == [0, 1, 1]
        # an unchanged sync had nothing to publish, so it is at once "published"
        assert (await http.get(same.json()["status_url"], headers=APP)).json()[
            "status"
        ] == "published"
        await wait_status(http, changed.json()["status_url"], "published")
    records = await read_topic(kafka_bootstrap, f"{topic_prefix}signals.v1", expect=4)
    kinds = sorted(decode(r.value).event_type for r in records)
    assert kinds == ["CadreReportSubmitted"] + ["RegistryRecordReceived"] * 3
    cadre = next(
        decode(r.value) for r in records if decode(r.value).event_type == "CadreReportSubmitted"
    )
    assert cadre.payload.cadre_id == "village-1"
    assert [m.age for m in cadre.payload.members][1] == 38
    assert cadre.payload.members[0].age >= 75  # from the ID's birth date (1950)
    assert all(ID_A not in r.value.decode() and ID_B not in r.value.decode() for r in records)
    incomes = sorted(
        decode(r.value).payload.per_capita_income
        for r in records
        if decode(r.value).event_type == "RegistryRecordReceived"
    )
    assert incomes == [5000, 6000, 9000]


async def test_submission_shows_the_case_risk_opened(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """received → published → case opened, with its case id (intake follows the cases topic)."""
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        accepted = (await http.post("/v1/declarations", json=declaration(), headers=APP)).json()
        await wait_status(http, accepted["status_url"], "published")
        settings = app.state.runtime.settings
        producer = make_producer(settings)
        await producer.start()
        try:
            opened = new_event(
                CaseOpened(
                    case_id="case-42", village_code="530102001001", risk_types=["illness"],
                    channel="app", opened_at=SystemClock().now(), deadline=SystemClock().now(),
                    submission_id=accepted["submission_id"],
                ),
                household_id=accepted["household_id"], source="test",
                correlation_id=accepted["submission_id"], clock=SystemClock(),
            )  # fmt: skip
            await producer.send_and_wait(
                settings.topic("cases"), opened.to_bytes(), key=accepted["household_id"].encode()
            )
            status = await wait_status(http, accepted["status_url"], "case_opened", field="stage")
            assert status["case_id"] == "case-42"
            assert status["status"] == "published"
            # a run of events: a feed batch's (no submission row) and the submission's merge
            for payload in (
                CaseMerged(case_id="case-7", risk_types=["illness"], submission_id="batch-1"),
                CaseMerged(case_id="case-42", risk_types=["illness", "disaster"],
                           submission_id=accepted["submission_id"]),
            ):  # fmt: skip
                event = new_event(
                    payload, household_id=accepted["household_id"], source="test",
                    correlation_id="c", clock=SystemClock(),
                )  # fmt: skip
                await producer.send(
                    settings.topic("cases"), event.to_bytes(),
                    key=accepted["household_id"].encode(),
                )  # fmt: skip
            await producer.flush()
        finally:
            await producer.stop()
        status = await wait_status(http, accepted["status_url"], "case_merged", field="stage")
    assert status["case_id"] == "case-42"


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_accepts_while_kafka_is_unreachable_then_publishes_exactly_once(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Accepted means durable: 202 with no broker; a restart with the broker drains the outbox."""
    url = await new_database()
    unreachable = f"127.0.0.1:{_dead_port()}"
    async with running_intake(kafka=unreachable, prefix=topic_prefix, database_url=url) as (
        http,
        _,
    ):
        accepted = []
        for body in demo_declarations(3, seed=21)[:3]:
            answer = await http.post("/v1/declarations", json=body, headers=APP)
            assert answer.status_code == 202, answer.text
            accepted.append(answer.json())
        for a in accepted:
            assert (await http.get(a["status_url"], headers=APP)).json()["status"] == "received"
        assert (await http.get("/readyz")).status_code == 503
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix, database_url=url) as (
        http,
        _,
    ):
        for a in accepted:
            await wait_status(http, a["status_url"], "published")
    records = await read_topic(kafka_bootstrap, f"{topic_prefix}signals.v1", expect=3)
    assert sorted(decode(r.value).payload.submission_id for r in records) == sorted(
        a["submission_id"] for a in accepted
    )


async def test_app_rate_limits_per_phone_and_per_address(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, rate_per_phone=2, rate_per_ip=4,
        rate_window_seconds=3600,
    ) as (http, _):  # fmt: skip
        codes = [
            (await http.post("/v1/declarations", json=declaration(), headers=APP)).status_code
            for _ in range(3)
        ]
        assert codes == [202, 202, 429]
        refused = await http.post("/v1/declarations", json=declaration(), headers=APP)
        assert refused.json()["detail"].startswith("phone:")
        assert int(refused.headers["Retry-After"]) >= 1
        other = declaration(phone="13912345678")
        codes = [
            (await http.post("/v1/declarations", json=other, headers=APP)).status_code
            for _ in range(2)
        ]
        # the address has used its 4 (the refused ones count as attempts too)
        assert codes == [429, 429]
        assert (
            (await http.post("/v1/declarations", json=other, headers=APP))
            .json()["detail"]
            .startswith("client:")
        )
