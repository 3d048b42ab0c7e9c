"""Intake HTTP API (/v1): thin routers that authorise, call a handler and shape the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from services.intake import handlers, registry
from services.intake.access import Caller, IntakeParts, app_or_official, parts_of
from services.intake.schemas import (
    CadreReportCreate,
    DeclarationCreate,
    RegistryAccepted,
    RegistrySync,
    SubmissionAccepted,
    SubmissionRead,
)
from shared.auth import Official, check_app_key, ensure_within, require_role
from shared.inputs import (
    PROBLEM_RESPONSES,
    PlainRoute,
    documented_json_body,
    header_value,
    json_body,
)
from shared.service import Runtime, runtime_of

router = APIRouter(
    prefix="/v1",
    tags=["intake"],
    responses=PROBLEM_RESPONSES,
)
T = TypeVar("T")
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or unknown credentials"},
    403: {"description": "known caller, not allowed (role, jurisdiction or department)"},
    409: {"description": "Idempotency-Key already used with a different body"},
    413: {"description": "body too large"},
}
IDEMPOTENCY_KEY_MAX = 200
IDEMPOTENCY_KEY_HELP = "same key + same body replays the original answer"
IdempotencyKey = Annotated[
    str | None, Header(max_length=IDEMPOTENCY_KEY_MAX, description=IDEMPOTENCY_KEY_HELP)
]


def app_declaration(request: Request) -> IntakeParts:
    """The busiest route's check before its body is read: the app's key (401); then intake's
    helpers. Called by the route itself, not solved as a FastAPI dependency (which cost more
    than the check). The body's size is bounded for every route by shared.inputs.BodyLimit."""
    check_app_key(request, request.headers.get("x-app-key"))
    parts: IntakeParts = request.app.state.intake
    return parts


