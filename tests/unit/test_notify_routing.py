"""Routing table (docs/rules.md §4.10-4.12, §5.2, §6.8, §6.10): every event type reaches whom."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.notify import routing, templates
from services.notify.app import consumer_spec
from services.notify.config import NotifySettings
from services.notify.routing import OFFICE, Cadre, targets_for
from services.risk.workflow import Command, Purpose, allowed_actions, apply, new_case, required_role
from shared.clock import FrozenClock
from shared.events import (
    CaseMerged,
    CaseStepCompleted,
    MonitoredHouseholdReassessed,
    decode,
    new_event,
)

VILLAGE = "530102001001"
OFFICE_URL = "http://office/hook"
T0 = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
ROSTER = [
    Cadre("v1", "村干部甲", "village", "530102001", (VILLAGE,), {"webhook": "http://v1/h"}),
    Cadre("v2", "村干部乙", "village", "530102001", (VILLAGE,), {"sms": "13800000002"}),
    Cadre("vx", "别村", "village", "530102001", ("530102001002",), {"webhook": "http://vx/h"}),
    Cadre("t1", "乡镇审核", "township", "530102001", (), {"robot": "http://t1/r"}),
    Cadre("tx", "别乡", "township", "530102002", (), {"robot": "http://tx/r"}),
    Cadre("k1", "县领导", "county_leader", "530102003", (), {"email": "k1@x.cn"}),
    Cadre("r1", "责任人", "general", "530102001", (), {"webhook": "http://r1/h", "sms": "1390"}),
    Cadre("gone", "离任", "village", "530102001", (VILLAGE,), {"webhook": "http://g/h"}, False),
]


def _route(event_type: str, level: str | None = None) -> list[tuple[str, str]]:
    route = routing.route_for(event_type, level)
    assert route is not None, event_type
    found = targets_for(
        route.targets,
        ROSTER,
        priority=route.priority,
        village_code=VILLAGE,
        office_url=OFFICE_URL,
        fallback=route.fallback,
        responsible="r1",
        named="r1",
    )
    return sorted((t.recipient, t.channel) for t in found)


@pytest.mark.parametrize(
    ("event_type", "level", "expected"),
    [
        # rules §4.10: the village cadres of the household's village, not the neighbours
        ("CaseOpened", None, [("cadre:v1", "webhook"), ("cadre:v2", "sms")]),
        # rules §4.10: a declaration joining an open case started the clock: the same cadres
        ("CaseMerged", "village", [("cadre:v1", "webhook"), ("cadre:v2", "sms")]),
        # rules §4.11: the township reviewer of the village's township
        ("CaseDeadlineApproaching", "township", [("cadre:t1", "robot")]),
        ("CaseDeadlineApproaching", "county", [("cadre:k1", "email")]),
        # rules §4.12: the county office
        ("CaseOverdue", "county", [("cadre:k1", "email")]),
        # rules §5.2: responsible cadre (every push channel), township and county
        (
            "GreenChannelOpened",
            None,
            [("cadre:k1", "email"), ("cadre:r1", "webhook"), ("cadre:t1", "robot")],
        ),
        # rules §6.8
        ("CadreAssigned", None, [("cadre:r1", "webhook")]),
        ("PlanCreated", None, [("cadre:r1", "webhook")]),
        # rules §6.10: the cadre first, then the township
        ("VisitOverdue", "cadre", [("cadre:r1", "webhook")]),
        ("VisitOverdue", "township", [("cadre:t1", "robot")]),
        # rules §4.5: a case waiting for township review, for county approval
        ("CaseStepCompleted", "township", [("cadre:t1", "robot")]),
        ("CaseStepCompleted", "county", [("cadre:k1", "email")]),
        # rules §7.2: a proposed elimination needs the village's home check
        ("CaseStepCompleted", "village", [("cadre:v1", "webhook"), ("cadre:v2", "sms")]),
        # rules §4.6, §4.7: the village tells the household the outcome
        ("HouseholdIdentified", None, [("cadre:v1", "webhook"), ("cadre:v2", "sms")]),
        ("CaseRejected", None, [("cadre:v1", "webhook"), ("cadre:v2", "sms")]),
        # rules §7: the village and the responsible cadre
        (
            "RiskEliminated",
            None,
            [("cadre:r1", "webhook"), ("cadre:v1", "webhook"), ("cadre:v2", "sms")],
        ),
        # rules §4 channel 4, §5.2: a monitoring object in the green channel, as GreenChannelOpened
        (
            "MonitoredHouseholdReassessed",
            "green_channel",
            [("cadre:k1", "email"), ("cadre:r1", "webhook"), ("cadre:t1", "robot")],
        ),
        # rules §6.2: a new risk type: the responsible cadre fills the gap
        ("MonitoredHouseholdReassessed", "new_risk", [("cadre:r1", "webhook")]),
    ],
)
def test_every_event_type_reaches_the_right_cadres(
    event_type: str, level: str | None, expected: list[tuple[str, str]]
) -> None:
    assert _route(event_type, level) == expected


def test_every_route_in_the_table_is_tested_above() -> None:
    assert {k[0] for k in routing.ROUTES} == {
        "CaseOpened", "CaseMerged", "CaseDeadlineApproaching", "CaseOverdue",
        "GreenChannelOpened", "CadreAssigned", "PlanCreated", "VisitOverdue",
        "CaseStepCompleted", "HouseholdIdentified", "CaseRejected", "RiskEliminated",
        "MonitoredHouseholdReassessed",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("event_type", "level", "expected"),
    [
        ("CaseOpened", None, [(OFFICE, "webhook")]),
        ("CaseMerged", "village", [(OFFICE, "webhook")]),
        ("CaseOverdue", "county", [(OFFICE, "webhook")]),
        ("GreenChannelOpened", None, [(OFFICE, "webhook")]),
        ("VisitOverdue", "township", [(OFFICE, "webhook")]),
        # the responsible cadre alone needs these; nobody else is bothered
        ("PlanCreated", None, []),
        ("CadreAssigned", None, []),
        # a case waiting for someone: the office learns it has nobody for it
        ("CaseStepCompleted", "township", [(OFFICE, "webhook")]),
        ("CaseStepCompleted", "county", [(OFFICE, "webhook")]),
        ("CaseStepCompleted", "village", [(OFFICE, "webhook")]),
        # three levels with nobody: one office message, as for GreenChannelOpened
        ("MonitoredHouseholdReassessed", "green_channel", [(OFFICE, "webhook")]),
        ("MonitoredHouseholdReassessed", "new_risk", [(OFFICE, "webhook")]),
        # outcomes the county decided itself: the office is not told again
        ("HouseholdIdentified", None, []),
        ("CaseRejected", None, []),
        ("RiskEliminated", None, []),
    ],
)
def test_an_empty_roster_falls_back_to_the_county_office(
    event_type: str, level: str | None, expected: list[tuple[str, str]]
) -> None:
    route = routing.route_for(event_type, level)
    assert route is not None
    found = targets_for(
        route.targets,
        [],
        priority=route.priority,
        village_code=VILLAGE,
        office_url=OFFICE_URL,
        fallback=route.fallback,
    )
    assert [(t.recipient, t.channel) for t in found] == expected
    assert all(t.address == OFFICE_URL for t in found)


def test_rules_4_10_only_a_merge_that_started_the_home_visit_clock_is_routed() -> None:
    """Risk gives `level` "village" to the CaseMerged that started the clock; a department
    record, a cadre's report or a second declaration joining the case has no level, no route."""
    due = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    started = CaseMerged(
        case_id="c", risk_types=["illness"], village_code=VILLAGE, home_visit_due=due,
        level="village",
    )  # fmt: skip
    ordinary = CaseMerged(case_id="c", risk_types=["illness"], village_code=VILLAGE)
    assert routing.route_for("CaseMerged", started.get("level")) == routing.Route(
        ("village",), "normal", "home_visit_due"
    )
    assert routing.route_for("CaseMerged", ordinary.get("level")) is None
    # the message names the visit's local date: 16:00 in Beijing on Thursday 5 March
    assert templates.deadline_of(started) == due
    text = templates.render(
        "home_visit_due", language="zh-CN", zone=ZoneInfo("Asia/Shanghai"), household="hh-6",
        deadline=templates.deadline_of(started), risks=started.risk_types,
    )  # fmt: skip
    assert text == "【防返贫】农户hh-6自主申报因病风险（案件已在认定），请3月5日前入户核实"


