"""Department feed results (rules §8.2: Holdline returns its verification result for each record
to the sending department): what risk made of every accepted record of a batch, by line, for the
department whose X-API-Key posted it to intake.

Each evaluated feed record leaves one household_signals row carrying its batch, line and
outcome (services/risk/signal_batch.py writes them with the row): a page is one range of the
(batch_id, line) index, the summary a count over the same index, whatever the batch's size.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, func, select

from services.risk.models import household_signals
from shared.auth import current_department
from shared.events import Reason
from shared.inputs import PROBLEM_RESPONSES
from shared.service import Runtime, runtime_of

router = APIRouter(
    prefix="/v1/feeds",
    tags=["feeds"],
    responses=PROBLEM_RESPONSES,
)

# what risk made of one record (signal_batch.SignalBatch.process decides it):
#   no_risk      evaluated, no risk type found, no open case to join
#   case_opened  it opened the household's case (rules §4.1)
#   case_joined  it joined the household's open case (rules §4.8)
#   monitored    the household is a monitoring object: re-evaluated (rules §4 channel 4)
Outcome = Literal["no_risk", "case_opened", "case_joined", "monitored"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
MAX_LINE = 2**31 - 1  # household_signals.line is an INTEGER
CSV_COLUMNS = [
    "line", "person_id_masked", "household_id", "outcome", "risk_types", "flags", "case_id",
]  # fmt: skip

_c = household_signals.c
# the department that sent a batch: any one of its records says it (the (batch_id, line) index)
_OWNER = (
    select(_c.payload["department"].as_string())
    .where(_c.batch_id == bindparam("batch_id"))
    .limit(1)
)
_PAGE = (
    select(
        _c.line, _c.payload["person_id_masked"].as_string().label("person_id_masked"),
        _c.household_id, _c.outcome, _c.risk_types, _c.flags, _c.case_id,
    )
    .where(_c.batch_id == bindparam("batch_id"), _c.line > bindparam("after_line"))
    .order_by(_c.line)
    .limit(bindparam("limit"))
)  # fmt: skip
_PAGE_OF_OUTCOME = _PAGE.where(_c.outcome == bindparam("outcome"))
_COUNTS = (
    select(_c.outcome, func.count())
    .where(_c.batch_id == bindparam("batch_id"))
    .group_by(_c.outcome)
)

NEXT_LINK = 'the next page, `<...&after_line=N>; rel="next"`; none on the last'
BatchId = Annotated[str, Path(min_length=1, max_length=64, description="intake's batch_id")]


class ResultsQuery(BaseModel):
    """The paging of a batch's results. Any other query parameter is refused (422 naming it)."""

    model_config = ConfigDict(extra="forbid")

    after_line: int = Field(
        0, ge=0, le=MAX_LINE, description="the records after this line: the previous page's last"
    )
    limit: int = Field(1000, ge=1, le=10_000, description="records a page")
    outcome: Outcome | None = Field(None, description="only the records of this outcome")
    format: Literal["json", "csv"] | None = Field(
        None, description="csv for a spreadsheet (or Accept: text/csv); json by default"
    )


class RecordResult(BaseModel):
    """What risk made of one accepted record of the feed."""

    line: int = Field(description="the record's line in the uploaded file")
    person_id_masked: str
    household_id: str
    outcome: Outcome
    risk_types: list[str] = Field(description="the risk types this record's evaluation found")
    flags: list[Reason] = Field(
        description="consistency flags raised (rules §3): the record is kept, and checked"
    )
    case_id: str | None = Field(description="the case it opened or joined")


class BatchResults(BaseModel):
    """One page of a batch's results, in line order."""

    batch_id: str
    department: str
    records: list[RecordResult]
    next_after_line: int | None = Field(
        description="after_line of the next page (also its Link rel=next); null on the last"
    )


class BatchSummary(BaseModel):
    """How far risk has come with a batch: poll until `evaluated` reaches intake's `accepted`."""

    batch_id: str
    department: str
    evaluated: int = Field(description="accepted records risk has evaluated so far")
    outcomes: dict[str, int] = Field(description="evaluated records by outcome")


