"""Group commit of declarations on real PostgreSQL (and SQLite): durable, idempotent, isolated."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from services.demo import demo_declarations, free_port
from services.intake import handlers
from services.intake.app import create_app
from services.intake.committer import GroupCommitter, store_for
from services.intake.config import IntakeSettings
from services.intake.models import outbox, submissions
from services.intake.schemas import DeclarationCreate
from shared.db import create_engine
from shared.events import decode
from tests.conftest import new_database
from tests.support import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
APP = {"X-App-Key": "holdline-dev-app-key"}


@asynccontextmanager
async def running_intake(
    *, kafka: str, prefix: str, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """Intake in-process (lifespan run by hand) with an HTTP client on it."""
    settings = IntakeSettings(
        database_url=database_url,
        kafka_bootstrap=kafka,
        topic_prefix=prefix,
        outbox_poll_seconds=0.2,
        rate_per_phone=100,  # one declarant posts the same body many times here
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


async def count(app: FastAPI, statement: Any) -> int:
    """One scalar from intake's database."""
    async with app.state.runtime.engine.connect() as conn:
        return int((await conn.execute(statement)).scalar_one())


async def post_all(
    http: httpx.AsyncClient, bodies: list[dict[str, Any]], headers: list[dict[str, str]]
) -> list[httpx.Response]:
    """Post every body at once, so that they queue for the same commits."""
    return list(
        await asyncio.gather(
            *(
                http.post("/v1/declarations", json=b, headers=h)
                for b, h in zip(bodies, headers, strict=True)
            )
        )
    )


async def test_concurrent_declarations_are_all_stored_with_their_event_and_published(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Accepted means durable: every 202 has its row and outbox row, and reaches Kafka once."""
    bodies = demo_declarations(40, seed=11)
    database = await new_database()
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database
    ) as (http, app):
        answers = await post_all(http, bodies, [APP] * len(bodies))
        assert [a.status_code for a in answers] == [202] * len(bodies)
        ids = {a.json()["submission_id"] for a in answers}
        assert len(ids) == len(bodies)
        assert await count(app, select(func.count()).select_from(submissions)) == len(bodies)
        joined = select(func.count()).select_from(
            submissions.join(outbox, outbox.c.event_id == submissions.c.event_id)
        )
        assert await count(app, joined) == len(bodies)
    records = await read_topic(kafka_bootstrap, f"{topic_prefix}signals.v1", expect=len(bodies))
    published = [decode(r.value).payload.submission_id for r in records]
    assert sorted(published) == sorted(ids)


async def test_one_key_posted_concurrently_is_stored_once_and_replayed_to_all(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Same key and body at once: one submission, every caller gets its id; a different
    body under that key is a 409; other declarations in the same batches are stored."""
    body, *others = demo_declarations(6, seed=12)
    key = APP | {"Idempotency-Key": str(uuid.uuid4())}
    changed = body | {"description": "another body under the same key"}
    database = await new_database()
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database
    ) as (http, app):
        answers = await post_all(
            http, [body] * 8 + [changed] + others, [key] * 9 + [APP] * len(others)
        )
        same = answers[:8]
        assert [a.status_code for a in same] == [202] * 8
        assert len({a.json()["submission_id"] for a in same}) == 1
        assert answers[8].status_code == 409
        assert answers[8].json()["detail"].startswith("Idempotency-Key:")
        assert [a.status_code for a in answers[9:]] == [202] * len(others)
        stored = await count(app, select(func.count()).select_from(submissions))
        assert stored == 1 + len(others)
        # later, sequentially: still the original answer
        again = await http.post("/v1/declarations", json=body, headers=key)
        assert again.status_code == 202
        assert again.json()["submission_id"] == same[0].json()["submission_id"]


