"""The validation handler every service shares (shared.service): a body that is not JSON by
its Content-Type is a 415, a body that is not valid JSON names `body` and where it breaks; the
same answers as the routes that read their JSON body themselves (shared.inputs.json_body)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.assistance.app import create_app as assistance_app
from services.assistance.config import AssistanceSettings
from services.intake.app import create_app as intake_app
from services.intake.config import IntakeSettings
from services.risk.app import create_app as risk_app
from services.risk.config import RiskSettings
from shared.auth import mint_token
from shared.clock import SystemClock
from shared.service import validation_problem

# (service, path, role): routes whose JSON body FastAPI reads, and the declaration route that
# reads its own, which they must answer alike
ROUTES = [
    ("intake", "/v1/cadre-reports", "village"),
    ("intake", "/v1/registry", "county"),
    ("risk", "/v1/cases/c-1/actions", "village"),
    ("assistance", "/v1/cadres", "county"),
    ("intake", "/v1/declarations", None),
]


def _app(service: str, tmp_path: Path) -> FastAPI:
    url = f"sqlite+aiosqlite:///{tmp_path / service}.db"  # lifespan not run: never opened
    if service == "intake":
        return intake_app(IntakeSettings(database_url=url))
    if service == "risk":
        return risk_app(RiskSettings(database_url=url))
    return assistance_app(AssistanceSettings(database_url=url))


async def _post(
    tmp_path: Path, service: str, path: str, role: str | None, body: bytes, media: str | None
) -> httpx.Response:
    app = _app(service, tmp_path)
    if role is None:
        headers = {"X-App-Key": "holdline-dev-app-key"}
    else:
        secret = app.state.runtime.settings.jwt_secret.get_secret_value()
        signed = mint_token(
            subject="t-1", role=role, jurisdiction="530102001", secret=secret, clock=SystemClock()
        )  # type: ignore[arg-type]
        headers = {"Authorization": f"Bearer {signed}"}
    if media is not None:
        headers["Content-Type"] = media
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.post(path, content=body, headers=headers)


@pytest.mark.parametrize(("service", "path", "role"), ROUTES)
async def test_invalid_json_names_the_body_and_where_it_breaks(
    tmp_path: Path, service: str, path: str, role: str | None
) -> None:
    answer = await _post(tmp_path, service, path, role, b'{\n  "a": 1,\n  x}', "application/json")
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["errors"]
    assert problem["field"] == "body", answer.text
    assert problem["problem"].startswith("Invalid JSON: ")
    assert problem["problem"].endswith("at line 3 column 3"), answer.text


@pytest.mark.parametrize(("service", "path", "role"), ROUTES)
@pytest.mark.parametrize(
    ("media", "said"),
    [("text/plain", "text/plain"), (None, "none"), ("application/x-www-form-urlencoded; a=b",
                                                   "application/x-www-form-urlencoded; a=b")],
)  # fmt: skip
async def test_a_body_that_is_not_json_by_its_content_type_is_a_415(
    tmp_path: Path, service: str, path: str, role: str | None, media: str | None, said: str
) -> None:
    answer = await _post(tmp_path, service, path, role, b'{"a": 1}', media)
    assert answer.status_code == 415, answer.text
    assert answer.json() == {"detail": f"Content-Type: {said} is not application/json"}


@pytest.mark.parametrize("service", ["intake", "risk", "assistance"])
def test_the_415_is_documented_where_a_json_body_is_read(tmp_path: Path, service: str) -> None:
    spec = _app(service, tmp_path).openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            reads_json = "application/json" in operation.get("requestBody", {}).get("content", {})
            assert ("415" in operation["responses"]) is (
                reads_json or (method == "post" and path.startswith("/v1/feeds/{"))
            ), (method, path)


def test_a_json_error_without_its_document_still_names_the_body() -> None:
    error: dict[str, Any] = {"type": "json_invalid", "loc": ("body", 7), "msg": "JSON decode error",
                             "ctx": {"error": "Expecting value"}}  # fmt: skip
    assert validation_problem([error]) == {
        "error": "validation_failed",
        "errors": [{"field": "body", "problem": "Invalid JSON: Expecting value"}],
    }
    assert validation_problem([error], document='{"a":\n x')["errors"][0]["problem"] == (
        "Invalid JSON: Expecting value at line 2 column 2"
    )
