"""A submission's contact for the officials who must act on it, and the record of who read it.

rules §9: the phone is kept as Fernet ciphertext and the resident IDs as hash, mask and
ciphertext; an official of the submission's village or above may read the phone in clear and
the masked IDs (never a full ID), and every such read is recorded (contact_reads).
"""

from __future__ import annotations

import logging
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import Select, insert, select

from services.intake.handlers import publication_status, submission_status
from services.intake.models import contact_reads, outbox, submissions
from services.intake.pii import Vault
from shared.auth import Official
from shared.db import UnitOfWork, utc

log = logging.getLogger(__name__)
# the channels whose submission names someone to reach (a registry sync names many
# households at once and is nobody's alert)
CONTACT_KINDS = ("declaration", "cadre_report")
AMOUNTS = {
    "declaration": ("medical_spending", "schooling_spending", "loss_amount", "income_change"),
    "cadre_report": (
        "medical_spending", "schooling_spending", "loss_amount", "per_capita_income",
        "previous_year_income", "annual_income",
    ),
}  # fmt: skip


def contact_of(kind: str, body: dict[str, Any], vault: Vault) -> dict[str, Any]:
    """The contact fields of a stored submission body (pure): the phone decrypted, IDs masked."""
    amounts = {name: body.get(name) for name in AMOUNTS[kind]}
    common = {
        "description": body.get("description") or "",
        "risk_types": list(body.get("risk_types") or []),
        "amounts": amounts,
    }
    if kind == "cadre_report":
        members = [
            {"name": m.get("name") or "", "resident_id_masked": m.get("resident_id") or ""}
            for m in body.get("members") or []
        ]  # the stored resident_id is the mask (handlers.stored_members)
        return common | {
            "reported_by": body.get("cadre_id"),
            "members": members,
            "visited_on": body.get("visited_on"),
        }
    return common | {
        "declarant_name": body.get("declarant_name"),
        "phone": _decrypted(vault, body.get("phone_ciphertext")),
        "phone_masked": body.get("phone"),  # stored masked (handlers.prepare_declaration)
        "declarant_id_masked": body.get("declarant_id"),  # stored masked, likewise
        "happened_on": body.get("happened_on"),
    }


def _decrypted(vault: Vault, ciphertext: str | None) -> str | None:
    if not ciphertext:
        return None
    try:
        return vault.decrypt(ciphertext)
    except InvalidToken:
        # encrypted under another secret (HOLDLINE_SECRET_KEY is not rotatable, operations.md)
        log.warning("a stored phone cannot be decrypted with the current secret")
        return None


async def submission_row(uow: UnitOfWork, submission_id: str) -> Any:
    """The submission's kind, village and stored body, or None."""
    query = select(
        submissions.c.id, submissions.c.kind, submissions.c.village_code, submissions.c.body
    ).where(submissions.c.id == submission_id)
    return (await uow.execute(query)).first()


async def read_contact(
    *, uow: UnitOfWork, row: Any, official: Official, vault: Vault
) -> dict[str, Any]:
    """The contact of submission `row` with its stage and outcome; records the read in the
    caller's transaction (the answer goes out only once the record is committed)."""
    status = await submission_status(uow=uow, submission_id=row.id)
    assert status is not None, row.id  # the row was just read in this transaction
    await uow.execute(
        insert(contact_reads).values(
            submission_id=row.id,
            subject=official.subject,
            role=official.role,
            jurisdiction=official.jurisdiction,
            read_at=uow.clock.now(),
        )
    )
    # one line per read; the body's phone and IDs never reach it (shared.logs also masks them)
    log.info(
        "contact of submission %s read by %s (%s %s)",
        row.id, official.subject, official.role, official.jurisdiction or "-",
    )  # fmt: skip
    keep = ("submission_id", "household_id", "stage", "case_id", "outcome", "outcome_reason",
            "green_channel", "decided_at", "received_at")  # fmt: skip
    return (
        {k: status[k] for k in keep}
        | {"kind": row.kind, "village_code": row.village_code}
        | contact_of(row.kind, row.body, vault)
    )


