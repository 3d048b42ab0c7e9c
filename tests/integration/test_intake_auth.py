"""The auth matrix of every intake endpoint, and the validation error shape (rules §9)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import new_topic_prefix
from tests.integration.test_intake_api import (
    APP,
    ID_A,
    ID_B,
    cadre_report,
    declaration,
    registry_household,
    running_intake,
    token,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
HOUSING = {"X-API-Key": "dev-housing-key", "Content-Type": "application/x-ndjson"}
FEED_ROW = f'{{"resident_id": "{ID_A}", "recorded_on": "2026-10-01", "house_rating": "D"}}\n'
NONE: dict[str, str] = {}


@pytest.fixture(scope="module")
async def intake(kafka_bootstrap: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """One intake for the module, with a submission and a feed batch to read."""
    prefix = new_topic_prefix()
    async with running_intake(kafka=kafka_bootstrap, prefix=prefix, rate_per_ip=10_000) as (
        http,
        _,
    ):
        submission = (await http.post("/v1/declarations", json=declaration(), headers=APP)).json()
        batch = (await http.post("/v1/feeds/housing", content=FEED_ROW, headers=HOUSING)).json()
        yield http, {"submission": submission["status_url"], "batch": batch["status_url"]}


def _bearer(role: Any, where: str = "530102") -> dict[str, str]:
    return token(role, where)


CASES = [
    # (name, method, path, headers, expected status)
    ("declaration without key", "POST", "/v1/declarations", NONE, 401),
    ("declaration with a wrong key", "POST", "/v1/declarations", {"X-App-Key": "nope"}, 401),
    ("declaration with an official's token only", "POST", "/v1/declarations", "county", 401),
    ("cadre report without token", "POST", "/v1/cadre-reports", NONE, 401),
    ("cadre report with a forged token", "POST", "/v1/cadre-reports",
     {"Authorization": "Bearer abc.def.ghi"}, 401),
    ("cadre report with the app key", "POST", "/v1/cadre-reports", APP, 401),
    ("cadre report outside jurisdiction", "POST", "/v1/cadre-reports", "village-elsewhere", 403),
    ("cadre report inside jurisdiction", "POST", "/v1/cadre-reports", "village", 202),
    ("registry without token", "POST", "/v1/registry", NONE, 401),
    ("registry by a village cadre (wrong role)", "POST", "/v1/registry", "village", 403),
    ("registry outside jurisdiction", "POST", "/v1/registry", "county-elsewhere", 403),
    ("registry by the county", "POST", "/v1/registry", "county", 202),
    ("feed without key", "POST", "/v1/feeds/housing", {"Content-Type": "text/csv"}, 401),
    ("feed with an unknown key", "POST", "/v1/feeds/housing", {"X-API-Key": "x"}, 401),
    ("feed of another department", "POST", "/v1/feeds/housing",
     {"X-API-Key": "dev-water-key", "Content-Type": "application/x-ndjson"}, 403),
    ("feed of its own department", "POST", "/v1/feeds/housing", HOUSING, 202),
    ("submission without credentials", "GET", "submission", NONE, 401),
    ("submission with a wrong app key", "GET", "submission", {"X-App-Key": "nope"}, 401),
    ("submission by an official elsewhere", "GET", "submission", "county-elsewhere", 403),
    ("submission by the app", "GET", "submission", APP, 200),
    ("submission by a township official inside", "GET", "submission", "township", 200),
    ("batch without credentials", "GET", "batch", NONE, 401),
    ("batch by another department", "GET", "batch", {"X-API-Key": "dev-water-key"}, 403),
    ("batch by a township official (wrong role)", "GET", "batch", "township", 403),
    ("batch by its department", "GET", "batch", {"X-API-Key": "dev-housing-key"}, 200),
    ("batch by the county", "GET", "batch", "county", 200),
    ("rejected rows by another department", "GET", "rejected", {"X-API-Key": "dev-water-key"},
     403),
    ("rejected rows by its department", "GET", "rejected", {"X-API-Key": "dev-housing-key"}, 200),
]  # fmt: skip
ROLES = {
    "county": ("county", "530102"),
    "county-elsewhere": ("county", "110105"),
    "township": ("township", "530102001"),
    "village": ("village", "530102001"),
    "village-elsewhere": ("village", "530102002"),
}


@pytest.mark.parametrize(("name", "method", "path", "headers", "expected"), CASES)
async def test_auth_matrix(
    intake: tuple[httpx.AsyncClient, dict[str, str]],
    name: str,
    method: str,
    path: str,
    headers: dict[str, str] | str,
    expected: int,
) -> None:
    """401 for an unknown caller; 403 for a known one in the wrong role, place or department."""
    http, known = intake
    sent = _bearer(*ROLES[headers]) if isinstance(headers, str) else dict(headers)
    url = {"submission": known["submission"], "batch": known["batch"],
           "rejected": f"{known['batch']}/rejected"}.get(path, path)  # fmt: skip
    if method == "GET":
        answer = await http.get(url, headers=sent)
    elif path == "/v1/declarations":
        answer = await http.post(url, json=declaration(), headers=sent)
    elif path == "/v1/cadre-reports":
        answer = await http.post(url, json=cadre_report(), headers=sent)
    elif path == "/v1/registry":
        body = {"households": [registry_household(ID_A, 7000, village="530102001001")]}
        answer = await http.post(url, json=body, headers=sent)
    else:
        answer = await http.post(url, content=FEED_ROW, headers=sent)
    assert answer.status_code == expected, f"{name}: {answer.text}"
    if expected in (401, 403):
        detail = answer.json()["detail"]
        assert detail.split(":")[0] in {
            "X-App-Key", "Authorization", "X-API-Key", "role", "village_code", "department",
            "batch_id", "households.0.village_code",
        }, detail  # fmt: skip


TOMORROW = (date.today() + timedelta(days=2)).isoformat()
INVALID = [
    # rules §9.1 check character, §9.2 placeholder, §9.3 phone, §9.4 region, §9.5 amounts/dates
    ({"declarant_id": ID_A[:-1] + "9"}, "declarant_id", "check character"),
    ({"declarant_id": "999999198807070025"}, "declarant_id", "placeholder"),
    ({"declarant_id": "5301021988070700"}, "declarant_id", "17 digits"),
    ({"phone": "23800138000"}, "phone", "11 digits"),
    ({"village_code": "5301020010"}, "village_code", "12-digit"),
    # Python's \d takes other scripts' digits: stored, they would match no jurisdiction
    ({"village_code": "５３０１０２００１００１"}, "village_code", "12-digit"),
    ({"village_code": "٥٣٠١٠٢٠٠١٠٠١"}, "village_code", "12-digit"),
    ({"medical_spending": True}, "medical_spending", "not true or false"),
    ({"happened_on": 0}, "happened_on", "YYYY-MM-DD"),
    ({"declarant_name": "\u200b"}, "declarant_name", "visible character"),
    ({"declarant_name": "\x07\x1b[31m"}, "declarant_name", "control character"),
    ({"medical_spending": -1}, "medical_spending", "greater than or equal to 0"),
    ({"happened_on": TOMORROW}, "happened_on", "future"),
    ({"risk_types": ["bad_luck"]}, "risk_types.0", "illness"),
    ({"risk_types": []}, "risk_types", "at least 1"),
    ({"favourite_colour": "red"}, "favourite_colour", "unknown field"),
]


@pytest.mark.parametrize(("change", "field", "words"), INVALID)
async def test_invalid_declarations_name_the_field_and_the_problem(
    intake: tuple[httpx.AsyncClient, dict[str, str]], change: dict[str, Any], field: str, words: str
) -> None:
    http, _ = intake
    answer = await http.post("/v1/declarations", json=declaration(**change), headers=APP)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_failed"
    assert [e["field"] for e in body["errors"]] == [field]
    assert words in body["errors"][0]["problem"]
    # the offending value is never echoed back (it may be a resident ID)
    assert ID_A[:-1] not in answer.text


CADRE_INVALID = [
    ({"village_code": "５３０１０２００１００１"}, "village_code", "12-digit"),
    ({"members": [{"resident_id": ID_A}, {"resident_id": ID_A}]}, "members.1.resident_id",
     "the same person as members.0"),
    ({"members": [{"resident_id": ID_A, "name": "\u200b\u200c"}]}, "members.0.name", "visible"),
    ({"members": [{"resident_id": ID_A, "age": True}]}, "members.0.age", "not true or false"),
    ({"medical_spending": True}, "medical_spending", "not true or false"),
    ({"visited_on": 0}, "visited_on", "YYYY-MM-DD"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field", "words"), CADRE_INVALID)
async def test_invalid_cadre_reports_name_the_field_and_the_problem(
    intake: tuple[httpx.AsyncClient, dict[str, str]], change: dict[str, Any], field: str, words: str
) -> None:
    http, _ = intake
    # an admin: the region code is refused as input, not as outside a jurisdiction
    report = cadre_report(**change)
    answer = await http.post("/v1/cadre-reports", json=report, headers=_bearer("admin", ""))
    assert answer.status_code == 422, answer.text
    assert [(e["field"], words in e["problem"]) for e in answer.json()["errors"]] == [(field, True)]


async def test_a_registry_sync_with_a_household_or_a_person_twice_is_refused_whole(
    intake: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    """Upserted as sent, one of the two would silently win; nothing of the sync is stored."""
    http, _ = intake
    county = _bearer("county")
    first, second = (registry_household(ID_A, 1) | {"household_id": "hh-twice"},
                     registry_household(ID_B, 99_999) | {"household_id": "hh-twice"})  # fmt: skip
    answer = await http.post("/v1/registry", json={"households": [first, second]}, headers=county)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [
        {"field": "households.1.household_id", "problem": "hh-twice is also households.0"}
    ]
    moved = registry_household(ID_A, 5) | {"household_id": "hh-other"}
    answer = await http.post("/v1/registry", json={"households": [first, moved]}, headers=county)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [
        {"field": "households.1.members.0.resident_id",
         "problem": "the same person is in households.0"}
    ]  # fmt: skip
    stored = await http.post("/v1/registry", json={"households": [first]}, headers=county)
    assert stored.status_code == 202, stored.text
    assert stored.json()["created"] == 1, "the refused syncs stored nothing"


async def test_oversized_bodies_are_refused(
    intake: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    http, _ = intake
    big = declaration(description="x" * 70_000)
    answer = await http.post("/v1/declarations", json=big, headers=APP)
    assert answer.status_code == 413
    assert answer.json()["detail"].startswith("body:")


async def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(
    intake: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    """No Content-Length to check up front: the declaration route stops reading at the limit."""
    http, _ = intake

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"description": "'
        for _ in range(100):
            yield b"x" * 1_000
        yield b'"}'

    answer = await http.post(
        "/v1/declarations", content=chunks(), headers=APP | {"Content-Type": "application/json"}
    )
    assert answer.status_code == 413, answer.text
    assert answer.json()["detail"] == "body: exceeds the limit of 65536"


MALFORMED = [
    # (name, body, headers, status, field or detail prefix)
    ("not JSON", b"{nope", {"Content-Type": "application/json"}, 422, "body"),
    ("a JSON array", b"[1]", {"Content-Type": "application/json"}, 422, "body"),
    ("empty", b"", {"Content-Type": "application/json"}, 422, "body"),
    ("text/plain", b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type:"),
    ("no Content-Type", b"{}", {}, 415, "Content-Type:"),
    ("an Idempotency-Key of 201 characters", None,
     {"Content-Type": "application/json", "Idempotency-Key": "k" * 201}, 422, "Idempotency-Key"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "headers", "status", "named"), MALFORMED)
async def test_malformed_declarations_are_refused_naming_what_is_wrong(
    intake: tuple[httpx.AsyncClient, dict[str, str]],
    name: str,
    content: bytes | None,
    headers: dict[str, str],
    status: int,
    named: str,
) -> None:
    http, _ = intake
    body = content if content is not None else json.dumps(declaration()).encode()
    answer = await http.post("/v1/declarations", content=body, headers=APP | headers)
    assert answer.status_code == status, (name, answer.text)
    if status == 422:
        assert [e["field"] for e in answer.json()["errors"]] == [named], answer.text
    else:
        assert answer.json()["detail"].startswith(named), answer.text
    # without the app key the same request is refused as unauthenticated, its body unread
    anonymous = await http.post("/v1/declarations", content=body, headers=headers)
    assert anonymous.status_code == 401, (name, anonymous.text)


async def test_the_declaration_route_documents_the_body_and_headers_it_reads(
    intake: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    """It reads them itself; the OpenAPI document still shows them, with the body's schema."""
    http, _ = intake
    spec = (await http.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/declarations"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/DeclarationCreate"}
    assert operation["requestBody"]["required"] is True
    declared = spec["components"]["schemas"]["DeclarationCreate"]
    assert set(declared["required"]) >= {"declarant_id", "phone", "village_code", "risk_types"}
    risk_type = {"$ref": "#/components/schemas/RiskType"}
    assert declared["properties"]["risk_types"]["items"] == risk_type
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert headers["Idempotency-Key"]["schema"]["maxLength"] == 200
    assert "X-App-Key" in headers
    assert {"401", "413", "415", "422", "429"} <= set(operation["responses"])
