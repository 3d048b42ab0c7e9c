"""Registry sync (rules §1): households upserted by id; only a change is published."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from sqlalchemy import bindparam, insert, select, update

from services.intake.handlers import (
    INSERT_SUBMISSION,
    Accepted,
    body_hash,
    member_event,
    replay,
    stored_members,
    submission_row,
)
from services.intake.models import registry_households, submissions
from services.intake.pii import Vault, household_key
from services.intake.schemas import Location, RegistryHousehold, RegistrySync
from shared.db import UnitOfWork
from shared.events import Envelope, RegistryRecordReceived, new_event


@dataclass
class SyncOutcome:
    """What one sync changed."""

    accepted: Accepted
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    household_ids: list[str] = field(default_factory=list)


def registry_household_id(household: RegistryHousehold, vault: Vault) -> str:
    """The registry's household id, or one keyed from the naming member's ID."""
    return household.household_id or household_key(vault.hash(household.naming_id() or ""))


def duplicate_households(sync: RegistrySync, vault: Vault) -> list[tuple[Location, str]]:
    """(location, problem) of each household of `sync` whose id, as stored, is an earlier one's.

    The schema refuses a household id or a person given twice; this also catches a household
    without an id keyed to the same id as another (its naming member's keyed hash)."""
    first: dict[str, int] = {}
    problems: list[tuple[Location, str]] = []
    for n, household in enumerate(sync.households):
        hid = registry_household_id(household, vault)
        seen = first.setdefault(hid, n)
        if seen != n:
            names: Location = ("household_id",)
            if not household.household_id:
                names = ("household_member_id",) if household.household_member_id else (
                    "members", 0, "resident_id")  # fmt: skip
            problems.append((("households", n, *names), f"{hid} is also households.{seen}"))
    return problems


async def sync_registry(
    *,
    uow: UnitOfWork,
    sync: RegistrySync,
    idempotency_key: str | None,
    vault: Vault,
    signals_topic: str,
) -> SyncOutcome:
    """Upsert every household of the sync; one RegistryRecordReceived per new or changed one."""
    digest = body_hash(sync, vault)
    previous = await replay(uow, "registry", idempotency_key, digest)
    if previous is not None:
        body = (
            await uow.execute(
                select(submissions.c.body).where(submissions.c.id == previous.submission_id)
            )
        ).scalar_one()
        return SyncOutcome(previous, **body["outcome"])
    submission_id = str(uuid4())
    now = uow.clock.now()
    # every household once (duplicate_households, checked before): none is overwritten here
    latest: dict[str, tuple[RegistryHousehold, str]] = {}
    for household in sync.households:
        hid = registry_household_id(household, vault)
        latest[hid] = (household, vault.hash(json.dumps(household.model_dump(mode="json"),
                                                        sort_keys=True)))  # fmt: skip
    known = dict(
        (
            await uow.execute(
                select(registry_households.c.household_id, registry_households.c.body_hash).where(
                    registry_households.c.household_id.in_(list(latest))
                )
            )
        ).all()
    )
    outcome = SyncOutcome(Accepted(submission_id, next(iter(latest))), household_ids=list(latest))
    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    events: list[Envelope[RegistryRecordReceived]] = []
    last_event_id: str | None = None
    for hid, (household, h) in latest.items():
        if known.get(hid) == h:
            outcome.unchanged += 1
            continue
        row = {"household_id": hid, "village_code": household.village_code, "body_hash": h,
               "submission_id": submission_id, "updated_at": now}  # fmt: skip
        (updates if hid in known else creates).append(row)
        envelope = new_event(
            RegistryRecordReceived(
                submission_id=submission_id,
                village_code=household.village_code,
                baseline_status=household.baseline_status,
                per_capita_income=household.per_capita_income,
                previous_year_income=household.previous_year_income,
                members=[member_event(m, vault) for m in household.members],
            ),
            household_id=hid,
            source="intake",
            correlation_id=submission_id,
            clock=uow.clock,
        )
        events.append(envelope)
        last_event_id = str(envelope.event_id)
    outcome.created, outcome.updated = len(creates), len(updates)
    if creates:
        await uow.execute(insert(registry_households), creates)
    if updates:
        await uow.execute(
            update(registry_households)
            .where(registry_households.c.household_id == bindparam("hid"))
            .values(
                village_code=bindparam("village_code"),
                body_hash=bindparam("body_hash"),
                submission_id=bindparam("submission_id"),
                updated_at=bindparam("updated_at"),
            ),
            [
                {"hid": r["household_id"]} | {k: v for k, v in r.items() if k != "household_id"}
                for r in updates
            ],
        )
    stored = {
        "households": [
            household.model_dump(mode="json", exclude={"members", "household_member_id"})
            | {"household_id": hid, "members": stored_members(household.members, vault)}
            for hid, (household, _) in latest.items()
        ],
        # what the sync changed, so that a replay gives the original answer
        "outcome": {
            "created": outcome.created,
            "updated": outcome.updated,
            "unchanged": outcome.unchanged,
            "household_ids": outcome.household_ids,
        },
    }
    # the submission points at its last event: once that is published, all of them are
    row = submission_row(
        submission_id=submission_id,
        kind="registry",
        household_id=outcome.accepted.household_id,
        event_id=last_event_id or "",
        idempotency_key=idempotency_key,
        digest=digest,
        stored=stored,
        village_code=None,
        clock=uow.clock,
    )
    await uow.execute(INSERT_SUBMISSION, row)
    # through the unit of work: one statement, and the events are counted once committed
    await uow.record_many(events, signals_topic)
    return outcome
