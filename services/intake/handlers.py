"""Intake use cases: accept a submission durably (the row and its outbox event, one commit)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from sqlalchemy import insert, select

from services.intake.models import outbox, submissions
from services.intake.schemas import DeclarationCreate
from shared.db import UnitOfWork, utc
from shared.events import DeclarationSubmitted, new_event
from shared.identity import keyed_hash, mask_phone, mask_resident_id


class IdempotencyConflict(Exception):
    """The same Idempotency-Key was used with a different body."""


@dataclass(frozen=True)
class Accepted:
    """What intake answers once a submission is durable."""

    submission_id: str
    household_id: str
    replayed: bool = False


async def accept_declaration(
    *,
    uow: UnitOfWork,
    declaration: DeclarationCreate,
    idempotency_key: str | None,
    secret: str,
    signals_topic: str,
) -> Accepted:
    """Store a self-declaration and its DeclarationSubmitted event in one transaction."""
    body = declaration.model_dump(mode="json")
    body_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    if idempotency_key:
        previous = await _by_idempotency_key(uow, "declaration", idempotency_key)
        if previous is not None:
            if previous["body_hash"] != body_hash:
                raise IdempotencyConflict(idempotency_key)
            return Accepted(previous["id"], previous["household_id"], replayed=True)
    id_hash = keyed_hash(declaration.declarant_id, secret)
    household_id = declaration.household_id or f"hh-{id_hash[:20]}"
    submission_id = str(uuid4())
    event = new_event(
        DeclarationSubmitted(
            submission_id=submission_id,
            declarant_name=declaration.declarant_name,
            declarant_id_masked=mask_resident_id(declaration.declarant_id),
            village_code=declaration.village_code,
            risk_types=[str(r) for r in declaration.risk_types],
            description=declaration.description,
            medical_spending=declaration.medical_spending,
            schooling_spending=declaration.schooling_spending,
            loss_amount=declaration.loss_amount,
            income_change=declaration.income_change,
            happened_on=declaration.happened_on,
        ),
        household_id=household_id,
        source="intake",
        correlation_id=submission_id,
        clock=uow.clock,
    )
    # never keep a resident ID or phone in clear: a keyed hash for matching, a mask for display
    stored = body | {
        "declarant_id": mask_resident_id(declaration.declarant_id),
        "declarant_id_hash": id_hash,
        "phone": mask_phone(declaration.phone),
    }
    await uow.execute(
        insert(submissions).values(
            id=submission_id,
            kind="declaration",
            household_id=household_id,
            event_id=str(event.event_id),
            idempotency_key=idempotency_key,
            body_hash=body_hash,
            body=stored,
            received_at=uow.clock.now(),
        )
    )
    await uow.record(event, signals_topic)
    return Accepted(submission_id, household_id)


async def _by_idempotency_key(uow: UnitOfWork, kind: str, key: str) -> dict[str, Any] | None:
    row = (
        await uow.execute(
            select(submissions.c.id, submissions.c.household_id, submissions.c.body_hash).where(
                submissions.c.kind == kind, submissions.c.idempotency_key == key
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def submission_status(*, uow: UnitOfWork, submission_id: str) -> dict[str, Any] | None:
    """A submission with its publication state, or None."""
    row = (
        await uow.execute(
            select(
                submissions.c.id,
                submissions.c.kind,
                submissions.c.household_id,
                submissions.c.received_at,
                outbox.c.published_at,
            )
            .join(outbox, outbox.c.event_id == submissions.c.event_id)
            .where(submissions.c.id == submission_id)
        )
    ).first()
    if row is None:
        return None
    published = utc(row.published_at) if row.published_at else None
    return {
        "submission_id": row.id,
        "kind": row.kind,
        "household_id": row.household_id,
        "status": "published" if published else "received",
        "received_at": utc(row.received_at),
        "published_at": published,
    }
