"""rules §4.4 (Holdline reading): objections to the public notice are recorded with the case,
and a village appraisal that had any says how they were settled, or the case is rejected."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.risk.workflow import (
    CaseState,
    Command,
    RoleError,
    TransitionError,
    allowed_actions,
    apply,
    new_case,
)
from tests.unit.test_risk_workflow import HAPPY, NOTICE_DAYS, T0, run

POSTED = T0 + timedelta(days=2)
ENDED = T0 + timedelta(days=7)


def at_notice() -> CaseState:
    return run(new_case(), *HAPPY[:4], signed_form=True)


def test_an_objection_is_counted_while_the_notice_is_up_or_after() -> None:
    state = at_notice()
    for at in (POSTED + timedelta(hours=1), ENDED + timedelta(hours=1)):
        state = apply(state, Command("record_objection", "village", at, reason="邻居反映"), 5)
    assert state.objections == 2 and state.stage == "village_appraisal"


def test_no_objection_before_the_notice_nor_without_saying_what_it_is() -> None:
    before = run(new_case(), *HAPPY[:3], signed_form=True)
    assert "record_objection" not in allowed_actions(before, POSTED)
    with pytest.raises(TransitionError, match=r"^action: the public notice has not been posted"):
        apply(before, Command("record_objection", "village", POSTED, reason="x"), NOTICE_DAYS)
    with pytest.raises(TransitionError, match=r"^reason:"):
        apply(at_notice(), Command("record_objection", "village", POSTED, reason=" "), 5)
    with pytest.raises(RoleError):
        apply(at_notice(), Command("record_objection", "township", POSTED, reason="x"), 5)
    assert "record_objection" in allowed_actions(at_notice(), POSTED)


def test_an_appraisal_with_objections_says_how_they_were_settled() -> None:
    objected = apply(at_notice(), Command("record_objection", "village", POSTED, reason="x"), 5)
    with pytest.raises(TransitionError, match=r"^note: 1 objection\(s\)"):
        apply(objected, Command("complete_village_appraisal", "village", ENDED), NOTICE_DAYS)
    settled = Command("complete_village_appraisal", "village", ENDED, note="经核实异议不成立")
    assert apply(objected, settled, NOTICE_DAYS).stage == "township_review"
    # an objection upheld: the village rejects, as without one
    upheld = Command("reject", "village", ENDED, reason="异议属实：家庭收入高")
    assert apply(objected, upheld, NOTICE_DAYS).stage == "rejected"
    # none recorded: no note needed, as before
    plain = Command("complete_village_appraisal", "village", ENDED)
    assert apply(at_notice(), plain, NOTICE_DAYS).stage == "township_review"