async def contact_reads_of(uow: UnitOfWork, submission_id: str, limit: int) -> list[dict[str, Any]]:
    """Who read the submission's contact, newest first."""
    rows = await uow.execute(
        select(
            contact_reads.c.subject, contact_reads.c.role, contact_reads.c.jurisdiction,
            contact_reads.c.read_at,
        )
        .where(contact_reads.c.submission_id == submission_id)
        .order_by(contact_reads.c.read_at.desc(), contact_reads.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [
        {"subject": r.subject, "role": r.role, "jurisdiction": r.jurisdiction,
         "read_at": utc(r.read_at)}
        for r in rows
    ]  # fmt: skip


def contact_path(submission_id: str) -> str:
    """Where an official reads the contact of a submission."""
    return f"/v1/submissions/{submission_id}/contact"


def stage_of(*, case_stage: str | None, event_id: str, published_at: object) -> str:
    """A submission's stage as GET /v1/submissions/{id} gives it (handlers.submission_status,
    pure): its case's stage once it has one, else published or received."""
    return case_stage or publication_status(event_id=event_id, published_at=published_at)


def _of_household(household_id: str, case_id: str | None) -> Select[Any]:
    """The household's submissions that name someone to reach (CONTACT_KINDS), optionally only
    those linked to `case_id`."""
    query = select(
        submissions.c.id, submissions.c.kind, submissions.c.village_code,
        submissions.c.received_at, submissions.c.event_id, submissions.c.case_id,
        submissions.c.case_stage, submissions.c.outcome, submissions.c.outcome_reason,
        submissions.c.green_channel, submissions.c.decided_at,
    ).where(
        submissions.c.household_id == household_id,
        submissions.c.kind.in_(CONTACT_KINDS),
        submissions.c.village_code.is_not(None),
    )  # fmt: skip
    if case_id is not None:
        query = query.where(submissions.c.case_id == case_id)
    return query


async def household_submissions(
    uow: UnitOfWork, household_id: str, *, official: Official, case_id: str | None, limit: int
) -> list[dict[str, Any]]:
    """The household's declarations and cadre reports in villages the official covers, newest
    first: each with its stage and outcome and the path of its contact, never the contact itself
    (no phone, name or ID: reading those is the recorded contact read)."""
    query = _of_household(household_id, case_id).add_columns(outbox.c.published_at)
    query = query.outerjoin(outbox, outbox.c.event_id == submissions.c.event_id)
    if official.role != "admin":  # as Official.covers: the village starts with the jurisdiction
        query = query.where(
            submissions.c.village_code.startswith(official.jurisdiction, autoescape=True)
        )
    query = query.order_by(submissions.c.received_at.desc(), submissions.c.id.desc()).limit(limit)
    return [
        {
            "submission_id": r.id, "kind": r.kind, "village_code": r.village_code,
            "received_at": utc(r.received_at), "case_id": r.case_id,
            "stage": stage_of(case_stage=r.case_stage, event_id=r.event_id,
                              published_at=r.published_at),
            "outcome": r.outcome, "outcome_reason": r.outcome_reason,
            "green_channel": r.green_channel,
            "decided_at": utc(r.decided_at) if r.decided_at else None,
            "contact_url": contact_path(r.id),
        }
        for r in await uow.execute(query)
    ]  # fmt: skip


async def household_village(uow: UnitOfWork, household_id: str, case_id: str | None) -> str | None:
    """The village of the household's newest such submission, whoever covers it; None when it
    has none."""
    query = _of_household(household_id, case_id).with_only_columns(submissions.c.village_code)
    query = query.order_by(submissions.c.received_at.desc(), submissions.c.id.desc()).limit(1)
    village: str | None = (await uow.execute(query)).scalar_one_or_none()
    return village
