"""Intake HTTP API (/v1): thin routers that validate, call a handler and shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from sqlalchemy.exc import IntegrityError

from services.intake import handlers
from services.intake.config import IntakeSettings
from services.intake.schemas import DeclarationCreate, SubmissionAccepted, SubmissionRead
from shared.service import Runtime, runtime_of

router = APIRouter(prefix="/v1", tags=["intake"])


async def body_within_limit(request: Request) -> None:
    """Refuse oversized bodies before parsing them."""
    settings: IntakeSettings = request.app.state.runtime.settings
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_body_bytes:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"body: {length} bytes exceeds the limit of {settings.max_body_bytes}",
        )


@router.post(
    "/declarations",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmissionAccepted,
    dependencies=[Depends(body_within_limit)],
    summary="Farmer self-declaration (农户自主申报)",
)
async def post_declaration(
    declaration: DeclarationCreate,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> SubmissionAccepted:
    """Accept a declaration: 202 once it is durable; Kafka may be down."""
    for attempt in (1, 2):
        try:
            async with runtime.uow() as uow:
                accepted = await handlers.accept_declaration(
                    uow=uow,
                    declaration=declaration,
                    idempotency_key=idempotency_key,
                    secret=runtime.settings.secret_key.get_secret_value(),
                    signals_topic=runtime.settings.topic("signals"),
                )
            break
        except handlers.IdempotencyConflict:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "Idempotency-Key: already used with a different body",
            ) from None
        except IntegrityError:
            # a concurrent request with the same key won the race; the second pass replays it
            if attempt == 2:
                raise
    return SubmissionAccepted(
        submission_id=accepted.submission_id,
        household_id=accepted.household_id,
        status="received",
        status_url=f"/v1/submissions/{accepted.submission_id}",
    )


@router.get("/submissions/{submission_id}", response_model=SubmissionRead)
async def get_submission(
    submission_id: str, runtime: Annotated[Runtime, Depends(runtime_of)]
) -> SubmissionRead:
    """Status of one submission."""
    async with runtime.uow() as uow:
        found = await handlers.submission_status(uow=uow, submission_id=submission_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"submission_id: {submission_id} not found")
    return SubmissionRead(**found)
