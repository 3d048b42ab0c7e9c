"""Feed uploads with an Idempotency-Key: a retry of a complete batch replays its answer; a retry
of an interrupted one resumes after the lines it committed; nothing is published twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.intake.models import outbox
from shared.events import decode
from tests.conftest import new_database
from tests.integration.test_intake_api import ID_A, ID_B, running_intake
from tests.support import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
MEDICAL = {"X-API-Key": "dev-medical_insurance-key", "Content-Type": "application/x-ndjson"}
FEED_PATH = "/v1/feeds/medical_insurance"


def rows(count: int, spent: float = 100) -> list[bytes]:
    """`count` lines; every fifth one invalid (negative spending)."""
    out = []
    for n in range(1, count + 1):
        value = -1 if n % 5 == 0 else spent + n
        person = ID_A if n % 2 else ID_B
        out.append(
            json.dumps(
                {"resident_id": person, "recorded_on": "2026-10-31",
                 "out_of_pocket_spending": value}
            ).encode() + b"\n"
        )  # fmt: skip
    return out


async def drained(app: FastAPI) -> None:
    """Wait until the relay has published every outbox row."""
    for _ in range(100):
        async with app.state.runtime.uow() as uow:
            waiting = (
                await uow.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
                )
            ).scalar_one()
        if waiting == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{waiting} outbox rows still unpublished")


async def published_lines(bootstrap: str, prefix: str, expect: int, batch_id: str) -> Counter[int]:
    """A batch's lines on the signals topic, with how often each was published."""
    records = await read_topic(bootstrap, f"{prefix}signals.v1", expect=expect)
    slices = [e for e in (decode(x.value) for x in records) if e.payload.batch_id == batch_id]
    return Counter(r.line for e in slices for r in e.payload.records)


async def test_a_retry_of_a_complete_batch_replays_its_answer_and_publishes_nothing(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    body = b"".join(rows(12))
    key = {"Idempotency-Key": "medical-2026-10"}
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix, feed_batch_rows=5) as (
        http,
        app,
    ):
        first = await http.post(FEED_PATH, content=body, headers=MEDICAL | key)
        assert first.status_code == 202, first.text
        again = await http.post(FEED_PATH, content=body, headers=MEDICAL | key)
        assert again.status_code == 200, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert {k: v for k, v in again.json().items() if k != "resumed_after_line"} == {
            k: v for k, v in first.json().items() if k != "resumed_after_line"
        }
        other = await http.post(FEED_PATH, content=body + rows(1)[0], headers=MEDICAL | key)
        assert other.status_code == 409
        assert other.json()["detail"].startswith("Idempotency-Key: already used for batch")
        # another department may use the same key for its own batch
        housing = MEDICAL | {"X-API-Key": "dev-housing-key"} | key
        line = json.dumps({"resident_id": ID_A, "recorded_on": "2026-10-01", "house_rating": "D"})
        own = await http.post("/v1/feeds/housing", content=line, headers=housing)
        assert own.status_code == 202 and own.json()["batch_id"] != first.json()["batch_id"]
        await drained(app)
    assert first.json()["accepted"] == 10 and first.json()["rejected"] == 2
    lines = await published_lines(kafka_bootstrap, topic_prefix, 3, first.json()["batch_id"])
    assert sorted(lines) == [n for n in range(1, 13) if n % 5] and set(lines.values()) == {1}


