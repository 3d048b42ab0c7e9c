"""Workflow actions by officials (rules §4, §7.2): each transition checked, recorded, published."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from services.risk import repository as repo
from services.risk.config import RiskSettings
from services.risk.elimination import no_labour_support
from services.risk.evaluation import Evaluation, evaluate
from services.risk.handlers import publish
from services.risk.models import cases
from services.risk.monitoring import elimination_status, record_income
from services.risk.signal_batch import merge_rows, reason_rows
from services.risk.thresholds import threshold_for
from services.risk.workflow import (
    ASSIGN_VILLAGE,
    Action,
    CaseState,
    Command,
    RoleError,
    TransitionError,
    allowed_actions,
    apply,
    check_placement,
)
from shared.auth import Official, outside_message
from shared.db import UnitOfWork, utc
from shared.events import (
    CaseRejected,
    CaseStepCompleted,
    HouseholdIdentified,
    Member,
    Payload,
    Reason,
    RiskEliminated,
)
from shared.logs import redact

# the step of the CaseStepCompleted a placement publishes: notify tells the new village
VILLAGE_ASSIGNED = "village_assigned"


class CaseNotFound(Exception):
    """No case with that id."""


class ActionRefused(Exception):
    """The action cannot be taken: 403 (role, jurisdiction) or 409 (state), naming the field."""

    def __init__(self, status: int, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.status = status


@dataclass(frozen=True)
class ActionRequest:
    """One workflow action with what it carries."""

    action: Action
    note: str = ""
    reason: str = ""
    signed_form: bool = False
    per_capita_income: float | None = None
    annual_income: float | None = None
    village_code: str | None = None  # assign_village only


async def perform_action(
    *,
    uow: UnitOfWork,
    case_id: str,
    official: Official,
    request: ActionRequest,
    settings: RiskSettings,
) -> None:
    """Apply one action to a case, record who/when/why, publish what happened."""
    found = await repo.case(uow, case_id)
    if found is None:
        raise CaseNotFound(case_id)
    # lock the household before its case, in the same order as the signal consumer
    household = await repo.household(uow, found.household_id, lock=True)
    row = await repo.case(uow, case_id, lock=True)
    assert row is not None  # cases are never deleted
    if not official.covers(row.village_code):
        raise ActionRefused(403, "village_code", _outside(official, row.village_code))
    if (request.action == ASSIGN_VILLAGE) != (request.village_code is not None):
        needed = "required with" if request.village_code is None else "taken only by"
        raise ActionRefused(422, "village_code", f"{needed} {ASSIGN_VILLAGE}")
    now = uow.clock.now()
    state = repo.state_of(row)
    if request.village_code is not None:
        await _place(uow, row, household, official, request, state, settings.topic("cases"))
        return
    command = Command(
        request.action, official.role, now, request.signed_form, request.reason, request.note
    )
    try:
        new = apply(state, command, settings.public_notice_days)
    except RoleError as exc:
        raise ActionRefused(403, exc.field, exc.problem) from None
    except TransitionError as exc:
        raise ActionRefused(409, exc.field, exc.problem) from None
    values: dict[str, Any] = {
        "stage": new.stage,
        "data_compared": new.data_compared,
        "signed_form": new.signed_form,
        "notice_posted_at": new.notice_posted_at,
        "notice_ends_at": new.notice_ends_at,
        "objections": new.objections,
        "updated_at": now,
    }
    if request.action == "start_home_verification":
        values["home_visited_at"] = now  # rules §4.10: the home visit happened
    if request.per_capita_income is not None or request.annual_income is not None:
        # the home verification establishes income (rules §2.1); kept on the ledger, its
        # per-capita figure in the dated income history the §7.1 clock reads
        verified: dict[str, Any] = {"village_code": row.village_code}
        if request.annual_income is not None:
            verified["annual_income"] = request.annual_income
        if request.per_capita_income is not None:
            verified |= await record_income(
                uow, household, settings, household_id=row.household_id,
                income=request.per_capita_income, on=settings.work_calendar.local_date(now),
                source="home_verification",
            )  # fmt: skip
        await repo.save_household(uow, row.household_id, household, verified)
        household = await repo.household(uow, row.household_id)
        if row.purpose == "identification":
            # rules §1, §4.4: the verified facts decide the kind the village appraises and its
            # notice shows, by the rule identification applies (and applies again at the end)
            evaluation = _evaluate(row, household, settings, settings.work_calendar.local_date(now))
            values |= {"kind": evaluation.kind, "reasons": _reread(row.reasons, evaluation)}
    outgoing: Payload
    if new.stage == "identified":
        outgoing, extra = _identification(
            row, household, settings, settings.work_calendar.local_date(now)
        )
        values |= extra | {"closed_at": now}
        await repo.save_household(
            uow,
            row.household_id,
            household,
            {
                "status": "monitoring",
                "kind": extra["kind"],
                "risk_types": row.risk_types,
                "identified_at": now,
                "new_risk_types": [],
                "last_visit_clear": False,
                "village_code": row.village_code,
            },
        )
    elif new.stage == "eliminated":
        outgoing = _elimination(row, household, settings, now)
        values |= {"status": "eliminated", "closed_at": now}
        await repo.save_household(uow, row.household_id, household, {"status": "eliminated"})
    elif new.stage == "rejected":
        rolled_back = bool(row.green_channel) and row.purpose == "identification"
        values |= {"status": "rejected", "closed_at": now, "rejection_reason": request.reason}
        outgoing = CaseRejected(
            case_id=row.id,
            village_code=row.village_code,
            step=state.stage,
            reason=request.reason,
            actor=official.subject,
            green_channel_rolled_back=rolled_back,  # rules §5.4
        )
    else:
        outgoing = CaseStepCompleted(
            case_id=row.id,
            village_code=row.village_code,
            step=request.action,
            actor=official.subject,
            role=official.role,
            note=request.note,
            next_steps=list(allowed_actions(new, now)),
            purpose=row.purpose,  # the official it waits for learns which decision it is
        )
    await uow.execute(update(cases).where(cases.c.id == row.id).values(values))
    await repo.add_history(
        uow,
        case_id=row.id,
        actor=official.subject,
        role=official.role,
        action=request.action,
        from_stage=state.stage,
        to_stage=new.stage,
        # an objection names villagers, perhaps their phones: masked as a log line is
        note=redact(request.reason)
        if request.action == "record_objection"
        else (request.reason or request.note),
        at=now,
    )
    await publish(
        uow,
        outgoing,
        household_id=row.household_id,
        correlation_id=row.id,
        topic=settings.topic("cases"),
    )


async def _place(
    uow: UnitOfWork,
    row: Any,
    household: Any,
    official: Official,
    request: ActionRequest,
    state: CaseState,
    topic: str,
) -> None:
    """rules §9.4: the county places the case (and its household) in one of its villages; the
    village now answering for it is told, since the home verification is its own (rules §4.2)."""
    old, new = row.village_code, request.village_code
    assert new is not None
    try:
        check_placement(state, official.role, old, new)
    except RoleError as exc:
        raise ActionRefused(403, exc.field, exc.problem) from None
    except TransitionError as exc:
        raise ActionRefused(409, exc.field, exc.problem) from None
    if not official.covers(new):
        raise ActionRefused(403, "village_code", _outside(official, new))
    now = uow.clock.now()
    note = f"village_code {old or '(none)'} -> {new}" + (
        f": {request.note}" if request.note else ""
    )
    await uow.execute(
        update(cases).where(cases.c.id == row.id).values(village_code=new, updated_at=now)
    )
    await repo.save_household(uow, row.household_id, household, {"village_code": new})
    await repo.add_history(
        uow,
        case_id=row.id,
        actor=official.subject,
        role=official.role,
        action=ASSIGN_VILLAGE,
        from_stage=state.stage,
        to_stage=state.stage,
        note=note,
        at=now,
    )
    step = CaseStepCompleted(
        case_id=row.id,
        village_code=new,
        step=VILLAGE_ASSIGNED,
        actor=official.subject,
        role=official.role,
        note=note,
        next_steps=list(allowed_actions(state, now)),
        purpose=row.purpose,
    )
    await publish(uow, step, household_id=row.household_id, correlation_id=row.id, topic=topic)


def _outside(official: Official, village_code: str) -> str:
    """The problem of a village outside the official's jurisdiction (shared.auth's wording)."""
    return outside_message(official, village_code).removeprefix("village_code: ")


def _identification(
    row: Any, household: Any, settings: RiskSettings, today: Any
) -> tuple[HouseholdIdentified, dict[str, Any]]:
    """rules §1, §4.6: the final kind from the household's facts as they stand now."""
    facts = repo.facts_of(household)
    evaluation = _evaluate(row, household, settings, today)
    if evaluation.in_range is None:
        # rules §1: every kind is decided by income against the threshold in force (§2.1); the
        # provisional reading of an open case is not enough to identify a household
        if threshold_for(settings.thresholds, row.village_code, today) is None:
            raise ActionRefused(
                409,
                "threshold",
                f"no monitoring threshold is in force for {row.village_code} on {today} "
                "(rules §2.1); add one to the thresholds file",
            )
        raise ActionRefused(
            409,
            "per_capita_income",
            "not known (rules §2.1); send the verified income with this action or an earlier one",
        )
    if evaluation.kind is None:
        raise ActionRefused(
            409,
            "kind",
            "the household fits no monitoring kind (rules §1): "
            + evaluation.reasons[-1].detail
            + "; reject the case instead",
        )
    reasons = [Reason.model_validate(r) for r in _reread(row.reasons, evaluation)]
    identified = HouseholdIdentified(
        case_id=row.id,
        village_code=row.village_code,
        kind=evaluation.kind,  # type: ignore[arg-type]
        risk_types=list(row.risk_types),
        reasons=reasons,
        members=[Member.model_validate(m.model_dump()) for m in facts.members],
        per_capita_income=facts.per_capita_income,
        green_channel=bool(row.green_channel),
        opened_at=utc(row.opened_at),
        # rules §4.13: the name may be shown, so the responsible cadre's alert can say whose
        head_name=(household.head_name or None) if household is not None else None,
    )
    extra = {"status": "identified", "kind": evaluation.kind, "reasons": reason_rows(reasons)}
    return identified, extra


