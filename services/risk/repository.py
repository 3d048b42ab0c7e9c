"""Risk's queries: households, cases and their history, behind small functions."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    insert,
    literal,
    select,
    tuple_,
    update,
)

from services.risk.evaluation import HouseholdFacts
from services.risk.models import case_history, cases, deadline_alerts, households
from services.risk.rules import due_alerts
from services.risk.workflow import CaseState
from shared.db import UnitOfWork, one_of, utc
from shared.events import Guarantees, Member


def facts_of(row: Any | None) -> HouseholdFacts:
    """The evaluation facts held in a household row (empty when the household is new)."""
    if row is None:
        return HouseholdFacts()
    return HouseholdFacts(
        baseline_status=row.baseline_status,
        per_capita_income=row.per_capita_income,
        annual_income=row.annual_income,
        previous_year_income=row.previous_year_income,
        medical_spending=row.medical_spending or 0,
        schooling_spending=row.schooling_spending or 0,
        loss_amount=row.loss_amount or 0,
        members=tuple(Member.model_validate(m) for m in row.members or []),
        guarantees=Guarantees.model_validate(row.guarantees or {}),
        disaster_subtype=row.disaster_subtype,
        social_security=bool(row.social_security),
    )


def facts_columns(facts: HouseholdFacts) -> dict[str, Any]:
    """The household row columns that hold `facts`."""
    return {
        "baseline_status": facts.baseline_status,
        "per_capita_income": facts.per_capita_income,
        "annual_income": facts.annual_income,
        "previous_year_income": facts.previous_year_income,
        "medical_spending": facts.medical_spending,
        "schooling_spending": facts.schooling_spending,
        "loss_amount": facts.loss_amount,
        "members": [m.model_dump(mode="json") for m in facts.members],
        "guarantees": facts.guarantees.model_dump(mode="json"),
        "disaster_subtype": facts.disaster_subtype,
        "social_security": facts.social_security,
    }


def risk_codes(risk_types: list[str]) -> str:
    """Risk types as ",a,b," so the ledger can filter with LIKE on any database."""
    return "," + ",".join(sorted(risk_types)) + "," if risk_types else ""


async def household(uow: UnitOfWork, household_id: str, *, lock: bool = False) -> Any | None:
    """A household row, optionally locked for the rest of the transaction."""
    query = select(households).where(households.c.id == household_id)
    if lock and uow.conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await uow.execute(query)).first()


# built once: the id lists are bound when they run (shared.db.one_of)
_LOCK_HOUSEHOLDS = (
    select(households.c.id)
    .where(one_of(households.c.id, "ids"))
    .order_by(households.c.id)
    .with_for_update()
)
_HOUSEHOLDS = select(households).where(one_of(households.c.id, "ids"))
_SET_SOCIAL_SECURITY = (
    update(households)
    .where(one_of(households.c.id, "ids"))
    .values(social_security=True, updated_at=bindparam("now"))
)
_OPEN_CASE_HOUSEHOLDS = select(cases.c.household_id).where(
    one_of(cases.c.household_id, "ids"), cases.c.status == "open"
)
_OPEN_CASE_HOUSEHOLDS_LOCKED = _OPEN_CASE_HOUSEHOLDS.with_for_update()


async def lock_households(uow: UnitOfWork, household_ids: set[str]) -> None:
    """Lock these households (those that exist) in id order, as a signal batch does, so that
    two transactions each holding several never wait for each other in a circle."""
    if household_ids and uow.conn.dialect.name == "postgresql":
        await uow.execute(_LOCK_HOUSEHOLDS, {"ids": sorted(household_ids)})


async def households_by_id(uow: UnitOfWork, household_ids: set[str]) -> dict[str, Any]:
    """The rows of these households that exist, by id."""
    if not household_ids:
        return {}
    rows = await uow.execute(_HOUSEHOLDS, {"ids": sorted(household_ids)})
    return {row.id: row for row in rows.all()}


async def set_social_security(uow: UnitOfWork, household_ids: list[str]) -> None:
    """Mark these existing households as under social-security cover, in one statement."""
    if household_ids:
        await uow.execute(_SET_SOCIAL_SECURITY, {"ids": household_ids, "now": uow.clock.now()})


async def households_with_open_cases(uow: UnitOfWork, household_ids: set[str]) -> set[str]:
    """Which of these households have an open case (rules §4.8), locked as open_case locks."""
    if not household_ids:
        return set()
    lock = uow.conn.dialect.name == "postgresql"
    query = _OPEN_CASE_HOUSEHOLDS_LOCKED if lock else _OPEN_CASE_HOUSEHOLDS
    return set((await uow.execute(query, {"ids": sorted(household_ids)})).scalars())


async def save_household(
    uow: UnitOfWork, household_id: str, existing: Any | None, values: dict[str, Any]
) -> None:
    """Insert or update a household row."""
    values = values | {"updated_at": uow.clock.now()}
    if "risk_types" in values:
        values["risk_codes"] = risk_codes(values["risk_types"])
    if existing is None:
        # a household risk first hears of through an assistance event (a plan made by hand)
        defaults = {
            "risk_types": [], "risk_codes": "", "new_risk_types": [], "village_code": "",
            "members": [], "guarantees": Guarantees().model_dump(mode="json"),
        }  # fmt: skip
        await uow.execute(insert(households).values(id=household_id, **(defaults | values)))
    else:
        await uow.execute(update(households).where(households.c.id == household_id).values(values))


async def open_case(uow: UnitOfWork, household_id: str) -> Any | None:
    """The household's open case (rules §4.8: at most one), locked on PostgreSQL."""
    query = select(cases).where(cases.c.household_id == household_id, cases.c.status == "open")
    if uow.conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await uow.execute(query)).first()