async def test_an_interrupted_upload_resumes_after_its_committed_lines(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The first attempt stops at the size limit after 10 lines (committed and published); the
    retry with the same key and file, on a restarted intake, adds lines 11-30 to the same batch."""
    lines = rows(30)
    key = {"Idempotency-Key": "mi-2026-10-county-530102"}
    database = await new_database()

    async def stream(count: int) -> AsyncIterator[bytes]:
        for line in lines[:count]:
            yield line

    limit = sum(len(x) for x in lines[:10])
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database, feed_batch_rows=4,
        feed_max_bytes=limit,
    ) as (http, app):  # fmt: skip
        cut = await http.post(FEED_PATH, content=stream(30), headers=MEDICAL | key)
        assert cut.status_code == 413
        batch_id = cut.json()["detail"].split("batch ")[1].split()[0]
        aborted = (await http.get(f"/v1/feeds/batches/{batch_id}", headers=MEDICAL)).json()
        await drained(app)
    assert (aborted["status"], aborted["lines"], aborted["accepted"]) == ("aborted", 10, 8)
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database, feed_batch_rows=4
    ) as (http, app):
        changed = [*lines[:3], rows(1, spent=999)[0], *lines[4:]]
        refused = await http.post(FEED_PATH, content=b"".join(changed), headers=MEDICAL | key)
        assert refused.status_code == 409, refused.text
        assert "lines 1-10 differ" in refused.json()["detail"]
        kept = (await http.get(f"/v1/feeds/batches/{batch_id}", headers=MEDICAL)).json()
        assert (kept["status"], kept["lines"], kept["accepted"]) == ("aborted", 10, 8)
        resumed = await http.post(FEED_PATH, content=stream(30), headers=MEDICAL | key)
        assert resumed.status_code == 202, resumed.text
        report = (await http.get(f"/v1/feeds/batches/{batch_id}", headers=MEDICAL)).json()
        await drained(app)
    answer = resumed.json()
    assert answer["batch_id"] == batch_id and answer["resumed_after_line"] == 10
    assert (answer["lines"], answer["accepted"], answer["rejected"]) == (30, 24, 6)
    assert (report["status"], report["error_count"]) == ("complete", 6)
    assert [e["line"] for e in report["errors"]] == [5, 10, 15, 20, 25, 30]
    published = await published_lines(kafka_bootstrap, topic_prefix, 4, batch_id)
    assert sorted(published) == [n for n in range(1, 31) if n % 5]
    assert set(published.values()) == {1}, "no line is published twice"


async def test_a_key_whose_upload_is_still_running_is_busy_until_it_stalls(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """409 while the first upload commits; once it has stalled past the resume window, a retry
    takes the batch over and the stalled upload may no longer write to it."""
    lines = rows(8)
    key = {"Idempotency-Key": "slow-upload"}
    paused, go_on = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        for n, line in enumerate(lines):
            if n == 4:
                paused.set()
                await go_on.wait()
            yield line

    database = await new_database()
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database, feed_batch_rows=2
    ) as (http, _):
        first = asyncio.create_task(http.post(FEED_PATH, content=slow(), headers=MEDICAL | key))
        await paused.wait()
        await asyncio.sleep(0.2)  # its first rows are committed
        busy = await http.post(FEED_PATH, content=b"".join(lines), headers=MEDICAL | key)
        assert busy.status_code == 409
        assert "still being received" in busy.json()["detail"]
        go_on.set()
        assert (await first).status_code == 202
    paused.clear()
    go_on.clear()
    key = {"Idempotency-Key": "stalled-upload"}
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database, feed_batch_rows=2,
        feed_resume_after_seconds=0.05,  # stalled 0.2 s on: taken as interrupted
    ) as (http, _):  # fmt: skip
        stalled = asyncio.create_task(http.post(FEED_PATH, content=slow(), headers=MEDICAL | key))
        await paused.wait()
        await asyncio.sleep(0.2)
        retry = await http.post(FEED_PATH, content=b"".join(lines), headers=MEDICAL | key)
        assert retry.status_code == 202, retry.text
        assert retry.json()["resumed_after_line"] == 4
        go_on.set()
        taken = await stalled
        assert taken.status_code == 409
        assert "taken over" in taken.json()["detail"]
        report = (await http.get(retry.json()["status_url"], headers=MEDICAL)).json()
    assert (report["status"], report["lines"], report["accepted"]) == ("complete", 8, 7)


@pytest.mark.parametrize("bad", ["has space", "x" * 101, ""])
async def test_a_malformed_key_is_refused_naming_the_header(
    kafka_bootstrap: str, topic_prefix: str, bad: str
) -> None:
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, _):
        answer = await http.post(
            FEED_PATH, content=b"".join(rows(2)), headers=MEDICAL | {"Idempotency-Key": bad}
        )
    assert answer.status_code == 422, answer.text
    assert "Idempotency-Key" in answer.text or "idempotency" in answer.text.lower()
