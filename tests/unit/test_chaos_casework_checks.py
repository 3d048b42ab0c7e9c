"""The chaos run's casework checks (bench/chaos_verify.py) fail when their invariant is broken:
a full run cannot be made to lose or double an action, so each checking function is fed
constructed rows."""

from __future__ import annotations

from typing import Any

from bench.chaos_verify import (
    extra_cases,
    history_problems,
    not_notified_once,
    plan_village_mismatches,
    rejected_declarations,
    unended_plans,
)

PLACED = "530102001001"


def case(cid: str, household: str, status: str = "open", **more: Any) -> dict[str, Any]:
    return {"id": cid, "household_id": household, "status": status, "village_code": PLACED,
            "green_channel": False} | more  # fmt: skip


def row(hid: int, cid: str, action: str, role: str = "village") -> dict[str, Any]:
    return {"id": hid, "case_id": cid, "action": action, "role": role}


# --- duplicate cases: one a household, and one more only after a rejection


def test_one_case_a_household_is_no_excess() -> None:
    cases = [case("c1", "h1"), case("c2", "h2")]
    history = [row(1, "c1", "open", "system"), row(2, "c2", "open", "system")]
    assert extra_cases(cases, history) == (0, [])


def test_a_case_opened_after_the_rejection_is_allowed() -> None:
    cases = [case("c1", "h1", "rejected"), case("c2", "h1")]
    history = [row(1, "c1", "open", "system"), row(5, "c1", "reject"),
               row(9, "c2", "open", "system")]  # fmt: skip
    assert extra_cases(cases, history) == (0, ["c2"])


def test_a_second_case_beside_an_open_one_is_a_duplicate() -> None:
    cases = [case("c1", "h1"), case("c2", "h1")]
    history = [row(1, "c1", "open", "system"), row(2, "c2", "open", "system")]
    assert extra_cases(cases, history) == (1, [])


def test_a_second_case_opened_before_the_rejection_is_a_duplicate() -> None:
    # the rejected case hid a doubled case: it was there before the rejection
    cases = [case("c1", "h1", "rejected"), case("c2", "h1")]
    history = [row(1, "c1", "open", "system"), row(2, "c2", "open", "system"),
               row(5, "c1", "reject")]  # fmt: skip
    assert extra_cases(cases, history) == (1, [])


# --- each action once in risk's case history


def test_every_confirmed_action_recorded_once_is_clean() -> None:
    confirmed = {("c1", "start_home_verification"), ("c2", "assign_village")}
    history = [row(1, "c1", "open", "system"), row(2, "c1", "start_home_verification"),
               row(3, "c2", "assign_village", "county")]  # fmt: skip
    assert history_problems(confirmed, history) == (set(), set(), set())


def test_a_lost_action_a_doubled_one_and_a_stray_one_are_each_found() -> None:
    confirmed = {("c1", "start_home_verification"), ("c1", "post_public_notice"),
                 ("c2", "reject")}  # fmt: skip
    history = [row(1, "c1", "start_home_verification"), row(2, "c1", "start_home_verification"),
               row(3, "c2", "reject"), row(4, "c3", "assign_village", "county"),
               row(5, "c3", "open", "system"), row(6, "c3", "open", "system")]  # fmt: skip
    missing, doubled, strangers = history_problems(confirmed, history)
    assert missing == {("c1", "post_public_notice")}
    assert doubled == {("c1", "start_home_verification")}
    assert strangers == {("c3", "assign_village")}


# --- one notification per placement


def test_a_placement_needs_exactly_one_notification() -> None:
    notes = [{"source_event_id": "e1"}, {"source_event_id": "e2"}, {"source_event_id": "e2"},
             {"source_event_id": "other"}]  # fmt: skip
    assert not_notified_once({"e1", "e2", "e3"}, notes) == ["e2", "e3"]
    assert not_notified_once({"e1"}, notes) == []


# --- assistance follows the case


def test_a_plan_left_in_the_county_placeholder_is_found() -> None:
    cases = [case("c1", "h1"), case("c2", "h2")]
    plans = [{"case_id": "c1", "village_code": PLACED, "status": "pending"},
             {"case_id": "c2", "village_code": "530102000000", "status": "pending"},
             {"case_id": "c9", "village_code": PLACED, "status": "pending"}]  # fmt: skip
    assert plan_village_mismatches(plans, cases) == [
        ("c2", "530102000000", PLACED),
        ("c9", PLACED, "(no such case)"),
    ]


def test_a_rejected_case_needs_its_plan_ended() -> None:
    cases = [case("c1", "h1", "rejected"), case("c2", "h2", "rejected", green_channel=True),
             case("c3", "h3", "rejected"), case("c4", "h4", "rejected"),
             case("c5", "h5")]  # fmt: skip
    plans = [{"case_id": "c1", "status": "rejected"}, {"case_id": "c2", "status": "rolled_back"},
             {"case_id": "c3", "status": "pending"},
             {"case_id": "c5", "status": "pending"}]  # fmt: skip
    assert unended_plans(plans, cases) == [("c3", "pending"), ("c4", "(no plan)")]


# --- intake shows the outcome


def test_a_declaration_of_a_rejected_case_must_show_rejected() -> None:
    cases = [case("c1", "h1", "rejected"), case("c2", "h1")]
    subs = [{"id": "s1", "case_id": "c1", "outcome": "rejected"},
            {"id": "s2", "case_id": "c1", "outcome": None},
            {"id": "s3", "case_id": "c2", "outcome": None}]  # fmt: skip
    assert rejected_declarations(subs, cases) == (2, ["s2"])
