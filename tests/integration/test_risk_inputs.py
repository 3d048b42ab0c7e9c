"""Risk refuses bad input with a 422 naming the field, on real PostgreSQL, and a refused
action changes nothing: no stage moved, no income stored, no event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from tests.integration.test_risk_workflow_api import WORKER, Platform, risk_platform
from tests.support import refused_field

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def platform(pg_url: str) -> AsyncIterator[Platform]:
    """The risk app on a fresh database with one household `hh-1` and its open case."""
    async with risk_platform(pg_url) as built:
        await built.register("hh-1", [WORKER], income=5200)
        await built.declare("hh-1", ["illness"], medical_spending=3000)
        yield built


@pytest.mark.parametrize("field", ["per_capita_income", "annual_income"])
@pytest.mark.parametrize("amount", ["Infinity", "NaN", "1e308", "1000000000001", "-1", "true"])
async def test_an_action_income_must_be_a_finite_bounded_amount(
    platform: Platform, field: str, amount: str
) -> None:
    case_id = await platform.open_case_id("hh-1")
    url, village = f"/v1/cases/{case_id}", platform.auth("village")
    before = (await platform.http.get(url, headers=village)).json()
    raw = f'{{"action": "start_home_verification", "{field}": {amount}}}'
    answer = await platform.http.post(
        f"{url}/actions", content=raw, headers=village | {"Content-Type": "application/json"}
    )
    assert refused_field(answer) == field
    assert (await platform.http.get(url, headers=village)).json() == before
    household = await platform.http.get("/v1/households/hh-1", headers=village)
    assert household.json()["per_capita_income"] == 5200
    assert await platform.events("CaseStepCompleted") == []


async def test_an_action_income_at_the_bound_is_kept(platform: Platform) -> None:
    case_id = await platform.open_case_id("hh-1")
    answer = await platform.act(
        case_id, "village", "start_home_verification", per_capita_income=1e12, annual_income=0
    )
    assert answer.status_code == 200, answer.text
    household = await platform.http.get("/v1/households/hh-1", headers=platform.auth("village"))
    assert household.json()["per_capita_income"] == 1e12


async def test_a_token_subject_longer_than_the_history_column_is_refused_when_checked(
    platform: Platform,
) -> None:
    """case_history.actor is String(100): the subject of a longer token cannot be recorded."""
    case_id = await platform.open_case_id("hh-1")
    claims = {"sub": "v" * 101, "role": "village", "jurisdiction": "530102001",
              "exp": int(platform.clock.now().timestamp()) + 3600}  # fmt: skip
    secret = platform.settings.jwt_secret.get_secret_value()
    token = jwt.encode(claims, secret, algorithm="HS256")
    answer = await platform.http.post(
        f"/v1/cases/{case_id}/actions", json={"action": "start_home_verification"},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answer.status_code == 401
    assert answer.json()["detail"].startswith("Authorization: token subject is longer than 100")
    assert await platform.events("CaseStepCompleted") == []


@pytest.mark.parametrize("reason", ["   ", "\t"])
async def test_an_elimination_rollback_needs_a_reason_that_is_not_blank(
    platform: Platform, reason: str
) -> None:
    answer = await platform.http.post(
        "/v1/households/hh-1/elimination-rollback", json={"reason": reason},
        headers=platform.auth("county", "530102"),
    )  # fmt: skip
    assert refused_field(answer) == "reason" and "blank" in answer.text


def documented_values(spec: dict[str, Any], path: str, name: str) -> set[str]:
    """The values the OpenAPI document lists for query parameter `name` of GET `path`."""
    [param] = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name]
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.update(node.get("enum", []))
            if "const" in node:
                found.add(node["const"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(param["schema"])
    return found


FILTERS = [
    ("/v1/cases", "status", {"open", "identified", "rejected", "eliminated"}),
    ("/v1/cases", "stage",
     {"risk_discovered", "home_verification", "data_comparison", "village_appraisal",
      "township_review", "county_approval", "identified", "rejected", "eliminated"}),
    ("/v1/cases", "purpose", {"identification", "elimination"}),
    ("/v1/cases", "order", {"newest", "oldest", "deadline"}),
    ("/v1/ledger", "status",
     {"open", "registered", "monitoring", "eliminated", "no_labour_support"}),
    ("/v1/ledger", "kind", {"unstable", "marginal", "sudden"}),
    ("/v1/ledger", "risk_type",
     {"illness", "disability", "schooling", "disaster", "accident", "business_failure",
      "unstable_employment", "lack_of_labour", "housing_unsafe", "water_unsafe", "other"}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "name", "known"), FILTERS)
@pytest.mark.parametrize("value", ["bogus", "OPEN", ""])
async def test_an_unknown_filter_value_is_refused_naming_the_parameter(
    platform: Platform, path: str, name: str, known: set[str], value: str
) -> None:
    """It was 200 with an empty list: the caller could not tell a typo from "none"."""
    county = platform.auth("county", "530102")
    answer = await platform.http.get(path, params={name: value}, headers=county)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [name]


@pytest.mark.parametrize(("path", "name", "known"), FILTERS)
async def test_the_known_filter_values_are_accepted_and_documented(
    platform: Platform, path: str, name: str, known: set[str]
) -> None:
    county = platform.auth("county", "530102")
    for value in known:
        answer = await platform.http.get(path, params={name: value}, headers=county)
        assert answer.status_code == 200, answer.text
    spec = (await platform.http.get("/openapi.json")).json()
    assert documented_values(spec, path, name) == known


async def test_filters_find_what_they_name(platform: Platform) -> None:
    county = platform.auth("county", "530102")
    open_cases = await platform.http.get("/v1/cases", params={"status": "open"}, headers=county)
    assert [c["household_id"] for c in open_cases.json()] == ["hh-1"]
    ledger = await platform.http.get(
        "/v1/ledger", params={"status": "open", "risk_type": "illness"}, headers=county
    )
    assert [r["household_id"] for r in ledger.json()["items"]] == ["hh-1"]


@pytest.mark.parametrize("path", ["/v1/ledger", "/v1/ledger/counts"])
async def test_a_region_prefix_is_ascii_digits(platform: Platform, path: str) -> None:
    admin = platform.auth("admin", "")
    answer = await platform.http.get(path, params={"region_prefix": "５３"}, headers=admin)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["region_prefix"]
