"""An app retrying a declaration it sent gets its replay, even when its phone is over the rate
limit; a new Idempotency-Key, or none, over the limit still gets 429 and stores nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from services.intake.models import submissions
from tests.integration.test_intake_api import APP, declaration, running_intake

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_concurrent_and_later_retries_with_one_key_all_replay(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    body = declaration(phone="13900000403")
    keyed = APP | {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    limits = {"rate_per_phone": 3, "rate_window_seconds": 3600}
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix, **limits) as (http, app):
        burst = await asyncio.gather(
            *(http.post("/v1/declarations", json=body, headers=keyed) for _ in range(10))
        )
        assert [a.status_code for a in burst] == [202] * 10, [a.text for a in burst]
        assert len({a.json()["submission_id"] for a in burst}) == 1
        # the phone is over its limit now (3 hits); the same key and body still replay
        later = await http.post("/v1/declarations", json=body, headers=keyed)
        assert later.status_code == 202, later.text
        assert later.json() == burst[0].json()
        # the same key with another body stays a conflict
        other = await http.post("/v1/declarations", json=body | {"loss_amount": 1}, headers=keyed)
        assert other.status_code == 409, other.text
        assert other.json()["detail"].startswith("Idempotency-Key:")
        # a fresh key, or no key, is a new declaration: limited
        fresh = await http.post(
            "/v1/declarations", json=body, headers=APP | {"Idempotency-Key": "k-fresh"}
        )
        bare = await http.post("/v1/declarations", json=body, headers=APP)
        for refused in (fresh, bare):
            assert refused.status_code == 429, refused.text
            assert refused.json()["detail"].startswith("phone:")
            assert int(refused.headers["Retry-After"]) >= 1
        async with app.state.runtime.engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(submissions))).scalar()
    assert stored == 1
