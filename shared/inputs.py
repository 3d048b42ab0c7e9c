"""Request hygiene every API applies before its handlers: text that PostgreSQL can store.

PostgreSQL text cannot hold a NUL character, so a value carrying one would fail in the
database (a 500) instead of being refused as input (a 422 naming the field).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, field_validator
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

NUL = "\x00"
PROBLEM = "must not contain a NUL character"


class FieldProblem(BaseModel):
    """One problem of a refused request, naming its field."""

    field: str
    problem: str


class Problem(BaseModel):
    """A refused request: field by field when the input is malformed (`error`, `errors`), or
    one `detail` that starts with the field name when a well-formed input cannot be used."""

    error: str | None = None
    errors: list[FieldProblem] = []
    detail: str | None = None


# what a router declares for 422, so that the documented shape is the one served
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "the request names a field it cannot use"}
}


def no_nul(value: Any) -> Any:
    """Refuse a NUL character anywhere in a string, list or mapping (a pydantic validator)."""
    if isinstance(value, str) and NUL in value:
        raise ValueError(PROBLEM)
    if isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul(item)
    elif isinstance(value, list | tuple):
        for item in value:
            no_nul(item)
    return value


class CleanInput(BaseModel):
    """A request body whose every field is free of NUL characters."""

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)


class NulGuard:
    """Plain ASGI middleware: 422 for a NUL character in the path or in a query parameter,
    before any route runs (cheaper than a dependency solved on every request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request when its URL carries a NUL; otherwise pass it on untouched."""
        if scope["type"] == "http":
            field = _nul_field(scope)
            if field is not None:
                answer = JSONResponse({"detail": f"{field}: {PROBLEM}"}, status_code=422)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _nul_field(scope: Scope) -> str | None:
    """The URL part that holds a NUL character ("path" or the parameter's name), else None."""
    if NUL in scope["path"]:
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:  # cheap test before parsing
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if NUL in name or NUL in value:
            return name.replace(NUL, "\\x00")
    return None