async def _own_batch(runtime: Runtime, department: str, batch_id: str) -> None:
    """404 unless risk has evaluated records of this batch sent by this department (another
    department's batch is not told apart from an unknown one)."""
    async with runtime.uow() as uow:
        owner = (await uow.execute(_OWNER, {"batch_id": batch_id})).scalar()
    if owner != department:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"batch_id: no record of batch {batch_id} from {department} has been evaluated "
            "(intake's GET /v1/feeds/batches/{batch_id} says whether it accepted any)",
        )


def _wants_csv(query: ResultsQuery, accept: str | None) -> bool:
    if query.format is not None:
        return query.format == "csv"
    return "text/csv" in (accept or "").lower()


def _csv(records: list[RecordResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            [
                r.line, r.person_id_masked, r.household_id, r.outcome, ";".join(r.risk_types),
                "; ".join(f"{f.rule} {f.detail}" for f in r.flags), r.case_id or "",
            ]
        )  # fmt: skip
    return out.getvalue()


@router.get(
    "/{department}/batches/{batch_id}/results",
    response_model=BatchResults,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "headers": {"Link": {"description": NEXT_LINK, "schema": {"type": "string"}}},
        },
        401: {"description": "no or unknown department key"},
        403: {"description": "department: the key belongs to another department"},
        404: {"description": "batch_id: no record of it evaluated for this department"},
    },
    summary="What risk made of each record of a department feed (rules §8.2)",
)
async def batch_results(
    request: Request,
    department: Annotated[str, Depends(current_department)],
    batch_id: BatchId,
    runtime: Annotated[Runtime, Depends(runtime_of)],
    query: Annotated[ResultsQuery, Query()],
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """rules §8.2: each evaluated record of the batch, by line, `limit` at a time after
    `after_line`; the `Link` header's rel="next" (and `next_after_line`) gives the next page,
    and following it to the end reaches every record once. Records are evaluated in slices a
    few seconds apart: the summary says how many are in so far."""
    await _own_batch(runtime, department, batch_id)
    params: dict[str, Any] = {
        "batch_id": batch_id, "after_line": query.after_line, "limit": query.limit + 1,
    }  # fmt: skip
    statement = _PAGE
    if query.outcome is not None:
        statement, params["outcome"] = _PAGE_OF_OUTCOME, query.outcome
    async with runtime.uow() as uow:
        rows = (await uow.execute(statement, params)).all()
    records = [
        RecordResult(
            line=r.line, person_id_masked=r.person_id_masked or "", household_id=r.household_id,
            outcome=r.outcome, risk_types=r.risk_types, case_id=r.case_id,
            flags=[Reason.model_validate(f) for f in r.flags],
        )
        for r in rows[: query.limit]
    ]  # fmt: skip
    following = records[-1].line if len(rows) > query.limit else None
    headers = {}
    if following is not None:
        url = request.url.include_query_params(after_line=following)
        headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    if _wants_csv(query, accept):
        headers["Content-Disposition"] = (
            f'attachment; filename="{department}-{batch_id}-after-{query.after_line}.csv"'
        )
        return Response(_csv(records), media_type="text/csv; charset=utf-8", headers=headers)
    page = BatchResults(
        batch_id=batch_id, department=department, records=records, next_after_line=following
    )
    return Response(page.model_dump_json(), media_type="application/json", headers=headers)


@router.get(
    "/{department}/batches/{batch_id}/summary",
    response_model=BatchSummary,
    responses={
        401: {"description": "no or unknown department key"},
        403: {"description": "department: the key belongs to another department"},
        404: {"description": "batch_id: no record of it evaluated for this department"},
    },
    summary="How many records of a department feed risk has evaluated, by outcome (rules §8.2)",
)
async def batch_summary(
    department: Annotated[str, Depends(current_department)],
    batch_id: BatchId,
    runtime: Annotated[Runtime, Depends(runtime_of)],
) -> BatchSummary:
    """rules §8.2: the batch's evaluated records so far, counted by outcome. A department polls
    it until `evaluated` equals the `accepted` of intake's GET /v1/feeds/batches/{batch_id}."""
    await _own_batch(runtime, department, batch_id)
    async with runtime.uow() as uow:
        rows = await uow.execute(_COUNTS, {"batch_id": batch_id})
        counted: dict[str, int] = {outcome: count for outcome, count in rows}
    outcomes = {o: counted.get(o, 0) for o in OUTCOMES}
    return BatchSummary(
        batch_id=batch_id,
        department=department,
        evaluated=sum(counted.values()),
        outcomes=outcomes,
    )
