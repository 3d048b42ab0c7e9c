"""Request hygiene every API applies before its handlers: text that PostgreSQL can store.

PostgreSQL text cannot hold a NUL character, so a value carrying one would fail in the
database (a 500) instead of being refused as input (a 422 naming the field).

Also the few helpers a route uses when it reads its own JSON body and headers instead of
declaring them as FastAPI parameters (the busiest routes: FastAPI's per-request handling of
declared parameters cost more than the rest of the route; see bench/README.md).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError, field_validator
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    413: {"model": Problem, "description": "body: larger than the route's limit (BodyLimit)"},
    422: {"model": Problem, "description": "the request names a field it cannot use"},
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


def too_large(limit: int, declared: int | None = None) -> HTTPException:
    """The 413 of a body over `limit` bytes (its declared length when it has one)."""
    said = f"{declared} bytes exceeds" if declared is not None else "exceeds"
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body: {said} the limit of {limit}")


class BodyLimit:
    """Plain ASGI middleware: no request body larger than its route's limit is read whole.

    A declared Content-Length over the limit is answered 413 before anything else runs; a body
    without one (chunked) is counted as it arrives and the read that crosses the limit fails
    with the same 413, so no route, FastAPI's body parameters included, ever holds more than the
    limit in memory. `limits` maps a path prefix to its own limit, or to None for a route that
    streams its body under a limit of its own (a department feed)."""

    def __init__(self, app: ASGIApp, default: int, limits: Mapping[str, int | None]) -> None:
        self.app = app
        self.default = default
        # longest prefix first, so a narrower prefix wins
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int | None:
        """The limit of a request path (None: not limited here)."""
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a declared oversize at once, else count the body as the route reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            error = too_large(limit, declared)
            answer = JSONResponse({"detail": error.detail}, status_code=error.status_code)
            await answer(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


M = TypeVar("M", bound=BaseModel)


def _is_json(content_type: str) -> bool:
    """application/json or application/<anything>+json, parameters (charset) allowed."""
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body validated as `model`: 415 when it is not JSON, 422 naming each
    field that fails (`body` for the whole), in the shape of FastAPI's own 422. Its size is
    bounded by `BodyLimit` as it arrives."""
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type: {content_type or 'none'} is not application/json",
        )
    body = await request.body()
    if not body:
        raise RequestValidationError([{"loc": ("body",), "msg": "Field required"}])
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError(
            [error | {"loc": ("body", *error["loc"])} for error in errors]
        ) from None


def header_value(request: Request, name: str, *, max_length: int) -> str | None:
    """An optional header read by the route itself: None when absent or blank, 422 naming it
    when longer than `max_length`."""
    value = request.headers.get(name)
    if not value:
        return None
    if len(value) > max_length:
        raise RequestValidationError(
            [{"loc": ("header", name), "msg": f"at most {max_length} characters"}]
        )
    return value


def documented_json_body(model: type[BaseModel], headers: list[dict[str, Any]]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads `model` and `headers` itself: the OpenAPI
    document shows them as if they were declared parameters (the model must be among the
    app's body models, so that its schema is in the components)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "parameters": headers,
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
    }


class PlainRoute(APIRoute):
    """A route whose endpoint takes the Request and returns its Response itself (with
    `json_body` and `header_value`). It is documented like any route (response_model,
    openapi_extra), but per request FastAPI neither solves parameters nor validates and
    serialises the answer through the response model: 182 -> 152 us of CPU a request on intake's
    declaration route in process (bench/README.md)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself."""
        return self.endpoint
