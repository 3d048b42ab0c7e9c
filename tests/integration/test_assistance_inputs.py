"""Assistance refuses bad input with a 422 naming the field, on real PostgreSQL, and keeps
nothing of a refused request: no row, no event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select, update

from services.assistance.app import create_app
from services.assistance.config import AssistanceSettings
from services.assistance.models import cadres, measures, visits
from services.assistance.roster import register_cadre
from services.assistance.schemas import CadreIn
from shared.clock import FrozenClock
from shared.events import Member
from shared.migrations import upgrade
from shared.service import Runtime
from tests.integration.test_assistance_api import START, TOWN, VILLAGE, WORKER, Platform
from tests.integration.test_risk_inputs import documented_values
from tests.support import refused_field

pytestmark = [pytest.mark.postgres]
TODAY = START.date().isoformat()


@pytest.fixture
async def platform(pg_url: str) -> AsyncIterator[Platform]:
    """The assistance app on a fresh database: one cadre, one monitored household `hh-1`."""
    settings = AssistanceSettings(database_url=pg_url)
    clock = FrozenClock(START)
    app = create_app(settings, clock)
    runtime: Runtime = app.state.runtime
    await upgrade(pg_url, runtime.service_dir)
    async with runtime.uow() as uow:
        cadre = CadreIn(
            cadre_id="c-lead", name="王县长", rank="county_leader", township_code=TOWN,
            village_codes=[VILLAGE],
        )  # fmt: skip
        await register_cadre(uow, cadre=cadre, actor="test", settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://assistance") as http:
        built = Platform(runtime, http, clock)
        await built.identify("hh-1", [WORKER], ["unstable_employment"])
        yield built
    await runtime.engine.dispose()


async def _visit_count(platform: Platform) -> int:
    async with platform.runtime.uow() as uow:
        return int((await uow.execute(select(func.count()).select_from(visits))).scalar_one())


@pytest.mark.parametrize("income", ["Infinity", "-Infinity", "NaN", "1e300", "1e12001", "-1"])
async def test_a_visit_income_must_be_a_finite_bounded_amount(
    platform: Platform, income: str
) -> None:
    """JSON parsers accept Infinity: it was stored, and its IncomeUpdated went out with null
    and failed to decode in risk, so the accepted visit was lost downstream."""
    lead = platform.auth("village", TOWN, "c-lead")
    raw = f'{{"household_id": "hh-1", "visited_on": "{TODAY}", "per_capita_income": {income}}}'
    answer = await platform.http.post(
        "/v1/visits", content=raw, headers=lead | {"Content-Type": "application/json"}
    )
    assert refused_field(answer) == "per_capita_income"
    assert await _visit_count(platform) == 0
    assert await platform.events("IncomeUpdated") == []
    assert await platform.events("VisitRecorded") == []


async def test_a_visit_income_at_the_bound_is_accepted(platform: Platform) -> None:
    lead = platform.auth("village", TOWN, "c-lead")
    visit = {"household_id": "hh-1", "visited_on": TODAY, "per_capita_income": 1e12}
    answer = await platform.http.post("/v1/visits", json=visit, headers=lead)
    assert answer.status_code == 201, answer.text
    [income] = await platform.events("IncomeUpdated")
    assert income.payload.per_capita_income == 1e12


def _token_of(platform: Platform, subject: str, role: str = "county") -> dict[str, str]:
    """A correctly signed token with any subject, as another issuer might sign it."""
    claims = {"sub": subject, "role": role, "jurisdiction": "530102",
              "exp": int(platform.clock.now().timestamp()) + 3600}  # fmt: skip
    secret = platform.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}


async def _count(platform: Platform, table: Any) -> int:
    async with platform.runtime.uow() as uow:
        return int((await uow.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_token_subject_longer_than_the_actor_columns_is_refused_when_checked(
    platform: Platform,
) -> None:
    """cadres.updated_by is String(100): a 150-character subject was a 500 on PostgreSQL."""
    body = {"cadre_id": "c-new", "name": "新", "rank": "general", "township_code": TOWN}
    long = _token_of(platform, "s" * 150)
    answer = await platform.http.post("/v1/cadres", json=body, headers=long)
    assert answer.status_code == 401
    assert answer.json()["detail"] == "Authorization: token subject is longer than 100 characters"
    assert await _count(platform, cadres) == 1
    fits = await platform.http.post("/v1/cadres", json=body, headers=_token_of(platform, "s" * 100))
    assert fits.status_code == 201, fits.text


async def test_a_measure_person_longer_than_its_column_is_refused(platform: Platform) -> None:
    """measures.person_id_hash is String(128): 300 characters were a 500 on PostgreSQL. The
    128-character one is a member of the household (a measure for a person names one)."""
    member = Member(person_id_hash="z" * 128, person_id_masked="5301***9", age=35)
    await platform.identify("hh-long", [member], ["unstable_employment"])
    headers = platform.auth("village", VILLAGE, "c-lead")
    plan = (await platform.http.get("/v1/households/hh-long/plan", headers=headers)).json()
    before = await _count(platform, measures)
    url = f"/v1/plans/{plan['plan_id']}/measures"
    long = {"code": "skills_training", "reason": "x", "person_id_hash": "z" * 129}
    assert (
        refused_field(await platform.http.post(url, json=long, headers=headers)) == "person_id_hash"
    )
    assert await _count(platform, measures) == before
    fits = long | {"person_id_hash": "z" * 128}
    assert (await platform.http.post(url, json=fits, headers=headers)).status_code == 201


@pytest.mark.parametrize("channel", ["webhook", "robot"])
async def test_a_contact_address_longer_than_notify_keeps_is_refused(
    platform: Platform, channel: str
) -> None:
    """notify records the address it sends to (String(500)): a longer one failed there."""
    url = "https://hooks.example.cn/" + "a" * 480
    body = {"cadre_id": "c-new", "name": "新", "rank": "general", "township_code": TOWN,
            "contacts": {channel: url}}  # fmt: skip
    county = platform.auth("county", "530102")
    assert (
        refused_field(await platform.http.post("/v1/cadres", json=body, headers=county))
        == "contacts"
    )
    assert await _count(platform, cadres) == 1
    assert len(await platform.events("CadreRegistered")) == 1  # the fixture's cadre


@pytest.mark.parametrize("visited_on", ["0001-01-01", "1999-05-01", "2013-12-31"])
async def test_a_visit_before_the_monitoring_baseline_is_refused(
    platform: Platform, visited_on: str
) -> None:
    lead = platform.auth("village", TOWN, "c-lead")
    visit = {"household_id": "hh-1", "visited_on": visited_on}
    assert (
        refused_field(await platform.http.post("/v1/visits", json=visit, headers=lead))
        == "visited_on"
    )
    assert await _visit_count(platform) == 0
    first_day = visit | {"visited_on": "2014-01-01"}
    assert (await platform.http.post("/v1/visits", json=first_day, headers=lead)).status_code == 201


@pytest.mark.parametrize("risks", [["bogus"], [""], ["illness", "bogus"], ["Illness"]])
async def test_a_visit_names_only_known_risk_types(platform: Platform, risks: list[str]) -> None:
    lead = platform.auth("village", TOWN, "c-lead")
    visit = {"household_id": "hh-1", "visited_on": TODAY, "new_risk_types": risks}
    field = refused_field(await platform.http.post("/v1/visits", json=visit, headers=lead))
    assert field.startswith("new_risk_types")
    assert await _visit_count(platform) == 0
    assert await platform.events("VisitRecorded") == []


async def test_a_visit_with_known_risk_types_publishes_each_once(platform: Platform) -> None:
    lead = platform.auth("village", TOWN, "c-lead")
    visit = {"household_id": "hh-1", "visited_on": TODAY,
             "new_risk_types": ["illness", "disaster", "illness"]}  # fmt: skip
    assert (await platform.http.post("/v1/visits", json=visit, headers=lead)).status_code == 201
    [recorded] = await platform.events("VisitRecorded")
    assert recorded.payload.new_risk_types == ["illness", "disaster"]


@pytest.mark.parametrize("reason", ["   ", "\t\n"])
async def test_a_measure_reason_must_not_be_blank(platform: Platform, reason: str) -> None:
    headers = platform.auth("village", VILLAGE, "c-lead")
    plan = (await platform.http.get("/v1/households/hh-1/plan", headers=headers)).json()
    before = await _count(platform, measures)
    answer = await platform.http.post(
        f"/v1/plans/{plan['plan_id']}/measures",
        json={"code": "skills_training", "reason": reason}, headers=headers,
    )  # fmt: skip
    assert refused_field(answer) == "reason"
    assert "blank" in answer.text
    assert await _count(platform, measures) == before


CADRE = {"cadre_id": "c-new", "name": "新", "rank": "general", "township_code": TOWN}


@pytest.mark.parametrize(
    "contacts",
    [
        {"email": "@"}, {"email": "zhao@"}, {"email": "@example.cn"}, {"email": "zhao@example"},
        {"email": "zhao wei@example.cn"}, {"email": "a@b@example.cn"},
        {"webhook": "http://"}, {"webhook": "https://"}, {"webhook": "http:///path"},
        {"webhook": "ftp://hooks.example.cn/x"}, {"webhook": "hooks.example.cn/x"},
        {"webhook": "http://user@/x"}, {"webhook": "http://hooks.example.cn:99999/x"},
        {"webhook": "http://hooks.example.cn/a b"}, {"robot": "https://"},
        {"sms": "1３８００１３８０００"},
    ],
)  # fmt: skip
async def test_cadre_contacts_must_be_usable_addresses(
    platform: Platform, contacts: dict[str, str]
) -> None:
    county = platform.auth("county", "530102")
    answer = await platform.http.post(
        "/v1/cadres", json=CADRE | {"contacts": contacts}, headers=county
    )
    assert refused_field(answer) == "contacts"
    assert await _count(platform, cadres) == 1


async def test_usable_cadre_contacts_are_accepted(platform: Platform) -> None:
    contacts = {
        "email": "zhao.wei+duty@mail.example.cn", "webhook": "https://hooks.example.cn:8443/a?b=c",
        "robot": "http://10.0.0.7/robot", "sms": "13800138000",
    }  # fmt: skip
    county = platform.auth("county", "530102")
    answer = await platform.http.post(
        "/v1/cadres", json=CADRE | {"contacts": contacts}, headers=county
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["contacts"] == contacts


async def test_codes_are_ascii_digits(platform: Platform) -> None:
    county = platform.auth("admin", "")
    wide = await platform.http.post(
        "/v1/cadres", json=CADRE | {"township_code": "５３０１０２００１"}, headers=county
    )
    assert refused_field(wide) == "township_code"
    village = await platform.http.post(
        "/v1/cadres", json=CADRE | {"village_codes": ["５３０１０２００１００１"]}, headers=county
    )
    assert refused_field(village) == "village_codes"


async def test_a_cadre_stored_under_older_rules_is_still_listed(platform: Platform) -> None:
    """The stricter contact rules check what comes in, not what was accepted before."""
    async with platform.runtime.uow() as uow:
        await uow.execute(
            update(cadres).where(cadres.c.id == "c-lead").values(contacts={"email": "@"})
        )
    listed = await platform.http.get("/v1/cadres", headers=platform.auth("village", TOWN))
    assert listed.status_code == 200, listed.text
    assert listed.json()[0]["contacts"] == {"email": "@"}


MEASURE_FILTERS = [
    ("status", {"planned", "in_progress", "completed", "cancelled"}),
    ("category", {"development", "social_security", "guarantee_fix", "emergency"}),
]


@pytest.mark.parametrize(("name", "known"), MEASURE_FILTERS)
@pytest.mark.parametrize("value", ["bogus", "PLANNED", ""])
async def test_an_unknown_measure_filter_is_refused_naming_it(
    platform: Platform, name: str, known: set[str], value: str
) -> None:
    """It was 200 with an empty list: the caller could not tell a typo from "none"."""
    headers = platform.auth("village", TOWN)
    answer = await platform.http.get("/v1/measures", params={name: value}, headers=headers)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [name]


@pytest.mark.parametrize(("name", "known"), MEASURE_FILTERS)
async def test_the_known_measure_filters_are_accepted_and_documented(
    platform: Platform, name: str, known: set[str]
) -> None:
    headers = platform.auth("village", TOWN)
    found = set()
    for value in known:
        answer = await platform.http.get("/v1/measures", params={name: value}, headers=headers)
        assert answer.status_code == 200, answer.text
        found |= {m[name] for m in answer.json()}
    assert found  # the household's plan has measures
    spec = (await platform.http.get("/openapi.json")).json()
    assert documented_values(spec, "/v1/measures", name) == known


@pytest.mark.parametrize("path", ["/v1/measures", "/v1/cadres", "/v1/workload", "/v1/visits/due"])
async def test_a_region_filter_is_ascii_digits(platform: Platform, path: str) -> None:
    answer = await platform.http.get(
        path, params={"region": "５３"}, headers=platform.auth("admin", "")
    )
    assert refused_field(answer) == "region"