async def case(uow: UnitOfWork, case_id: str, *, lock: bool = False) -> Any | None:
    """A case row."""
    query = select(cases).where(cases.c.id == case_id)
    if lock and uow.conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await uow.execute(query)).first()


def state_of(row: Any) -> CaseState:
    """The workflow state held in a case row."""
    return CaseState(
        purpose=row.purpose,
        stage=row.stage,
        data_compared=bool(row.data_compared),
        signed_form=bool(row.signed_form),
        notice_posted_at=utc(row.notice_posted_at) if row.notice_posted_at else None,
        notice_ends_at=utc(row.notice_ends_at) if row.notice_ends_at else None,
        objections=row.objections or 0,
    )


async def add_history(
    uow: UnitOfWork,
    *,
    case_id: str,
    actor: str,
    role: str,
    action: str,
    from_stage: str | None,
    to_stage: str,
    note: str = "",
    at: datetime | None = None,
) -> None:
    """rules §4: every transition recorded with who, when and why."""
    await uow.execute(
        insert(case_history).values(
            case_id=case_id,
            at=at or uow.clock.now(),
            actor=actor,
            role=role,
            action=action,
            from_stage=from_stage,
            to_stage=to_stage,
            note=note,
        )
    )


async def history(uow: UnitOfWork, case_id: str) -> list[Any]:
    """A case's transitions, oldest first."""
    query = select(case_history).where(case_history.c.case_id == case_id)
    return list((await uow.execute(query.order_by(case_history.c.id))).all())


# --- listing cases (GET /v1/cases) ---------------------------------------------------------

# each order's sort key; the case id breaks ties, so a page boundary is one exact point
CASE_ORDERS: dict[str, tuple[Any, bool]] = {
    "newest": (cases.c.opened_at, True),
    "oldest": (cases.c.opened_at, False),
    "deadline": (cases.c.deadline, False),  # the nearest deadline, the most urgent, first
}


