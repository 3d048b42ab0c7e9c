"""Intake use cases: accept a submission durably (its row and its outbox events, one commit)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import uuid4

import asyncpg
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Update, bindparam, insert, or_, select, update

from services.intake.fields import china_today
from services.intake.models import outbox, submissions
from services.intake.pii import Vault, household_key
from services.intake.redact import redact
from services.intake.schemas import CadreReportCreate, DeclarationCreate, MemberIn
from shared.clock import Clock
from shared.db import UnitOfWork, driver_insert, one_of, outbox_rows, utc
from shared.events import (
    FEED_CHANNEL,
    CadreReportSubmitted,
    CaseMerged,
    CaseOpened,
    CaseRejected,
    DeclarationSubmitted,
    Envelope,
    GreenChannelOpened,
    Guarantees,
    HouseholdIdentified,
    Member,
    MonitoredHouseholdReassessed,
    new_event,
)
from shared.identity import mask_phone

# built once and run with parameters: building `.values(...)` per request showed in profiles
INSERT_SUBMISSION = insert(submissions)


class IdempotencyConflict(Exception):
    """The same Idempotency-Key was used with a different body."""


@dataclass(frozen=True)
class Accepted:
    """What intake answers once a submission is durable."""

    submission_id: str
    household_id: str
    replayed: bool = False


def body_hash(model: BaseModel, vault: Vault) -> str:
    """A keyed hash of the body (it holds resident IDs, so a plain hash would be guessable)."""
    return vault.hash(json.dumps(model.model_dump(mode="json"), sort_keys=True))


async def replay(uow: UnitOfWork, kind: str, key: str | None, digest: str) -> Accepted | None:
    """The original answer for a reused Idempotency-Key; 409 material when the body differs."""
    if not key:
        return None
    row = (
        await uow.execute(
            select(submissions.c.id, submissions.c.household_id, submissions.c.body_hash).where(
                submissions.c.kind == kind, submissions.c.idempotency_key == key
            )
        )
    ).first()
    if row is None:
        return None
    if row.body_hash != digest:
        raise IdempotencyConflict(key)
    return Accepted(row.id, row.household_id, replayed=True)


@dataclass(frozen=True)
class Prepared:
    """A submission ready to store: its row, its event and the answer once it is durable."""

    row: dict[str, Any]
    event: Envelope[Any]
    topic: str

    @property
    def key(self) -> tuple[str, str] | None:
        """(kind, Idempotency-Key), or None when the caller gave no key."""
        key = self.row["idempotency_key"]
        return (self.row["kind"], key) if key else None

    @property
    def accepted(self) -> Accepted:
        """The answer for this submission when it is the one stored."""
        return Accepted(self.row["id"], self.row["household_id"])


def prepare_declaration(
    *,
    declaration: DeclarationCreate,
    idempotency_key: str | None,
    vault: Vault,
    signals_topic: str,
    clock: Clock,
) -> Prepared:
    """A self-declaration's row and DeclarationSubmitted event, PII protected (no I/O)."""
    dumped = declaration.model_dump(mode="json")  # once: for the digest and the stored copy
    digest = vault.hash(json.dumps(dumped, sort_keys=True))
    declarant = vault.protect(declaration.declarant_id)
    household_id = declaration.household_id or household_key(
        vault.hash(declaration.member_id) if declaration.member_id else declarant.hash
    )
    submission_id = str(uuid4())
    event = new_event(
        DeclarationSubmitted(
            submission_id=submission_id,
            declarant_name=declaration.declarant_name,
            declarant_id_masked=declarant.masked,
            declarant_id_hash=declarant.hash,
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
        clock=clock,
    )
    # never keep a resident ID or phone in clear: hash for matching, mask, ciphertext (rules §9)
    stored = {k: v for k, v in dumped.items() if k != "member_id"} | {
        "declarant_id": declarant.masked,
        "declarant_id_hash": declarant.hash,
        "declarant_id_ciphertext": declarant.ciphertext,
        "phone": mask_phone(declaration.phone),
        "phone_ciphertext": vault.encrypt(declaration.phone),
    }
    row = submission_row(
        submission_id=submission_id,
        kind="declaration",
        household_id=household_id,
        event_id=str(event.event_id),
        idempotency_key=idempotency_key,
        digest=digest,
        stored=stored,
        village_code=declaration.village_code,
        clock=clock,
    )
    return Prepared(row, event, signals_topic)


Outcome = Accepted | IdempotencyConflict
# (kind, Idempotency-Key) -> (submission id, household id, body hash) of the stored submission
Known = dict[tuple[str, str], tuple[str, str, str]]
KNOWN_KEYS_SQL = (
    "SELECT kind, idempotency_key, id, household_id, body_hash FROM submissions"
    " WHERE idempotency_key = ANY($1::text[])"
)


async def store_batch(uow: UnitOfWork, batch: list[Prepared]) -> list[Outcome]:
    """Store many prepared submissions in the caller's transaction, each answer in order.

    A key already stored, or claimed earlier in the same batch, replays that submission
    (or conflicts when the body differs) instead of storing a second one.
    """
    keys = _idempotency_keys(batch)
    known: Known = {}
    if keys:
        rows = await uow.execute(
            select(
                submissions.c.kind,
                submissions.c.idempotency_key,
                submissions.c.id,
                submissions.c.household_id,
                submissions.c.body_hash,
            ).where(submissions.c.idempotency_key.in_(keys))
        )
        known = {(r.kind, r.idempotency_key): (r.id, r.household_id, r.body_hash) for r in rows}
    outcomes, fresh = sort_batch(batch, known)
    if fresh:
        await uow.execute(INSERT_SUBMISSION, [p.row for p in fresh])
        await uow.record_rows([(p.event, p.topic) for p in fresh])
    return outcomes


async def store_batch_on_driver(
    driver: asyncpg.Connection, batch: list[Prepared], *, now: datetime
) -> tuple[list[Outcome], list[Prepared]]:
    """store_batch straight on asyncpg (the group commit on PostgreSQL): the batch's rows of
    both tables in one statement, atomic by itself; returns the answers and the submissions
    stored."""
    keys = _idempotency_keys(batch)
    known: Known = {}
    if keys:
        rows = await driver.fetch(KNOWN_KEYS_SQL, list(keys))
        known = {(kind, key): (id_, home, digest) for kind, key, id_, home, digest in rows}
    outcomes, fresh = sort_batch(batch, known)
    if fresh:
        events = outbox_rows(((p.event, p.topic) for p in fresh), now)
        await driver_insert(driver, (submissions, [p.row for p in fresh]), (outbox, events))
    return outcomes, fresh


def _idempotency_keys(batch: list[Prepared]) -> set[str]:
    return {p.key[1] for p in batch if p.key}


def sort_batch(batch: list[Prepared], known: Known) -> tuple[list[Outcome], list[Prepared]]:
    """Each submission's answer, and the submissions to store: a key stored before (`known`) or
    claimed earlier in the batch replays that submission, or conflicts when the body differs."""
    known = dict(known)
    outcomes: list[Outcome] = []
    fresh: list[Prepared] = []
    for prepared in batch:
        key = prepared.key
        earlier = known.get(key) if key else None
        if key and earlier is not None:
            submission_id, household_id, digest = earlier
            same = digest == prepared.row["body_hash"]
            outcomes.append(
                Accepted(submission_id, household_id, replayed=True)
                if same
                else IdempotencyConflict(key[1])
            )
            continue
        if key:
            row = prepared.row
            known[key] = (row["id"], row["household_id"], row["body_hash"])
        fresh.append(prepared)
        outcomes.append(prepared.accepted)
    return outcomes, fresh


def member_event(member: MemberIn, vault: Vault, today: date | None = None) -> Member:
    """A member as events carry it: hashed and masked ID, age from the ID when not given."""
    protected = vault.protect(member.resident_id)
    age = member.age
    if age is None:
        born = date(int(member.resident_id[6:10]), int(member.resident_id[10:12]),
                    int(member.resident_id[12:14]))  # fmt: skip
        today = today or china_today()
        age = max(0, today.year - born.year - ((today.month, today.day) < (born.month, born.day)))
    return Member(
        person_id_hash=protected.hash,
        person_id_masked=protected.masked,
        name=member.name,
        age=min(age, 130),
        labour_capacity=member.labour_capacity,
        chronic_illness=member.chronic_illness,
        serious_illness=member.serious_illness,
        disability_grade=member.disability_grade,
        schooling_stage=member.schooling_stage,
        employed=member.employed,
        has_employment_record=member.has_employment_record,
    )


def stored_members(members: list[MemberIn], vault: Vault) -> list[dict[str, Any]]:
    """Members as intake keeps them for audit: ID as hash, mask and ciphertext only."""
    out = []
    for member in members:
        protected = vault.protect(member.resident_id)
        out.append(
            member.model_dump(mode="json", exclude={"resident_id"})
            | {
                "resident_id": protected.masked,
                "resident_id_hash": protected.hash,
                "resident_id_ciphertext": protected.ciphertext,
            }
        )
    return out


def prepare_cadre_report(
    *,
    report: CadreReportCreate,
    cadre_id: str,
    idempotency_key: str | None,
    vault: Vault,
    signals_topic: str,
    clock: Clock,
) -> Prepared:
    """A cadre report's row and CadreReportSubmitted event, PII protected (no I/O)."""
    digest = body_hash(report, vault)
    naming = report.naming_id()
    household_id = report.household_id or household_key(vault.hash(naming or ""))
    submission_id = str(uuid4())
    event = new_event(
        CadreReportSubmitted(
            submission_id=submission_id,
            cadre_id=cadre_id,
            village_code=report.village_code,
            risk_types=[str(r) for r in report.risk_types],
            per_capita_income=report.per_capita_income,
            previous_year_income=report.previous_year_income,
            annual_income=report.annual_income,
            medical_spending=report.medical_spending,
            schooling_spending=report.schooling_spending,
            loss_amount=report.loss_amount,
            members=[member_event(m, vault) for m in report.members],
            guarantees=Guarantees(**report.guarantees.model_dump()),
            basic_living_seriously_difficult=report.basic_living_seriously_difficult,
            facts_verified=report.facts_verified,
            description=report.description,
        ),
        household_id=household_id,
        source="intake",
        correlation_id=submission_id,
        clock=clock,
    )
    stored = report.model_dump(mode="json", exclude={"members", "household_member_id"}) | {
        "members": stored_members(report.members, vault),
        "cadre_id": cadre_id,
    }
    if report.household_member_id:
        stored["household_member_id_hash"] = vault.hash(report.household_member_id)
    row = submission_row(
        submission_id=submission_id,
        kind="cadre_report",
        household_id=household_id,
        event_id=str(event.event_id),
        idempotency_key=idempotency_key,
        digest=digest,
        stored=stored,
        village_code=report.village_code,
        clock=clock,
    )
    return Prepared(row, event, signals_topic)


def submission_row(
    *,
    submission_id: str,
    kind: str,
    household_id: str,
    event_id: str,
    idempotency_key: str | None,
    digest: str,
    stored: dict[str, Any],
    village_code: str | None,
    clock: Clock,
) -> dict[str, Any]:
    """The submission as kept (PII protected) for audit, replay and status look-up."""
    return {
        "id": submission_id,
        "kind": kind,
        "household_id": household_id,
        "event_id": event_id,
        "idempotency_key": idempotency_key,
        "body_hash": digest,
        "body": stored,
        "received_at": clock.now(),
        "village_code": village_code,
    }


def publication_status(*, event_id: str, published_at: object) -> str:
    """published once its last event is (or when it has none to publish), else received."""
    return "published" if published_at or not event_id else "received"


async def submission_status(*, uow: UnitOfWork, submission_id: str) -> dict[str, Any] | None:
    """A submission with its publication state and, once risk opened it, its case and the
    case's outcome."""
    row = (
        await uow.execute(
            select(
                submissions.c.id,
                submissions.c.kind,
                submissions.c.household_id,
                submissions.c.received_at,
                submissions.c.event_id,
                submissions.c.village_code,
                submissions.c.case_id,
                submissions.c.case_stage,
                submissions.c.outcome,
                submissions.c.outcome_reason,
                submissions.c.monitoring_kind,
                submissions.c.new_risk_types,
                submissions.c.green_channel,
                submissions.c.decided_at,
                outbox.c.published_at,
            )
            .outerjoin(outbox, outbox.c.event_id == submissions.c.event_id)
            .where(submissions.c.id == submission_id)
        )
    ).first()
    if row is None:
        return None
    received = utc(row.received_at)
    # a submission with no event (an unchanged registry sync) has nothing left to publish
    published = utc(row.published_at) if row.published_at else (None if row.event_id else received)
    status = publication_status(event_id=row.event_id, published_at=row.published_at)
    return {
        "submission_id": row.id,
        "kind": row.kind,
        "household_id": row.household_id,
        "village_code": row.village_code,
        "status": status,
        "stage": row.case_stage or status,
        "case_id": row.case_id,
        "outcome": row.outcome,
        # rules §9: stored masked since; a reason kept before is masked as it is read
        "outcome_reason": redact(row.outcome_reason) if row.outcome_reason else None,
        "monitoring_kind": row.monitoring_kind,
        "new_risk_types": row.new_risk_types or [],
        "green_channel": row.green_channel,
        "decided_at": utc(row.decided_at) if row.decided_at else None,
        "received_at": received,
        "published_at": published,
    }


async def on_case_event(*, uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Risk opened, merged or decided the case of a submission: the app can show where it is."""
    await on_case_events(uow=uow, events=[event])


# a submission only moves forward: its case, then the green channel, then a final outcome
# that nothing overwrites (a redelivered or late earlier event leaves it as it is)
LINK_STAGES = ("case_opened", "case_merged")
BEFORE_GREEN_CHANNEL = LINK_STAGES
BEFORE_OUTCOME = (*LINK_STAGES, "green_channel")
DecisionEvent = HouseholdIdentified | CaseRejected | MonitoredHouseholdReassessed


async def on_case_events(*, uow: UnitOfWork, events: list[Envelope[Any]]) -> None:
    """A run of case events, in order: the links to a case (CaseOpened, CaseMerged) in one
    statement per stretch of them, the green channels of a stretch in one statement (a
    department feed opens thousands, nearly all through the green channel and without a
    submission: risk then says so, and they cost nothing here), then each other outcome for
    the submissions it concerns."""
    latest: dict[str, dict[str, str]] = {}
    green: list[str] = []  # cases whose green channel opened, since the last statement
    for event in events:
        payload = event.payload
        if isinstance(payload, CaseOpened | CaseMerged):
            # a case a department record opened names the feed's batch, not a submission
            feed = isinstance(payload, CaseOpened) and payload.channel == FEED_CHANNEL
            if payload.submission_id and not feed:
                await _green(uow, green)  # the green channels before it, in their order
                stage = "case_opened" if isinstance(payload, CaseOpened) else "case_merged"
                latest.pop(payload.submission_id, None)  # keep the order of the last events
                latest[payload.submission_id] = {
                    "b_id": payload.submission_id,
                    "b_case": payload.case_id,
                    "b_stage": stage,
                }
        elif isinstance(payload, GreenChannelOpened):
            if payload.submission_ids == []:
                continue  # risk says no submission is linked to the case (a feed's)
            await _link(uow, latest)  # the links before it, so that it finds them
            latest = {}
            green.append(payload.case_id)
        elif isinstance(payload, DecisionEvent):
            await _link(uow, latest)
            latest = {}
            await _green(uow, green)
            await uow.execute(_outcome(payload, event.occurred_at))
    await _link(uow, latest)
    await _green(uow, green)


async def _green(uow: UnitOfWork, cases: list[str]) -> None:
    """rules §5: assist first, identify later: the submissions of these cases show it."""
    if cases:
        await uow.execute(GREEN, {"cases": list(cases)})
        cases.clear()


# executemany: one prepared statement, however many submissions the run names
LINK = (
    update(submissions)
    .where(
        submissions.c.id == bindparam("b_id"),
        or_(submissions.c.case_stage.is_(None), submissions.c.case_stage.in_(LINK_STAGES)),
    )
    .values(case_id=bindparam("b_case"), case_stage=bindparam("b_stage"))
)


async def _link(uow: UnitOfWork, latest: dict[str, dict[str, str]]) -> None:
    if latest:
        await uow.execute(LINK, list(latest.values()))


def _not_past(*stages: str) -> ColumnElement[bool]:
    return or_(submissions.c.case_stage.is_(None), submissions.c.case_stage.in_(stages))


# built once, the cases bound when it runs (shared.db.one_of)
GREEN = (
    update(submissions)
    .where(one_of(submissions.c.case_id, "cases"), _not_past(*BEFORE_GREEN_CHANNEL))
    .values(case_stage="green_channel", green_channel="opened")
)


def _outcome(payload: DecisionEvent, at: datetime) -> Update:
    """The update an outcome event makes: the submissions of its case (the case events carry
    no submission id), or the one submission a reassessment names."""
    if isinstance(payload, MonitoredHouseholdReassessed):
        # rules §4 channel 4: the household is monitored already, no case is opened
        return (
            update(submissions)
            .where(submissions.c.id == payload.submission_id, _not_past(*BEFORE_OUTCOME))
            .values(
                case_stage="already_monitored",
                outcome="already_monitored",
                new_risk_types=payload.new_risk_types,
                decided_at=at,
                # rules §5.1: provisional help now, even for a monitoring object
                **({"green_channel": "opened"} if payload.level == "green_channel" else {}),
            )
        )
    case = update(submissions).where(
        submissions.c.case_id == payload.case_id, _not_past(*BEFORE_OUTCOME)
    )
    if isinstance(payload, HouseholdIdentified):
        return case.values(
            case_stage="identified",
            outcome="identified",
            monitoring_kind=payload.kind,
            decided_at=at,
            **({"green_channel": "opened"} if payload.green_channel else {}),
        )
    return case.values(  # CaseRejected
        case_stage="rejected",
        outcome="rejected",
        # rules §9: the official's free text may name a phone or a resident ID; the farmer's
        # app reads it, so it is kept masked as notify's alerts show it
        outcome_reason=redact(payload.reason),
        decided_at=at,
        # rules §5.4: a rejection rolls back the provisional enrolment
        **({"green_channel": "rolled_back"} if payload.green_channel_rolled_back else {}),
    )