def _evaluate(row: Any, household: Any, settings: RiskSettings, today: Any) -> Evaluation:
    """rules §1-§3: the case's household as its facts stand now, against the threshold in force
    for its village on `today` (the reading that decides its kind)."""
    return evaluate(
        facts=repo.facts_of(household),
        declared_risk_types=list(row.risk_types),
        threshold=threshold_for(settings.thresholds, row.village_code, today),
        policy=settings.policy(),
    )


def _reread(stored: list[dict[str, Any]] | None, evaluation: Evaluation) -> list[dict[str, Any]]:
    """The case's reasons with the income reading (rules §2.1), rigid expenditure (§2.3) and
    kind (§1) of `evaluation` in place of earlier ones (a provisional kind read before the
    income was known), the others kept."""
    read = [r for r in evaluation.reasons if r.rule.startswith(("rules §1", "rules §2"))]
    kept = [r for r in stored or [] if not str(r["rule"]).startswith(("rules §1", "rules §2"))]
    return merge_rows(kept, reason_rows(read))


def _elimination(row: Any, household: Any, settings: RiskSettings, now: Any) -> RiskEliminated:
    """rules §7.1, §7.3: re-checked at county approval."""
    facts = repo.facts_of(household)
    if no_labour_support(facts.members, facts.social_security):
        raise ActionRefused(
            409, "household_id", "no labour capacity under social security (rules §7.3)"
        )
    eligible, reasons = elimination_status(
        household, settings, settings.work_calendar.local_date(now)
    )
    if not eligible:
        failed = "; ".join(r.detail for r in reasons)
        raise ActionRefused(409, "household_id", f"elimination criteria not met: {failed}")
    return RiskEliminated(case_id=row.id, village_code=row.village_code, reasons=reasons)
