"""Monitoring objects after identification (rules §7): assistance events, elimination, rollback."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import uuid4

from sqlalchemy import insert, select

from services.risk import repository as repo
from services.risk.config import RiskSettings
from services.risk.elimination import EliminationFacts, elimination_check, no_labour_support
from services.risk.evaluation import guarantee_risks
from services.risk.handlers import process_signal, publish
from services.risk.income import income_histories, income_values
from services.risk.models import cases, income_records
from services.risk.rules import identification_deadline, merged_risk_types
from services.risk.signal_batch import MONITORED
from services.risk.signals import Signal
from services.risk.thresholds import threshold_for
from shared.auth import Official
from shared.db import UnitOfWork, utc
from shared.events import (
    CaseStepCompleted,
    EliminationRolledBack,
    Envelope,
    Guarantees,
    IncomeUpdated,
    MeasureAssigned,
    MeasureCompleted,
    Reason,
    VisitRecorded,
)

# measure categories/codes that mean social-security cover (rules §6.4, context for §7.3)
SOCIAL_SECURITY_MARKERS = ("social_security", "dibao", "tekun", "minimum_living", "extreme_poverty")
# the channel of a risk a responsible cadre found on a visit (MonitoredHouseholdReassessed's,
# and the case's when it opens one, rules §7.4)
VISIT_CHANNEL = "visit"


def elimination_status(row: Any, settings: RiskSettings, today: date) -> tuple[bool, list[Reason]]:
    """rules §7.1: whether a monitoring object meets every elimination condition, and why."""
    if row is None:
        return False, []
    facts = repo.facts_of(row)
    threshold = threshold_for(settings.thresholds, row.village_code, today)
    return elimination_check(
        EliminationFacts(
            per_capita_income=row.per_capita_income,
            income_above_since=row.income_above_since,
            monitored_since=(
                settings.work_calendar.local_date(utc(row.identified_at))
                if row.identified_at
                else today
            ),
            measures_completed=row.measures_completed,
            guarantees_secure=not guarantee_risks(facts.guarantees),
            original_risk_resolved=bool(row.last_visit_clear),
            new_risk_types=tuple(row.new_risk_types or []),
            members=facts.members,
            social_security=facts.social_security,
        ),
        threshold_yuan=threshold.annual_yuan if threshold else None,
        today=today,
        stable_income_months=settings.elimination_stable_income_months,
        min_monitoring_months=settings.elimination_min_monitoring_months,
    )


async def record_income(
    uow: UnitOfWork,
    row: Any,
    settings: RiskSettings,
    *,
    household_id: str,
    income: float | None,
    on: date,
    source: str,
    restart: bool = False,
) -> dict[str, Any]:
    """rules §7.1: record an income figure dated `on` in the household's income history and
    return the household's values: the income known now (the latest by date) and since when
    it has stayed above the threshold (elimination.income_run). The history is
    `income_records`; a household without one yet (monitored before it was kept) starts from
    what its row says. `restart`: a rollback (rules §7.4), which no earlier record may reach
    past."""
    history = await income_histories(uow, {household_id})
    await uow.execute(
        insert(income_records).values(
            household_id=household_id, recorded_on=on, per_capita_income=income, source=source,
            restart=restart, recorded_at=uow.clock.now(),
        )
    )  # fmt: skip
    return income_values(row, settings, history.get(household_id, []), [(on, income, restart)])


async def on_income_updated(
    *, uow: UnitOfWork, event: Envelope[IncomeUpdated], settings: RiskSettings
) -> None:
    """A new income figure: the elimination income clock moves or restarts."""
    row = await repo.household(uow, event.household_id, lock=True)
    values = await record_income(
        uow,
        row,
        settings,
        household_id=event.household_id,
        income=event.payload.per_capita_income,
        on=event.payload.recorded_on,
        source=event.payload.source,
    )
    await repo.save_household(uow, event.household_id, row, values)
    await maybe_propose_elimination(uow=uow, event=event, settings=settings)


async def on_visit_recorded(
    *, uow: UnitOfWork, event: Envelope[VisitRecorded], settings: RiskSettings
) -> None:
    """A cadre visit: guarantees, income and new risks (rules §6.10, §7.1, §7.4).

    A new risk the cadre finds is a signal about the household (rules §4 channel 4, channel
    "visit"), evaluated as a declaration's or a report's is: a monitoring object's is kept as
    new and published as MonitoredHouseholdReassessed (level new_risk, or green_channel when
    rules §5.1 is met), so its plan fills the gap (§6.2) and its cadre is told; an eliminated
    household's opens a case (§7.4). A later clear visit resolves the new risks (below)."""
    visit = event.payload
    row = await repo.household(uow, event.household_id, lock=True)
    values: dict[str, Any] = {}
    if visit.per_capita_income is not None:
        values |= await record_income(
            uow,
            row,
            settings,
            household_id=event.household_id,
            income=visit.per_capita_income,
            on=visit.visited_on,
            source="visit",
        )
    status = row.status if row is not None else "registered"
    # rules §7.1: what the household is like now is what the latest visit found; a visit
    # recorded late, dated before one already recorded (or before a rollback, §7.4), still
    # gives its income (dated) and any new risk, but not the state of the guarantees or of
    # the risk
    last = row.last_visit_on if row is not None else None
    if last is None or visit.visited_on >= last:
        old = Guarantees.model_validate(row.guarantees or {}) if row is not None else Guarantees()
        guarantees = Guarantees.model_validate(
            old.model_dump() | visit.guarantees.model_dump(exclude_none=True)
        )
        values["guarantees"] = guarantees.model_dump(mode="json")
        clear = not visit.new_risk_types and not guarantee_risks(guarantees)
        values["last_visit_clear"] = clear
        values["last_visit_on"] = visit.visited_on
        since = row.new_risks_since if row is not None else None
        after = since is None or visit.visited_on >= since
        if clear and after and row is not None and status in MONITORED and row.new_risk_types:
            # rules §7.1: a new risk (from any channel) is resolved as the original risk is,
            # by a visit on or after the day it appeared that finds no risk and the
            # guarantees secured; the plan has filled its gap since
            # (MonitoredHouseholdReassessed). It joins the risks the household is monitored
            # for, and no longer blocks elimination; should it come back it is judged with
            # them, by the next visit.
            values["risk_types"] = merged_risk_types(row.risk_types or [], row.new_risk_types)
            values["new_risk_types"] = []
    await repo.save_household(uow, event.household_id, row, values)
    if visit.new_risk_types and status in (*MONITORED, "eliminated"):
        eliminated = status == "eliminated"
        signal = Signal(
            channel=VISIT_CHANNEL,
            village_code=row.village_code if row is not None else None,
            risk_types=list(visit.new_risk_types),
            observed_on=visit.visited_on,
            reasons=[
                Reason(rule="rules §7.4", detail="risk returned after elimination")
                if eliminated
                else Reason(rule="rules §4 channel 4", detail="new risk found at a cadre's visit")
            ],
        )
        await process_signal(uow=uow, event=event, signal=signal, settings=settings)
        if eliminated:
            return  # rules §7.4: the household is identified again through §4
    await maybe_propose_elimination(uow=uow, event=event, settings=settings)