def test_a_case_merged_of_an_older_producer_still_decodes_and_routes_nowhere() -> None:
    old = new_event(
        CaseMerged(case_id="c", risk_types=["illness"], submission_id="s"),
        household_id="hh-1", source="risk", correlation_id="c", clock=FrozenClock(T0),
    )  # fmt: skip
    body = json.loads(old.to_bytes())
    for name in ("village_code", "home_visit_due", "level"):
        del body["payload"][name]  # what a CaseMerged looked like before rules §4.10's fields
    event = decode(json.dumps(body).encode())
    assert isinstance(event.payload, CaseMerged)
    assert event.payload.get("level") is None and event.payload.home_visit_due is None
    assert routing.route_for(event.event_type, event.payload.get("level")) is None


def test_the_consumer_takes_every_event_type_the_table_routes() -> None:
    """A route for an event the consumer skips would never fire (CaseMerged, rules §4.10)."""
    handled = consumer_spec(NotifySettings()).handlers
    assert {k[0] for k in routing.ROUTES} <= set(handled)


def test_green_channel_is_urgent_and_the_rest_is_not() -> None:
    urgent = {k for k, r in routing.ROUTES.items() if r.priority == "urgent"}
    assert urgent == {
        ("GreenChannelOpened", None), ("MonitoredHouseholdReassessed", "green_channel")
    }  # fmt: skip


