"""Request hygiene every API applies before its handlers: text that PostgreSQL can store.

PostgreSQL text cannot hold a NUL character, so a value carrying one would fail in the
database (a 500) instead of being refused as input (a 422 naming the field).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status
from pydantic import BaseModel, field_validator

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


async def reject_nul_in_url(request: Request) -> None:
    """FastAPI dependency: 422 for a NUL character in the path or in a query parameter
    (async: FastAPI runs a plain-def dependency in a worker thread, a hop per request)."""
    if NUL in request.url.path:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"path: {PROBLEM}")
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            field = name.replace(NUL, "\\x00")
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: {PROBLEM}")
