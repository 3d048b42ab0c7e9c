"""Risk's queries: households, cases and their history, behind small functions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from services.risk.evaluation import HouseholdFacts
from services.risk.models import case_history, cases, households
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
