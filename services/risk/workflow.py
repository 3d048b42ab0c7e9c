"""The case state machine (rules §4 identification, §7.2 elimination), pure.

Main path: risk_discovered -> home_verification -> village_appraisal (public notice) ->
township_review -> county_approval -> identified. Data comparison runs in parallel and must be
done before township_review starts; rejection (with a reason) only from the last three stages.
An elimination case (rules §7.2) starts at the home check and ends `eliminated`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

Stage = Literal[
    "risk_discovered", "home_verification", "data_comparison", "village_appraisal",
    "township_review", "county_approval", "identified", "rejected", "eliminated",
]  # fmt: skip
Purpose = Literal["identification", "elimination"]
Action = Literal[
    "start_home_verification", "complete_home_verification", "complete_data_comparison",
    "post_public_notice", "complete_village_appraisal", "approve_township_review",
    "approve_county", "reject", "assign_village", "record_objection",
]  # fmt: skip
# the steps of the procedure; assign_village (ASSIGN_VILLAGE) is not one, nor a next step
ACTIONS: tuple[Action, ...] = (
    "start_home_verification", "complete_home_verification", "complete_data_comparison",
    "post_public_notice", "record_objection", "complete_village_appraisal",
    "approve_township_review", "approve_county", "reject",
)  # fmt: skip
# rules §9.4: the county places a case it holds without a village (a department record that
# named none, about a household not known yet), or moves one to the right village of the county
ASSIGN_VILLAGE = "assign_village"
PLACING_ROLES = ("county", "admin")
FINAL_STAGES: frozenset[str] = frozenset({"identified", "rejected", "eliminated"})
# rules §4.2-§4.6: who does each step (village, township, county)
ACTION_ROLE: dict[str, str] = {
    "start_home_verification": "village",
    "complete_home_verification": "village",
    "complete_data_comparison": "county",
    "post_public_notice": "village",
    "record_objection": "village",
    "complete_village_appraisal": "village",
    "approve_township_review": "township",
    "approve_county": "county",
    ASSIGN_VILLAGE: "county",  # or an admin: not a step, see check_placement
}
# rules §4.7: rejection only at appraisal, review or approval, by whoever runs that step
REJECT_ROLE: dict[str, str] = {
    "village_appraisal": "village",
    "township_review": "township",
    "county_approval": "county",
}
# stages from which the parallel data comparison (rules §4.3) may still be completed
_COMPARABLE = frozenset({"risk_discovered", "home_verification", "village_appraisal"})


class TransitionError(Exception):
    """A command the case cannot take in its state: names the field and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class RoleError(TransitionError):
    """The caller's role may not perform this step."""


@dataclass(frozen=True)
class CaseState:
    """Where a case stands in its procedure."""

    purpose: Purpose = "identification"
    stage: Stage = "risk_discovered"
    data_compared: bool = False
    signed_form: bool = False
    notice_posted_at: datetime | None = None
    notice_ends_at: datetime | None = None
    objections: int = 0  # rules §4.4: objections to the public notice recorded

    @property
    def open(self) -> bool:
        """Still in progress (rules §4.8: at most one such case per household)."""
        return self.stage not in FINAL_STAGES


@dataclass(frozen=True)
class Command:
    """A workflow action by an official with a role, at a time."""

    action: Action
    role: str
    at: datetime
    signed_form: bool = False
    reason: str = ""
    note: str = ""


def new_case(purpose: Purpose = "identification") -> CaseState:
    """rules §4.1 a new identification case; rules §7.2 an elimination starts at the home check."""
    if purpose == "elimination":
        # rules §7.2 has no data-comparison step
        return CaseState(purpose="elimination", stage="home_verification", data_compared=True)
    return CaseState()


def required_role(state: CaseState, action: Action) -> str:
    """The role that performs `action` in this state ("" for a rejection where none may)."""
    if action == "reject":
        return REJECT_ROLE.get(state.stage, "")
    return ACTION_ROLE[action]


def allowed_actions(state: CaseState, at: datetime) -> list[Action]:
    """The actions the case can take now (each still subject to its role)."""
    out: list[Action] = []
    for action in ACTIONS:
        try:
            apply(state, Command(action, required_role(state, action), at, True, "r", "n"), 5)
        except TransitionError:
            continue
        out.append(action)
    return out


