"""rules §4 and §7.2: the case state machine, table-driven and property-based."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.risk.workflow import (
    ACTIONS,
    CaseState,
    Command,
    RoleError,
    TransitionError,
    allowed_actions,
    apply,
    new_case,
    required_role,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOTICE_DAYS = 5


def run(state: CaseState, *steps: tuple[str, str, datetime], **kw: object) -> CaseState:
    for action, role, at in steps:
        state = apply(state, Command(action, role, at, **kw), NOTICE_DAYS)  # type: ignore[arg-type]
    return state


HAPPY = [
    ("start_home_verification", "village", T0),
    ("complete_data_comparison", "county", T0 + timedelta(days=1)),
    ("complete_home_verification", "village", T0 + timedelta(days=1)),
    ("post_public_notice", "village", T0 + timedelta(days=2)),
    ("complete_village_appraisal", "village", T0 + timedelta(days=7)),
    ("approve_township_review", "township", T0 + timedelta(days=8)),
    ("approve_county", "county", T0 + timedelta(days=9)),
]


def test_rules_4_main_path_ends_identified() -> None:
    state = run(new_case(), *HAPPY, signed_form=True)
    assert state.stage == "identified"
    assert not state.open


@pytest.mark.parametrize(
    ("action", "wrong_role"),
    [
        ("start_home_verification", "township"),
        ("complete_data_comparison", "village"),
        ("approve_county", "township"),
        ("approve_township_review", "county"),
    ],
)
def test_rules_4_steps_belong_to_their_role(action: str, wrong_role: str) -> None:
    assert required_role(new_case(), action) != wrong_role  # type: ignore[arg-type]
    with pytest.raises(RoleError):
        apply(new_case(), Command(action, wrong_role, T0), NOTICE_DAYS)  # type: ignore[arg-type]


def test_rules_4_2_home_verification_needs_the_signed_form() -> None:
    state = run(new_case(), ("start_home_verification", "village", T0))
    with pytest.raises(TransitionError, match=r"^signed_form:"):
        apply(state, Command("complete_home_verification", "village", T0), NOTICE_DAYS)


def test_rules_4_4_notice_lasts_five_days_time_travel() -> None:
    """rules §4.4: appraisal completes only once the 5-day notice has run."""
    state = run(new_case(), *HAPPY[:4], signed_form=True)
    assert state.notice_ends_at == T0 + timedelta(days=2 + NOTICE_DAYS)
    early = Command("complete_village_appraisal", "village", T0 + timedelta(days=6, hours=23))
    with pytest.raises(TransitionError, match="public notice runs until"):
        apply(state, early, NOTICE_DAYS)
    on_time = Command("complete_village_appraisal", "village", T0 + timedelta(days=7))
    assert apply(state, on_time, NOTICE_DAYS).stage == "township_review"


def test_rules_4_4_notice_is_posted_once() -> None:
    state = run(new_case(), *HAPPY[:4], signed_form=True)
    with pytest.raises(TransitionError, match="already posted"):
        apply(state, Command("post_public_notice", "village", T0), NOTICE_DAYS)


def test_rules_4_3_data_comparison_before_township_review() -> None:
    steps = [s for s in HAPPY[:5] if s[0] != "complete_data_comparison"]
    with pytest.raises(TransitionError, match="data comparison is not complete"):
        run(new_case(), *steps, signed_form=True)


@pytest.mark.parametrize(
    ("steps", "role", "ok"),
    [
        (0, "county", False),  # risk_discovered: not rejectable
        (3, "village", False),  # home_verification
        (4, "village", True),  # village_appraisal
        (5, "township", True),  # township_review
        (6, "county", True),  # county_approval
    ],
)
def test_rules_4_7_rejection_only_from_the_review_stages(steps: int, role: str, ok: bool) -> None:
    order = [HAPPY[0], HAPPY[1], HAPPY[2], HAPPY[3], HAPPY[4], HAPPY[5]]
    # steps counts how many of HAPPY have run (data comparison is index 1)
    state = run(new_case(), *order[: {0: 0, 3: 1, 4: 3, 5: 5, 6: 6}[steps]], signed_form=True)
    command = Command("reject", role, T0 + timedelta(days=10), reason="income above range")
    if ok:
        assert apply(state, command, NOTICE_DAYS).stage == "rejected"
    else:
        with pytest.raises(TransitionError):
            apply(state, command, NOTICE_DAYS)


def test_rules_4_7_rejection_needs_a_reason() -> None:
    state = run(new_case(), *HAPPY[:6], signed_form=True)
    with pytest.raises(TransitionError, match=r"^reason:"):
        apply(state, Command("reject", "county", T0, reason="  "), NOTICE_DAYS)


def test_rules_7_2_elimination_path_ends_eliminated() -> None:
    steps = [
        s for s in HAPPY if s[0] not in ("start_home_verification", "complete_data_comparison")
    ]
    state = run(new_case("elimination"), *steps)
    assert state.stage == "eliminated"


def test_closed_case_takes_no_action() -> None:
    state = run(new_case(), *HAPPY, signed_form=True)
    assert allowed_actions(state, T0) == []


ORDER = ["risk_discovered", "home_verification", "village_appraisal", "township_review",
         "county_approval", "identified"]  # fmt: skip

commands = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.sampled_from(["village", "township", "county", "admin"]),
        st.integers(0, 24 * 20),  # hours after T0
        st.booleans(),
        st.sampled_from(["", "reason"]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(commands)
def test_rules_4_no_transition_skips_a_required_step(script: list) -> None:  # type: ignore[type-arg]
    """Property: stages advance one at a time, in order; identified only via every step."""
    state = new_case()
    visited = [state.stage]
    clock = T0
    for action, role, hours, signed, reason in sorted(script, key=lambda s: s[2]):
        at = max(clock, T0 + timedelta(hours=hours))  # time never runs backwards
        try:
            after = apply(state, Command(action, role, at, signed, reason), NOTICE_DAYS)
        except TransitionError:
            continue
        clock = at
        if after.stage != state.stage:
            if after.stage == "rejected":
                assert state.stage in ("village_appraisal", "township_review", "county_approval")
            else:
                assert ORDER.index(after.stage) == ORDER.index(state.stage) + 1
            if after.stage == "township_review":
                # rules §4.3 and §4.4: comparison done and the full notice period served
                assert after.data_compared
                assert after.notice_ends_at is not None and at >= after.notice_ends_at
                assert after.notice_ends_at - after.notice_posted_at >= timedelta(days=5)  # type: ignore[operator]
            visited.append(after.stage)
        state = after
    if state.stage == "identified":
        assert visited == ORDER
        assert state.signed_form


walks = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(0, 72), st.booleans(), st.integers(0, 7)),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(walks)
def test_rules_4_random_walks_with_the_right_roles_keep_the_invariants(script: list) -> None:  # type: ignore[type-arg]
    """Property over walks that use the owning role: ordered stages, notice served, one close."""
    state = new_case()
    at = T0
    stages = [state.stage]
    for random_action, hours, signed, pick in script:
        at += timedelta(hours=hours)
        # half the time take an action the state allows now, so walks reach the far stages
        allowed = [a for a in allowed_actions(state, at) if a != "reject"] if pick % 2 else []
        action = allowed[pick % len(allowed)] if allowed else random_action
        role = required_role(state, action)
        try:
            reason = "why" if pick == 0 else ""  # most rejections lack a reason and fail
            state = apply(state, Command(action, role, at, signed, reason), NOTICE_DAYS)
        except RoleError:
            raise AssertionError("the owning role was refused") from None
        except TransitionError:
            continue
        if state.stage != stages[-1]:
            stages.append(state.stage)
    closes = [s for s in stages if s in ("identified", "rejected")]
    assert len(closes) <= 1 and (not closes or stages[-1] == closes[0])
    main = [s for s in stages if s != "rejected"]
    assert main == ORDER[: len(main)]
