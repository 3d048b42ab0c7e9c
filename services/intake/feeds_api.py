"""Department feed endpoints: a streamed upload in, a batch report and rejected rows out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from services.intake.access import Caller, IntakeParts, department_or_county, parts_of
from services.intake.config import IntakeSettings
from services.intake.feeds import CHARSETS, MEDIA_TYPES, FeedHeaderError, charset_of
from services.intake.ingest import (
    FeedConflict,
    FeedContext,
    FeedEmpty,
    FeedTooLarge,
    Retry,
    batch_report,
    claim_retry,
    ingest_feed,
    upload_digest,
)
from services.intake.ingest import rejected_lines as rejected_rows
from shared.auth import current_department
from shared.inputs import PROBLEM_RESPONSES
from shared.service import Runtime, runtime_of

router = APIRouter(
    prefix="/v1/feeds",
    tags=["feeds"],
    responses=PROBLEM_RESPONSES,
)
NDJSON_EXAMPLE = (
    '{"resident_id": "11010519491231002X", "recorded_on": "2026-10-31", '
    '"out_of_pocket_spending": 23800.5, "serious_illness_claim": true}\n'
)
CSV_EXAMPLE = (
    "resident_id,recorded_on,out_of_pocket_spending,serious_illness_claim\n"
    "11010519491231002X,2026-10-31,23800.5,true\n"
)
FEED_BODY = {
    "requestBody": {
        "required": True,
        "description": "one record per line, in the department's schema (rules §8)",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}, "example": NDJSON_EXAMPLE},
            "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
        },
    }
}


class FeedAccepted(BaseModel):
    """The answer to an upload: the batch and its counts."""

    batch_id: str
    department: str
    status: str
    lines: int
    accepted: int
    rejected: int
    status_url: str
    resumed_after_line: int | None = Field(
        None, description="a retry that resumed an interrupted batch: the lines kept from before"
    )


FeedKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$",
        description="retrying with the same key and file replays a complete batch's answer, "
        "or resumes an interrupted batch after the lines it committed",
    ),
]  # fmt: skip


class RowError(BaseModel):
    """One problem of one rejected line."""

    line: int
    field: str
    problem: str


class BatchRead(BaseModel):
    """A batch's totals and one page of per-row errors."""

    batch_id: str
    department: str
    content_type: str
    status: str
    detail: str | None
    lines: int
    accepted: int
    rejected: int
    received_at: Any
    completed_at: Any
    error_count: int
    errors: list[RowError]
    next_offset: int | None


@router.post(
    "/{department}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=FeedAccepted,
    openapi_extra=FEED_BODY,
    responses={
        200: {"model": FeedAccepted, "description": "replayed: this key's batch is complete"},
        401: {"description": "no or unknown department key"},
        403: {"description": "the key belongs to another department"},
        409: {"description": "Idempotency-Key: batch still being received, or another file"},
        413: {"description": "upload too large"},
        415: {"description": "not NDJSON or CSV, or a charset other than UTF-8, GBK, GB18030"},
    },
    summary="Department data-comparison feed (部门数据比对), streamed",
)
async def post_feed(
    request: Request,
    department: Annotated[str, Depends(current_department)],
    runtime: Annotated[Runtime, Depends(runtime_of)],
    parts: Annotated[IntakeParts, Depends(parts_of)],
    idempotency_key: FeedKey = None,
) -> Any:
    """Validate every row; valid rows are published even when others are rejected."""
    settings = cast(IntakeSettings, runtime.settings)
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    fmt = MEDIA_TYPES.get(media)
    if fmt is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type: {media or 'none'} is not one of {', '.join(MEDIA_TYPES)}",
        )
    # the declared charset is honoured (UTF-8 when none is declared); one that is not read
    # is refused before anything is stored, never guessed at
    charset = charset_of(content_type) or "utf-8"
    encoding = CHARSETS.get(charset)
    if encoding is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type: charset={charset} is not one of {', '.join(CHARSETS)}",
        )
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and int(length) > settings.feed_max_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"body: {length} bytes exceeds the feed limit of {settings.feed_max_bytes}",
        )
    ctx = FeedContext(
        department=department,
        fmt=fmt,
        uow_factory=runtime.uow,
        vault=parts.vault,
        clock=runtime.clock,
        topic=settings.topic("signals"),
        batch_rows=settings.feed_batch_rows,
        max_bytes=settings.feed_max_bytes,
        max_line_bytes=settings.feed_max_line_bytes,
        after_commit=runtime.relay.wake,
        slice_records=settings.feed_slice_records,
        shards=settings.feed_shards,
        idempotency_key=idempotency_key,
        encoding=encoding,
    )
    retry = None
    if idempotency_key is not None:
        stale_after = timedelta(seconds=settings.feed_resume_after_seconds)
        retry = await claim_retry(ctx=ctx, key=idempotency_key, stale_after=stale_after)
    if retry is not None and retry.action != "resume":
        return await _answer_retry(ctx, retry, request)
    try:
        counts = await ingest_feed(
            ctx=ctx, chunks=request.stream(), resume=retry.resume if retry else None,
            attempt_id=retry.attempt_id if retry else None,
        )  # fmt: skip
    except FeedConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except FeedHeaderError as exc:
        return JSONResponse(
            {"error": "validation_failed",
             "errors": [{"field": f, "problem": p} for f, p in exc.problems]},
            status_code=422,
        )  # fmt: skip
    except FeedTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
    except FeedEmpty as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return FeedAccepted(
        batch_id=counts.batch_id,
        department=department,
        status="complete",
        lines=counts.lines,
        accepted=counts.accepted,
        rejected=counts.rejected,
        status_url=f"/v1/feeds/batches/{counts.batch_id}",
        resumed_after_line=counts.resume.lines if counts.resume else None,
    )


