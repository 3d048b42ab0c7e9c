"""Routing table (docs/rules.md §4.10-4.12, §5.2, §6.8, §6.10): every event type reaches whom."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.notify import routing, templates
from services.notify.app import consumer_spec
from services.notify.config import NotifySettings
from services.notify.routing import OFFICE, Cadre, targets_for
from shared.clock import FrozenClock
from shared.events import CaseMerged, decode, new_event

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
    urgent = {k[0] for k, r in routing.ROUTES.items() if r.priority == "urgent"}
    assert urgent == {"GreenChannelOpened"}


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