async def on_measure_completed(
    *, uow: UnitOfWork, event: Envelope[MeasureCompleted], settings: RiskSettings
) -> None:
    """rules §7.1: at least one measure carried out."""
    row = await repo.household(uow, event.household_id, lock=True)
    done = (row.measures_completed if row is not None else 0) + 1
    await repo.save_household(uow, event.household_id, row, {"measures_completed": done})
    await maybe_propose_elimination(uow=uow, event=event, settings=settings)


def social_security_cover(measure: MeasureAssigned) -> bool:
    """Whether a measure puts its household under social-security cover."""
    label = f"{measure.category} {measure.code}".lower()
    return any(marker in label for marker in SOCIAL_SECURITY_MARKERS)


async def on_measure_assigned(
    *, uow: UnitOfWork, event: Envelope[MeasureAssigned], settings: RiskSettings
) -> None:
    """A social-security measure puts the household under cover (context for rules §7.3)."""
    if social_security_cover(event.payload):
        row = await repo.household(uow, event.household_id, lock=True)
        await repo.save_household(uow, event.household_id, row, {"social_security": True})
        await maybe_propose_elimination(uow=uow, event=event, settings=settings)


async def on_measures_assigned(
    *, uow: UnitOfWork, events: list[Envelope[MeasureAssigned]], settings: RiskSettings
) -> None:
    """A run of MeasureAssigned events, as on_measure_assigned one by one would leave them.

    A green-channel plan brings several measures at once, and a feed brings such plans by the
    thousand. The caller has locked the run's households (risk's assistance_run). They are
    read together and the cover is set with one statement. Only a household still under
    monitoring without an open case (the only kind the check after each event could move)
    goes through maybe_propose_elimination. After its first covering event a household
    cannot change again within a run of these events, so one check per household after the
    run's writes is the check each event would have made."""
    last: dict[str, Envelope[MeasureAssigned]] = {}
    for event in events:
        if social_security_cover(event.payload):
            last[event.household_id] = event
    if not last:
        return
    rows = await repo.households_by_id(uow, set(last))
    for household_id in sorted(set(last) - set(rows)):
        # not known to risk yet: the one-event path creates the row
        await on_measure_assigned(uow=uow, event=last[household_id], settings=settings)
    await repo.set_social_security(uow, sorted(rows))
    monitored = {h for h, row in rows.items() if row.status == "monitoring"}
    with_open_case = await repo.households_with_open_cases(uow, monitored)
    for household_id in sorted(monitored - with_open_case):
        await maybe_propose_elimination(uow=uow, event=last[household_id], settings=settings)