def test_a_reassessment_that_changed_nothing_tells_nobody() -> None:
    """Risk still emits it (its submitter learns the outcome); notify routes it nowhere."""
    nothing = MonitoredHouseholdReassessed(
        village_code=VILLAGE, risk_types=["illness"], new_risk_types=[], channel="app",
        submission_id="s-1",
    )  # fmt: skip
    level = routing.level_of("MonitoredHouseholdReassessed", nothing)
    assert level is None
    assert routing.route_for("MonitoredHouseholdReassessed", level) is None


def _steps(purpose: Purpose) -> list[tuple[str, str, list[str]]]:
    """(step, role, next_steps) of each CaseStepCompleted risk publishes for a case walked
    through its procedure (services/risk/casework.py, monitoring.py), the last step, which
    closes the case with another event, left out."""
    at = T0
    state = new_case(purpose)
    out: list[tuple[str, str, list[str]]] = []
    if purpose == "elimination":  # risk proposes it itself
        out.append(("elimination_proposed", "system", ["complete_home_verification"]))
        walk = ["complete_home_verification", "post_public_notice"]
    else:
        walk = [
            "start_home_verification", "complete_data_comparison",
            "complete_home_verification", "post_public_notice",
        ]  # fmt: skip
    walk += ["complete_village_appraisal", "approve_township_review"]
    for action in walk:
        if action == "complete_village_appraisal":
            at += timedelta(days=5)
        role = required_role(state, action)  # type: ignore[arg-type]
        state = apply(state, Command(action, role, at, signed_form=True), 5)  # type: ignore[arg-type]
        out.append((action, role, list(allowed_actions(state, at))))
    return out


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        # rules §4.5: township review after the village appraisal, county approval after it
        (
            "identification",
            [None, None, None, None, "township", "county"],
        ),
        # rules §7.2: the village's home check first, then the same reviews
        ("elimination", ["village", None, None, "township", "county"]),
    ],
)
def test_a_completed_step_goes_to_whoever_must_act_next(
    purpose: Purpose, expected: list[str | None]
) -> None:
    """The level is derived from the payload risk sends (`next_steps`, `step`): the village is
    not told of the steps it takes itself, nor again of a case CaseOpened told it of."""
    levels = []
    for step, role, next_steps in _steps(purpose):
        payload = CaseStepCompleted(
            case_id="c", village_code=VILLAGE, step=step, actor="a", role=role,
            next_steps=next_steps,
        )  # fmt: skip
        levels.append(routing.level_of("CaseStepCompleted", payload))
    assert levels == expected
    routed = [routing.route_for("CaseStepCompleted", level) for level in levels]
    assert [r.targets if r else None for r in routed] == [
        (level,) if level else None for level in expected
    ]


def test_unacknowledged_alerts_climb_to_the_office_and_stop() -> None:
    chain: list[str] = []
    level: str | None = "village"
    while level is not None:
        chain.append(level)
        level = routing.NEXT_LEVEL[level]
    assert chain == ["village", "township", "county", "office"]


@pytest.mark.parametrize(
    ("contacts", "channel", "sms_used", "expected"),
    [
        ({"webhook": "u", "sms": "138"}, "webhook", False, "sms"),
        ({"webhook": "u", "sms": "138"}, "webhook", True, None),
        ({"webhook": "u"}, "webhook", False, None),
        ({"sms": "138"}, "sms", False, None),
    ],
)
def test_escalation_goes_by_sms_when_the_first_channel_was_a_push(
    contacts: dict[str, str], channel: str, sms_used: bool, expected: str | None
) -> None:
    cadre = Cadre("c", "c", "village", "530102001", (), contacts)
    assert routing.escalation_channel(cadre, channel, sms_used) == expected


def test_inactive_and_unknown_cadres_get_nothing() -> None:
    assert routing.cadres_at("village", ROSTER, village_code="530102001009") == []
    assert "gone" not in [
        c.cadre_id for c in routing.cadres_at("village", ROSTER, village_code=VILLAGE)
    ]


def test_routes_can_be_changed_from_settings_without_code() -> None:
    routes = routing.routes_with(
        {"CaseOverdue:county": {"targets": ["county", "township"], "priority": "urgent"}}
    )
    route = routing.route_for("CaseOverdue", "county", routes)
    assert route == routing.Route(("county", "township"), "urgent", "case_overdue")
    assert routing.route_for("CaseOverdue", "county") == routing.ROUTES[("CaseOverdue", "county")]


@pytest.mark.parametrize(
    "spec", [{"targets": ["mayor"]}, {"targets": ["county"], "priority": "whenever"}]
)
def test_a_bad_route_override_is_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"routes\.CaseOverdue"):
        routing.routes_with({"CaseOverdue": spec})