async def _idempotent(runtime: Runtime, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work` in a unit of work; a lost race on the Idempotency-Key replays the winner."""
    for attempt in (1, 2):
        try:
            async with runtime.uow() as uow:
                return await work(uow)
        except handlers.IdempotencyConflict:
            raise _conflict() from None
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _grouped(parts: IntakeParts, prepared: handlers.Prepared) -> handlers.Accepted:
    """Store through the group committer: answered once its batch is committed."""
    try:
        return await parts.committer.submit(prepared)
    except handlers.IdempotencyConflict:
        raise _conflict() from None


def _conflict() -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT, "Idempotency-Key: already used with a different body"
    )


def _accepted(accepted: handlers.Accepted) -> dict[str, str]:
    """The 202's fields (SubmissionAccepted)."""
    return {
        "submission_id": accepted.submission_id,
        "household_id": accepted.household_id,
        "status": "received",
        "status_url": f"/v1/submissions/{accepted.submission_id}",
    }


def _rate_limit(limiter_hit: float | None, field: str) -> None:
    if limiter_hit is not None:
        raise _too_many(limiter_hit, field)


def _too_many(wait: float, field: str) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"{field}: too many declarations; retry after {int(wait)} s",
        headers={"Retry-After": str(int(wait))},
    )


def _prepare(
    runtime: Runtime, parts: IntakeParts, declaration: DeclarationCreate, key: str | None
) -> handlers.Prepared:
    return handlers.prepare_declaration(
        declaration=declaration,
        idempotency_key=key,
        vault=parts.vault,
        signals_topic=runtime.settings.topic("signals"),
        clock=runtime.clock,
    )


async def _replay_over_limit(
    parts: IntakeParts, runtime: Runtime, declaration: DeclarationCreate, key: str | None
) -> handlers.Accepted | None:
    """A phone over its limit still gets the replay of a declaration it sent: an app retrying
    it (a lost answer, concurrent retries) is answered as the first time, not 429. Only a key
    already in flight here or stored replays (409 on a different body); a new key stores
    nothing and gets None, so fresh keys never pass the limit."""
    if not key:
        return None
    if parts.committer.holds(("declaration", key)):
        # queued or committing: the committer replays the first under the key, or conflicts
        return await _grouped(parts, _prepare(runtime, parts, declaration, key))
    try:
        async with runtime.uow() as uow:
            return await handlers.replay(
                uow, "declaration", key, handlers.body_hash(declaration, parts.vault)
            )
    except handlers.IdempotencyConflict:
        raise _conflict() from None


# The busiest route reads its body and headers itself: FastAPI's handling of declared
# parameters cost more per request than the rest of the route (bench/README.md). The OpenAPI
# document shows them as declared; the errors have the same shape.
DECLARATION_OPENAPI = documented_json_body(
    DeclarationCreate,
    headers=[
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": IDEMPOTENCY_KEY_HELP,
            "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
        },
        {
            "name": "X-App-Key",
            "in": "header",
            "required": False,
            "description": "the mobile app's key (401 without it)",
            "schema": {"type": "string"},
        },
    ],
)


async def post_declaration(request: Request) -> Response:
    """Accept a declaration: 202 once it is durable; Kafka may be down. The key is checked
    (401) before the body is read."""
    parts = app_declaration(request)
    runtime: Runtime = request.app.state.runtime
    idempotency_key = header_value(request, "Idempotency-Key", max_length=IDEMPOTENCY_KEY_MAX)
    declaration = await json_body(request, DeclarationCreate)
    _rate_limit(parts.per_ip.hit(request.client.host if request.client else "?"), "client")
    # the vault's keyed hash: the same digest as keyed_hash with the secret, without re-keying
    wait = parts.per_phone.hit(parts.vault.hash(declaration.phone))
    if wait is not None:
        replayed = await _replay_over_limit(parts, runtime, declaration, idempotency_key)
        if replayed is None:
            raise _too_many(wait, "phone")
        accepted = replayed
    else:
        accepted = await _grouped(parts, _prepare(runtime, parts, declaration, idempotency_key))
    # the documented SubmissionAccepted, without building the model on the busiest route
    body = orjson.dumps(_accepted(accepted))
    return Response(body, status.HTTP_202_ACCEPTED, media_type="application/json")


router.add_api_route(
    "/declarations",
    post_declaration,
    methods=["POST"],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmissionAccepted,
    responses=AUTH_ERRORS
    | {
        415: {"description": "the body is not application/json"},
        429: {"description": "rate limit; see Retry-After"},
    },
    openapi_extra=DECLARATION_OPENAPI,
    summary="Farmer self-declaration (农户自主申报)",
    route_class_override=PlainRoute,
)


@router.post(
    "/cadre-reports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmissionAccepted,
    responses=AUTH_ERRORS,
    summary="Grassroots cadre investigation report (基层干部排查)",
)
async def post_cadre_report(
    report: CadreReportCreate,
    official: Annotated[Official, Depends(require_role("village"))],
    runtime: Annotated[Runtime, Depends(runtime_of)],
    parts: Annotated[IntakeParts, Depends(parts_of)],
    idempotency_key: IdempotencyKey = None,
) -> SubmissionAccepted:
    """Accept a cadre's report on a household inside the cadre's jurisdiction."""
    ensure_within(official, report.village_code)
    prepared = handlers.prepare_cadre_report(
        report=report,
        cadre_id=official.subject,
        idempotency_key=idempotency_key or None,
        vault=parts.vault,
        signals_topic=runtime.settings.topic("signals"),
        clock=runtime.clock,
    )
    accepted = await _grouped(parts, prepared)
    return SubmissionAccepted(**_accepted(accepted))


@router.post(
    "/registry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RegistryAccepted,
    responses=AUTH_ERRORS,
    summary="Baseline household registry sync (upsert, bulk)",
)
async def post_registry(
    sync: RegistrySync,
    official: Annotated[Official, Depends(require_role("county"))],
    runtime: Annotated[Runtime, Depends(runtime_of)],
    parts: Annotated[IntakeParts, Depends(parts_of)],
    idempotency_key: IdempotencyKey = None,
) -> RegistryAccepted:
    """Upsert households; a household that did not change publishes nothing."""
    limit = runtime.settings.registry_max_households  # type: ignore[attr-defined]
    if len(sync.households) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"households: {len(sync.households)} exceeds the limit of {limit} per sync",
        )
    for n, household in enumerate(sync.households):
        ensure_within(official, household.village_code, f"households.{n}.village_code")
    duplicates = registry.duplicate_households(sync, parts.vault)
    if duplicates:
        raise RequestValidationError(
            [{"loc": ("body", *loc), "msg": problem, "type": "duplicate"}
             for loc, problem in duplicates]
        )  # fmt: skip
    outcome = await _idempotent(
        runtime,
        lambda uow: registry.sync_registry(
            uow=uow,
            sync=sync,
            idempotency_key=idempotency_key or None,
            vault=parts.vault,
            signals_topic=runtime.settings.topic("signals"),
        ),
    )
    return RegistryAccepted(
        submission_id=outcome.accepted.submission_id,
        status_url=f"/v1/submissions/{outcome.accepted.submission_id}",
        created=outcome.created,
        updated=outcome.updated,
        unchanged=outcome.unchanged,
        household_ids=outcome.household_ids,
    )


@router.get(
    "/submissions/{submission_id}",
    response_model=SubmissionRead,
    responses=AUTH_ERRORS | {404: {"description": "no such submission"}},
)
async def get_submission(
    submission_id: str,
    caller: Annotated[Caller, Depends(app_or_official)],
    runtime: Annotated[Runtime, Depends(runtime_of)],
) -> SubmissionRead:
    """Status of one submission: received → published → case opened (with its id)."""
    async with runtime.uow() as uow:
        found = await handlers.submission_status(uow=uow, submission_id=submission_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"submission_id: {submission_id} not found")
    if caller.official is not None and found["village_code"]:
        ensure_within(caller.official, found["village_code"])
    return SubmissionRead(**found)