async def test_a_key_lost_to_another_process_replays_it_and_loses_no_neighbour(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Another process stores the same key while a batch is inserting: the batch's unique
    violation makes it commit one by one; the keyed request replays the winner, the others
    are stored."""
    bodies = demo_declarations(5, seed=13)
    database = await new_database()
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database
    ) as (_, app):
        runtime, vault = app.state.runtime, app.state.intake.vault
        key = str(uuid.uuid4())

        def prepared(body: dict[str, Any], idempotency_key: str | None) -> handlers.Prepared:
            return handlers.prepare_declaration(
                declaration=DeclarationCreate.model_validate(body),
                idempotency_key=idempotency_key,
                vault=vault,
                signals_topic=runtime.settings.topic("signals"),
                clock=runtime.clock,
            )

        winner = prepared(bodies[0], key)
        other_process = runtime.uow()
        await other_process.__aenter__()
        await handlers.store_batch(other_process, [winner])  # not committed yet
        committer = GroupCommitter(store_for(runtime), batch_max=50, concurrency=1)
        batch = [prepared(bodies[0], key)] + [prepared(b, None) for b in bodies[1:]]
        answers = asyncio.gather(*(committer.submit(p) for p in batch), return_exceptions=True)
        async with runtime.engine.connect() as conn:
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            deadline = asyncio.get_running_loop().time() + 30
            while (await conn.execute(waiting)).scalar_one() == 0:
                # the batch's INSERT waits on the uncommitted key; a batch that ended without
                # waiting, or never got that far, fails here instead of hanging the run
                assert not answers.done(), f"the batch ended without waiting: {answers.result()}"
                assert asyncio.get_running_loop().time() < deadline, "the batch never waited"
                # a transaction lists the backends as they were at its first read of
                # pg_stat_activity: one opened later (the batch's, on a loaded machine) never
                # showed, and the loop waited for it forever
                await conn.commit()
                await asyncio.sleep(0.01)
        await other_process.__aexit__(None, None, None)
        results = await answers
        assert results[0] == handlers.Accepted(
            winner.row["id"], winner.row["household_id"], replayed=True
        )
        assert all(not r.replayed for r in results[1:])
        assert await count(app, select(func.count()).select_from(submissions)) == len(bodies)
        assert await count(app, select(func.count()).select_from(outbox)) == len(bodies)


async def test_a_failing_item_fails_alone_and_its_batch_neighbours_are_stored(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A row the database refuses (here a duplicate submission id) errors for its own request
    only: the batch is committed again one by one."""
    bodies = demo_declarations(5, seed=14)
    database = await new_database()
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database
    ) as (http, app):
        runtime, vault = app.state.runtime, app.state.intake.vault
        stored = await http.post("/v1/declarations", json=bodies[0], headers=APP)
        assert stored.status_code == 202
        items = [
            handlers.prepare_declaration(
                declaration=DeclarationCreate.model_validate(b),
                idempotency_key=None,
                vault=vault,
                signals_topic=runtime.settings.topic("signals"),
                clock=runtime.clock,
            )
            for b in bodies[1:]
        ]
        clash = items[1]
        items[1] = replace(clash, row=clash.row | {"id": stored.json()["submission_id"]})
        committer = GroupCommitter(store_for(runtime), batch_max=50, concurrency=1)
        answers = await asyncio.gather(
            *(committer.submit(p) for p in items), return_exceptions=True
        )
        assert isinstance(answers[1], IntegrityError)  # as SQLAlchemy names it, on either path
        good = [a for n, a in enumerate(answers) if n != 1]
        assert all(isinstance(a, handlers.Accepted) for a in good)
        assert await count(app, select(func.count()).select_from(submissions)) == len(bodies) - 1
        assert await count(app, select(func.count()).select_from(outbox)) == len(bodies) - 1


async def test_group_commit_on_sqlite(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """The default local run (SQLite): concurrent declarations and a replayed key."""
    bodies = demo_declarations(12, seed=15)
    key = APP | {"Idempotency-Key": str(uuid.uuid4())}
    database = f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database
    ) as (http, app):
        answers = await post_all(http, bodies + [bodies[0]] * 2, [APP] * len(bodies) + [key] * 2)
        assert [a.status_code for a in answers] == [202] * (len(bodies) + 2)
        assert answers[-1].json()["submission_id"] == answers[-2].json()["submission_id"]
        stored = await count(app, select(func.count()).select_from(submissions))
        assert stored == len(bodies) + 1
        assert await count(app, select(func.count()).select_from(outbox)) == stored


async def test_database_unreachable_answers_5xx_and_accepts_nothing(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """No 202 without a commit: while the database does not answer, every declaration of the
    batch errors; once it is back, declarations are accepted and stored again."""
    bodies = demo_declarations(3, seed=16)
    database = await new_database()
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database
    ) as (_, app):
        runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
            working = runtime.engine
            runtime.engine = create_engine(
                f"postgresql+asyncpg://holdline:x@127.0.0.1:{free_port()}/x"
            )
            try:
                down = await post_all(http, bodies[:2], [APP] * 2)
            finally:
                await runtime.engine.dispose()
                runtime.engine = working
            assert [a.status_code >= 500 for a in down] == [True, True]
            back = await http.post("/v1/declarations", json=bodies[2], headers=APP)
            assert back.status_code == 202
        assert await count(app, select(func.count()).select_from(submissions)) == 1
