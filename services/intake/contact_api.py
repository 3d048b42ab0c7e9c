"""How to reach a submission's household, for the officials an alert sends to it (rules §9)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from services.intake import contact
from services.intake.access import IntakeParts, contact_reader, parts_of
from services.intake.schemas import ContactReadEntry, HouseholdSubmission, SubmissionContact
from shared.auth import Official, ensure_within, require_role
from shared.db import UnitOfWork
from shared.inputs import PROBLEM_RESPONSES, Problem
from shared.service import Runtime, runtime_of

router = APIRouter(prefix="/v1", tags=["intake"], responses=PROBLEM_RESPONSES)
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Authorization: no, expired or forged bearer token"},
    403: {
        "model": Problem,
        "description": "village_code: outside the official's jurisdiction; role: a caller that "
        "may not read it",
    },
    404: {"model": Problem, "description": "submission_id: no such submission"},
}


async def _submission(uow: UnitOfWork, official: Official, submission_id: str) -> Any:
    """The submission, 404 when unknown or naming nobody to reach, 403 outside the official's
    jurisdiction."""
    row = await contact.submission_row(uow, submission_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"submission_id: {submission_id} not found")
    if row.kind not in contact.CONTACT_KINDS or not row.village_code:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"submission_id: {submission_id} is a {row.kind} submission; it names no one to reach",
        )
    ensure_within(official, row.village_code)
    return row


@router.get(
    "/submissions/{submission_id}/contact",
    response_model=SubmissionContact,
    responses=READ_ERRORS
    | {429: {"model": Problem, "description": "too many reads by this official; see Retry-After"}},
    summary="How to reach the household of a submission (officials; every read is recorded)",
)
async def get_submission_contact(
    submission_id: str,
    official: Annotated[Official, Depends(contact_reader)],
    runtime: Annotated[Runtime, Depends(runtime_of)],
    parts: Annotated[IntakeParts, Depends(parts_of)],
) -> SubmissionContact:
    """The declarant's name and phone (in clear), the masked resident ID (never the full ID),
    what the farmer or cadre wrote, risk types, amounts, and the submission's stage and outcome.
    For an official of the submission's village or above (admin too); the read is recorded
    (see /contact/audit) before the answer goes out."""
    wait = parts.per_official.hit(official.subject)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Authorization: too many contact reads by {official.subject}; "
            f"retry after {int(wait)} s",
            headers={"Retry-After": str(int(wait))},
        )
    async with runtime.uow() as uow:
        row = await _submission(uow, official, submission_id)
        found = await contact.read_contact(uow=uow, row=row, official=official, vault=parts.vault)
    return SubmissionContact(**found)


@router.get(
    "/submissions/{submission_id}/contact/audit",
    response_model=list[ContactReadEntry],
    responses=READ_ERRORS,
    summary="Who read a submission's contact, newest first (county or admin)",
)
async def get_submission_contact_audit(
    submission_id: str,
    official: Annotated[Official, Depends(require_role("county"))],
    runtime: Annotated[Runtime, Depends(runtime_of)],
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many reads")] = 100,
) -> list[ContactReadEntry]:
    """Every recorded read of the submission's contact: the official's id, role, jurisdiction
    and when, for a county official covering its village (or admin)."""
    async with runtime.uow() as uow:
        await _submission(uow, official, submission_id)
        reads = await contact.contact_reads_of(uow, submission_id, limit)
    return [ContactReadEntry(**r) for r in reads]


@router.get(
    "/households/{household_id}/submissions",
    response_model=list[HouseholdSubmission],
    responses=READ_ERRORS
    | {
        404: {
            "model": Problem,
            "description": "household_id: no declaration or cadre report (with that case_id)",
        }
    },
    summary="A household's declarations and cadre reports, newest first, with where to read "
    "each one's contact (officials)",
)
async def get_household_submissions(
    household_id: str,
    official: Annotated[Official, Depends(contact_reader)],
    runtime: Annotated[Runtime, Depends(runtime_of)],
    case_id: Annotated[
        str | None,
        Query(min_length=1, max_length=36, description="only those linked to this case"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> list[HouseholdSubmission]:
    """An alert names the household (and, for later steps or a feed's case, the case), not a
    submission: this lists the household's declarations and cadre reports in the official's
    jurisdiction, each with its stage, outcome and `contact_url`. No phone, name or ID; no
    registry sync or feed (they name no one to reach). 403 only when none lies within."""
    async with runtime.uow() as uow:
        found = await contact.household_submissions(
            uow, household_id, official=official, case_id=case_id, limit=limit
        )
        village = None if found else await contact.household_village(uow, household_id, case_id)
    if not found:
        if village is None:
            with_case = f" with case_id {case_id}" if case_id is not None else ""
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"household_id: {household_id} has no declaration or cadre report{with_case}",
            )
        ensure_within(official, village)  # none lies within: 403 naming the newest one's village
    return [HouseholdSubmission(**s) for s in found]