def apply(state: CaseState, command: Command, notice_days: int) -> CaseState:
    """The state after `command`, or TransitionError saying why it cannot happen."""
    if not state.open:
        raise TransitionError("case_id", f"the case is closed ({state.stage})")
    if command.action == "reject" and state.stage not in REJECT_ROLE:
        # rules §4.7: no role may reject here, so the stage is the problem, not the caller
        raise TransitionError(
            "action",
            f"a case cannot be rejected at {state.stage}; only at "
            f"{', '.join(REJECT_ROLE)} (rules §4.7)",
        )
    needed = required_role(state, command.action)
    if command.role != needed:
        raise RoleError("role", f"{command.role} may not {command.action}; needs {needed}")
    stage, action = state.stage, command.action
    if action == "complete_data_comparison":
        if state.purpose == "elimination" or state.data_compared:
            raise TransitionError("action", "data comparison is already complete")
        if stage not in _COMPARABLE:
            raise TransitionError("action", f"data comparison cannot complete at {stage}")
        return replace(state, data_compared=True)
    if action == "start_home_verification":
        _expect(stage, "risk_discovered", action)
        return replace(state, stage="home_verification")
    if action == "complete_home_verification":
        _expect(stage, "home_verification", action)
        if state.purpose == "identification" and not (command.signed_form or state.signed_form):
            # rules §4.2: the signed commitment-and-authorisation form is required
            raise TransitionError("signed_form", "the signed commitment form is required")
        return replace(state, stage="village_appraisal", signed_form=True)
    if action == "post_public_notice":
        _expect(stage, "village_appraisal", action)
        if state.notice_posted_at is not None:
            # rules §4.4: the notice is posted once
            raise TransitionError("action", "the public notice was already posted")
        return replace(
            state,
            notice_posted_at=command.at,
            notice_ends_at=command.at + timedelta(days=notice_days),
        )
    if action == "record_objection":
        # rules §4.4 (Holdline reading): an objection a villager raises to the notice is
        # recorded with the case while it stands at the appraisal, the notice up or ended
        _expect(stage, "village_appraisal", action)
        if state.notice_posted_at is None:
            raise TransitionError("action", "the public notice has not been posted")
        if not command.reason.strip():
            raise TransitionError("reason", "say what the objection is (rules §4.4)")
        return replace(state, objections=state.objections + 1)
    if action == "complete_village_appraisal":
        _expect(stage, "village_appraisal", action)
        if state.notice_ends_at is None:
            raise TransitionError("action", "the public notice has not been posted")
        if state.objections and not command.note.strip():
            # an objection upheld ends the case with a rejection; one the village settled is
            # said so, for the township's review (rules §4.5)
            raise TransitionError(
                "note",
                f"{state.objections} objection(s) to the public notice were recorded: say "
                "how they were settled, or reject the case",
            )
        if command.at < state.notice_ends_at:
            # rules §4.4: only after the notice period has ended
            raise TransitionError(
                "action", f"the public notice runs until {state.notice_ends_at.isoformat()}"
            )
        if not state.data_compared:
            # rules §4.3: data comparison completes before township review starts
            raise TransitionError("action", "data comparison is not complete")
        return replace(state, stage="township_review")
    if action == "approve_township_review":
        _expect(stage, "township_review", action)
        return replace(state, stage="county_approval")
    if action == "approve_county":
        _expect(stage, "county_approval", action)
        final: Stage = "eliminated" if state.purpose == "elimination" else "identified"
        return replace(state, stage=final)
    if action == "reject":
        if not command.reason.strip():
            raise TransitionError("reason", "a rejection needs a reason (rules §4.7)")
        return replace(state, stage="rejected")
    raise TransitionError("action", f"unknown action {action}")


def _expect(stage: str, wanted: str, action: str) -> None:
    if stage != wanted:
        raise TransitionError("action", f"{action} needs the case at {wanted}, it is at {stage}")


def check_placement(state: CaseState, role: str, old: str, new: str) -> None:
    """Whether a case in village `old` can move to village `new` (a 12-digit village code,
    checked as input): TransitionError (RoleError) naming the field when it cannot."""
    if not state.open:
        raise TransitionError("case_id", f"the case is closed ({state.stage})")
    if role not in PLACING_ROLES:
        raise RoleError("role", f"{role} may not {ASSIGN_VILLAGE}; needs county")
    held = holding_region(old)
    if not new.startswith(held):
        raise TransitionError(
            "village_code", f"{new} is not in {held}, the county of the case ({old})"
        )
    if new == old:
        raise TransitionError("village_code", f"the case is already in {new}")


def holding_region(village_code: str) -> str:
    """rules §9.4: the county of a village or county placeholder (530102...); a code held by a
    city or province (an ID registered there: 530100000000) is held by that region (5301);
    "" for no code."""
    region = village_code[:6]
    while len(region) > 2 and region.endswith("00"):
        region = region[:-2]
    return region if region.strip("0") else ""
