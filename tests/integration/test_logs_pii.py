"""rules §9: a full run of the four services never writes a resident ID or a phone to its logs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.demo import Receiver, demo_declarations, official_headers
from shared.identity import check_character
from tests.support import SERVICES, Platform

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]
APP = {"X-App-Key": "holdline-dev-app-key"}


def _id(first17: str) -> str:
    return first17 + check_character(first17)


MEMBER_A = _id("53010219620411003")
MEMBER_B = _id("53010219900101004")
REGISTRY = _id("53010219551212005")
FEED_ONLY = _id("53010219771111006")
WRONG_CHECK = MEMBER_A[:-1] + ("0" if MEMBER_A[-1] != "0" else "1")


@pytest.fixture
async def platform(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[Platform, Receiver]]:
    receiver = Receiver()
    platform = Platform(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, logs=tmp_path,
        webhook_url=receiver.url,
    )  # fmt: skip
    try:
        await platform.start()
        yield platform, receiver
    finally:
        platform.stop()
        receiver.close()


async def test_rules_9_no_resident_id_or_phone_in_the_logs_of_a_full_run(
    platform: tuple[Platform, Receiver],
) -> None:
    live, receiver = platform
    url = live.urls
    declarations = demo_declarations(3, seed=23)
    secrets = {MEMBER_A, MEMBER_B, REGISTRY, FEED_ONLY, WRONG_CHECK}
    secrets |= {d["declarant_id"] for d in declarations}
    phones = {d["phone"] for d in declarations} | {"13912345678"}
    village, county = official_headers("village", "530102001"), official_headers("county", "530102")
    async with httpx.AsyncClient(timeout=15) as http:
        for body in declarations:
            answer = await http.post(f"{url['intake']}/v1/declarations", json=body, headers=APP)
            assert answer.status_code == 202, answer.text
        refused = declarations[0] | {"declarant_id": WRONG_CHECK, "phone": "13912345678"}
        answer = await http.post(f"{url['intake']}/v1/declarations", json=refused, headers=APP)
        assert answer.status_code == 422
        report = {
            "household_member_id": MEMBER_A, "village_code": "530102001001",
            "risk_types": ["disaster"], "per_capita_income": 6200, "loss_amount": 18000,
            "members": [{"resident_id": MEMBER_A, "name": "李桂兰"},
                        {"resident_id": MEMBER_B, "name": "王强", "age": 38}],
        }  # fmt: skip
        answer = await http.post(f"{url['intake']}/v1/cadre-reports", json=report, headers=village)
        assert answer.status_code == 202, answer.text
        registry = {"households": [{
            "village_code": "530102001002", "baseline_status": "formerly_poor",
            "per_capita_income": 7000, "members": [{"resident_id": REGISTRY, "name": "赵德明"}],
        }]}  # fmt: skip
        answer = await http.post(f"{url['intake']}/v1/registry", json=registry, headers=county)
        assert answer.status_code == 202, answer.text
        rows = (
            f'{{"resident_id": "{MEMBER_A}", "recorded_on": "2026-10-01", "house_rating": "D"}}\n'
            f'{{"resident_id": "{FEED_ONLY}", "recorded_on": "2026-10-01", "house_rating": "Q"}}\n'
            f'{{"resident_id": "{FEED_ONLY[:17]}", "recorded_on": "2026-10-01"}}\n'
        )
        feed_headers = {"X-API-Key": "dev-housing-key", "Content-Type": "application/x-ndjson"}
        answer = await http.post(f"{url['intake']}/v1/feeds/housing", content=rows,
                                 headers=feed_headers)  # fmt: skip
        assert answer.status_code == 202, answer.text
        # an ID in a URL reaches the access log
        lookup = await http.get(
            f"{url['risk']}/v1/cases", params={"household_id": MEMBER_B}, headers=county
        )
        assert lookup.status_code == 200
        for _ in range(300):
            if len({c["household_id"] for c in receiver.calls}) >= len(declarations):
                break
            await asyncio.sleep(0.2)
        assert receiver.calls, "no alert went out: the run did not get through the platform"
    clean = live.stop()
    assert all(clean.values()), clean
    logs = {name: live.log(name) for name in SERVICES}
    assert "POST /v1/declarations" in logs["intake"], "the access log was not captured"
    assert f"household_id={MEMBER_B[:6]}" in logs["risk"], "the ID-bearing URL was not logged"
    for name, text in logs.items():
        leaked = sorted(s for s in secrets if s in text or s[:17] in text)
        assert leaked == [], f"{name} logged resident IDs {leaked}"
        assert sorted(p for p in phones if p in text) == [], f"{name} logged phone numbers"