async def _answer_retry(ctx: FeedContext, retry: Retry, request: Request) -> JSONResponse:
    """A complete batch's answer again (same file), or 409 while its first upload goes on."""
    batch = retry.batch
    if retry.action == "busy":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Idempotency-Key: batch {batch.id} with this key is still being received; "
            "retry when it has finished or stopped",
        )
    try:
        digest = await upload_digest(ctx=ctx, chunks=request.stream())
    except FeedTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
    if digest != batch.lines_sha256:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Idempotency-Key: already used for batch {batch.id} with a different file",
        )
    answer = FeedAccepted(
        batch_id=batch.id, department=batch.department, status=batch.status, lines=batch.lines,
        accepted=batch.accepted, rejected=batch.rejected,
        status_url=f"/v1/feeds/batches/{batch.id}", resumed_after_line=None,
    )  # fmt: skip
    return JSONResponse(answer.model_dump(), headers={"Idempotent-Replayed": "true"})


async def _owned_batch(runtime: Runtime, caller: Caller, batch_id: str) -> None:
    async with runtime.uow() as uow:
        found = await batch_report(uow=uow, batch_id=batch_id, offset=0, limit=0)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"batch_id: {batch_id} not found")
    if caller.department is not None and caller.department != found["department"]:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"batch_id: belongs to {found['department']}, not you"
        )


@router.get("/batches/{batch_id}", response_model=BatchRead)
async def get_batch(
    batch_id: str,
    caller: Annotated[Caller, Depends(department_or_county)],
    runtime: Annotated[Runtime, Depends(runtime_of)],
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> BatchRead:
    """A batch's counts and its per-row errors (line, field, problem), a page at a time."""
    await _owned_batch(runtime, caller, batch_id)
    async with runtime.uow() as uow:
        found = await batch_report(uow=uow, batch_id=batch_id, offset=offset, limit=limit)
    assert found is not None
    return BatchRead(**found)


@router.get(
    "/batches/{batch_id}/rejected",
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
async def export_rejected(
    batch_id: str,
    caller: Annotated[Caller, Depends(department_or_county)],
    runtime: Annotated[Runtime, Depends(runtime_of)],
    parts: Annotated[IntakeParts, Depends(parts_of)],
) -> StreamingResponse:
    """The rejected lines as sent (CSV keeps its header), to fix and post again."""
    await _owned_batch(runtime, caller, batch_id)
    async with runtime.uow() as uow:
        found = await batch_report(uow=uow, batch_id=batch_id, offset=0, limit=0)
    media = "text/csv" if found and found["content_type"] == "csv" else "application/x-ndjson"
    page = cast(IntakeSettings, runtime.settings).feed_errors_page
    return StreamingResponse(
        rejected_rows(uow_factory=runtime.uow, vault=parts.vault, batch_id=batch_id, page=page),
        media_type=media,
    )