async def maybe_propose_elimination(
    *, uow: UnitOfWork, event: Envelope[Any], settings: RiskSettings
) -> None:
    """rules §7: propose elimination when every condition holds; never for §7.3 households."""
    row = await repo.household(uow, event.household_id)
    if row is None or row.status != "monitoring":
        return
    if await repo.open_case(uow, event.household_id) is not None:
        return
    facts = repo.facts_of(row)
    if no_labour_support(facts.members, facts.social_security):
        # rules §7.3: never eliminated; kept as a whole-household no-labour support household
        await repo.save_household(uow, row.id, row, {"status": "no_labour_support"})
        return
    now = uow.clock.now()
    eligible, reasons = elimination_status(row, settings, settings.work_calendar.local_date(now))
    if not eligible:
        return
    case_id = str(uuid4())
    await uow.execute(
        insert(cases).values(
            id=case_id,
            household_id=row.id,
            village_code=row.village_code,
            status="open",
            channel="elimination",
            risk_types=row.risk_types,
            opened_at=now,
            deadline=identification_deadline(
                now,
                days=settings.identification_days,
                calendar=settings.work_calendar,
                basis=settings.identification_day_basis,
            ),
            updated_at=now,
            purpose="elimination",
            stage="home_verification",
            data_compared=True,
            kind=row.kind,
            reasons=[r.model_dump(mode="json") for r in reasons],
            flags=[],
        )
    )
    await repo.add_history(
        uow,
        case_id=case_id,
        actor="risk",
        role="system",
        action="propose_elimination",
        from_stage=None,
        to_stage="home_verification",
        note="rules §7.1 criteria met",
    )
    await publish(
        uow,
        CaseStepCompleted(
            case_id=case_id,
            village_code=row.village_code,
            step="elimination_proposed",
            actor="risk",
            role="system",
            note="rules §7.1 criteria met",
            next_steps=["complete_home_verification"],
            purpose="elimination",
        ),
        household_id=row.id,
        correlation_id=case_id,
        topic=settings.topic("cases"),
    )


async def restarted_evidence(
    uow: UnitOfWork, row: Any, settings: RiskSettings, today: date
) -> dict[str, Any]:
    """rules §7.4: a rolled-back household is monitored again, and what proved rules §7.1
    before the rollback must not prove it again at once: the income clock restarts today (if
    the income known is above the threshold in force, else at the next record above it) and no
    record dated before the rollback counts again, the measures carried out count from zero
    (assistance plans the completed help again), and the original risk waits for a visit
    after the rollback that finds it resolved (one dated before it no longer counts). The
    facts (income, guarantees, members) stay."""
    income = await record_income(
        uow,
        row,
        settings,
        household_id=row.id,
        income=row.per_capita_income,
        on=today,
        source="rollback",
        restart=True,
    )
    return income | {"measures_completed": 0, "last_visit_clear": False, "last_visit_on": today}


class RollbackRefused(Exception):
    """The household has no elimination to roll back, or a case of its own decides it."""


async def rollback_elimination(
    *,
    uow: UnitOfWork,
    household_id: str,
    official: Official,
    reason: str,
    settings: RiskSettings,
) -> str:
    """rules §7.4: take an elimination back; the household is a monitoring object again."""
    row = await repo.household(uow, household_id, lock=True)
    if row is None or row.status != "eliminated":
        raise RollbackRefused("household_id: the household's risk is not marked eliminated")
    opened = await repo.open_case(uow, household_id)
    if opened is not None:
        # rules §7.4, §4.8: the risk came back and the household is being identified again
        # through §4 in its one open case; that case decides whether it is monitored again (a
        # rollback beside it would leave a monitored household whose plan, cadre and visits
        # wait on an identification, or end with it)
        raise RollbackRefused(
            f"household_id: {household_id} has the open case {opened.id} (rules §4.8: at most "
            "one); it is being identified again (rules §7.4) and that case decides"
        )
    last = (
        await uow.execute(
            select(cases.c.id)
            .where(cases.c.household_id == household_id, cases.c.status == "eliminated")
            .order_by(cases.c.closed_at.desc())
            .limit(1)
        )
    ).first()
    case_id = last.id if last else ""
    today = settings.work_calendar.local_date(uow.clock.now())
    await repo.save_household(
        uow,
        household_id,
        row,
        {"status": "monitoring"} | await restarted_evidence(uow, row, settings, today),
    )
    if last:
        await repo.add_history(
            uow,
            case_id=case_id,
            actor=official.subject,
            role=official.role,
            action="rollback_elimination",
            from_stage="eliminated",
            to_stage="eliminated",
            note=reason,
        )
    await publish(
        uow,
        EliminationRolledBack(case_id=case_id, village_code=row.village_code, reason=reason),
        household_id=household_id,
        correlation_id=case_id or household_id,
        topic=settings.topic("cases"),
    )
    return case_id