class BadCursor(ValueError):
    """A cursor this API did not give out, or one given out for another order."""


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the order, the last case's sort key and its id. Opening times and
    deadlines never change (rules §4.8: a merge does not move the deadline), so the next page
    starts exactly after that case whatever was inserted meanwhile."""

    order: str
    key: datetime
    case_id: str

    def encode(self) -> str:
        raw = json.dumps([self.order, self.key.isoformat(), self.case_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, order: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            made_for, key, case_id = json.loads(raw)
            when = utc(datetime.fromisoformat(key))
        except (binascii.Error, ValueError, TypeError) as exc:
            raise BadCursor("not a cursor this API gave out") from exc
        if not isinstance(case_id, str) or made_for not in CASE_ORDERS:
            raise BadCursor("not a cursor this API gave out")
        if made_for != order:
            raise BadCursor(f"was given out for order={made_for}, not order={order}")
        return cls(made_for, when, case_id)

    @classmethod
    def after(cls, row: Any, order: str) -> Cursor:
        column, _ = CASE_ORDERS[order]
        return cls(order, utc(getattr(row, column.name)), row.id)


def is_overdue(now: datetime) -> ColumnElement[bool]:
    """rules §4.12: an open identification case past its deadline (as the scheduler alerts)."""
    return and_(cases.c.status == "open", cases.c.purpose == "identification",
                cases.c.deadline < now)  # fmt: skip


def is_home_visit_overdue(now: datetime) -> ColumnElement[bool]:
    """rules §4.10: open, a home visit due and passed, nobody visited yet. Every part is true
    or false, never NULL, so that its negation finds all the other cases."""
    return and_(cases.c.status == "open", cases.c.purpose == "identification",
                cases.c.home_visit_due.is_not(None), cases.c.home_visit_due < now,
                cases.c.home_visited_at.is_(None))  # fmt: skip


def is_paperwork_overdue(now: datetime) -> ColumnElement[bool]:
    """rules §5.3: open, its green-channel paperwork past due (paperwork_due is set only when
    the green channel opens)."""
    return and_(cases.c.status == "open", cases.c.purpose == "identification",
                cases.c.paperwork_due.is_not(None), cases.c.paperwork_due < now)  # fmt: skip


def late(row: Any, now: datetime) -> set[str]:
    """What of a listed case is late at `now`: the scheduler's own reading (rules.due_alerts),
    so a listed flag and the alert that was sent agree."""
    if row.status != "open" or row.purpose != "identification":
        return set()
    due = due_alerts(
        opened_at=utc(row.opened_at),
        deadline=utc(row.deadline),
        now=now,
        warning_fraction=1.0,  # the warning is not a filter here
        home_visit_due=utc(row.home_visit_due) if row.home_visit_due else None,
        home_visited=row.home_visited_at is not None,
        paperwork_due=utc(row.paperwork_due) if row.paperwork_due else None,
    )
    return {str(a.kind) for a in due} - {"warning"}


def _region(prefix: str) -> ColumnElement[bool]:
    """village_code inside a region prefix. For digits also as a range, which a B-tree index
    on village_code serves on PostgreSQL whatever the collation (LIKE with a bound prefix is
    not): the codes from `prefix` up to the next prefix, e.g. 530102 to 530103."""
    inside = cases.c.village_code.startswith(prefix, autoescape=True)
    if not prefix.isascii() or not prefix.isdigit():
        return inside
    stem = prefix.rstrip("9")
    if not stem:
        return and_(inside, cases.c.village_code >= prefix)
    upper = stem[:-1] + str(int(stem[-1]) + 1)
    return and_(inside, cases.c.village_code >= prefix, cases.c.village_code < upper)


def _flag(condition: ColumnElement[bool], wanted: bool) -> ColumnElement[bool]:
    return condition if wanted else ~condition


def case_list_query(
    *,
    now: datetime,
    jurisdiction: str | None,
    filters: dict[str, Any],
    order: str,
    after: Cursor | None,
    offset: int,
    limit: int,
) -> Select[Any]:
    """The cases a GET /v1/cases page shows: inside `jurisdiction` (None: everywhere), matching
    every filter given, in `order`, after the cursor or skipping `offset`, `limit` of them."""
    column, descending = CASE_ORDERS[order]
    conditions: list[ColumnElement[bool]] = []
    if jurisdiction is not None:
        conditions.append(_region(jurisdiction))
    if filters.get("household_id"):
        conditions.append(cases.c.household_id == filters["household_id"])
    for name in ("status", "stage", "purpose"):
        if filters.get(name) is not None:
            conditions.append(cases.c[name] == filters[name])
    if filters.get("green_channel") is not None:
        conditions.append(cases.c.green_channel == bool(filters["green_channel"]))
    for name, condition in (
        ("overdue", is_overdue),
        ("home_visit_overdue", is_home_visit_overdue),
        ("paperwork_overdue", is_paperwork_overdue),
    ):
        if filters.get(name) is not None:
            conditions.append(_flag(condition(now), filters[name]))
    if after is not None:
        # a row comparison: one range of the (key, id) order, which an index serves
        point = tuple_(literal(after.key, column.type), literal(after.case_id, cases.c.id.type))
        position = tuple_(column, cases.c.id)
        conditions.append(position < point if descending else position > point)
    keys = (column.desc(), cases.c.id.desc()) if descending else (column.asc(), cases.c.id.asc())
    query = select(cases).where(*conditions).order_by(*keys).limit(limit)
    return query.offset(offset) if offset else query


async def alerts_of(uow: UnitOfWork, case_ids: list[str]) -> dict[str, dict[str, datetime]]:
    """The deadline alerts sent for these cases (rules §4.9-§4.12, §5.3): kind -> when."""
    if not case_ids:
        return {}
    rows = await uow.execute(select(deadline_alerts).where(deadline_alerts.c.case_id.in_(case_ids)))
    found: dict[str, dict[str, datetime]] = {}
    for row in rows:
        found.setdefault(row.case_id, {})[row.kind] = utc(row.emitted_at)
    return found
