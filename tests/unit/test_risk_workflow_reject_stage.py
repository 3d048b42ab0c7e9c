"""rules §4.7: where no role may reject, a rejection is refused for the stage, never the role."""

from __future__ import annotations

from datetime import UTC, datetime

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
from shared.auth import ROLES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOT_REJECTABLE = [
    new_case(),  # risk_discovered
    CaseState(stage="home_verification"),
    CaseState(stage="home_verification", data_compared=True),
    new_case("elimination"),  # its home check
]


@pytest.mark.parametrize("state", NOT_REJECTABLE, ids=lambda s: f"{s.purpose}-{s.stage}")
@pytest.mark.parametrize("role", ROLES)
def test_rules_4_7_no_role_may_reject_before_the_appraisal(state: CaseState, role: str) -> None:
    """Every role gets the same answer: the stage does not take a rejection (a 409 naming
    `action`), not a role error telling a village it needs the county."""
    command = Command("reject", role, T0, reason="income above range")
    with pytest.raises(TransitionError) as caught:
        apply(state, command, 5)
    assert not isinstance(caught.value, RoleError)
    assert caught.value.field == "action"
    assert caught.value.problem.startswith(f"a case cannot be rejected at {state.stage}")
    assert "rules §4.7" in caught.value.problem and "needs" not in caught.value.problem
    assert "reject" not in allowed_actions(state, T0)


@pytest.mark.parametrize(
    ("stage", "owner"),
    [("village_appraisal", "village"), ("township_review", "township"),
     ("county_approval", "county")],
)  # fmt: skip
def test_rules_4_7_the_review_stages_still_check_the_role(stage: str, owner: str) -> None:
    state = CaseState(stage=stage, data_compared=True, signed_form=True)  # type: ignore[arg-type]
    other = "county" if owner != "county" else "village"
    with pytest.raises(RoleError, match=f"^role: {other} may not reject; needs {owner}"):
        apply(state, Command("reject", other, T0, reason="why"), 5)
    assert apply(state, Command("reject", owner, T0, reason="why"), 5).stage == "rejected"
