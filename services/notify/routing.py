"""Who hears of which event: the routing table as data, and recipient selection (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.events import Payload

Level = Literal["village", "township", "county", "responsible", "named", "office"]
Priority = Literal["low", "normal", "urgent"]
OFFICE = "office:county"  # the county office's default webhook (settings.webhook_url)


@dataclass(frozen=True)
class Route:
    """Targets of one event type (and payload level), its priority and message template."""

    targets: tuple[Level, ...]
    priority: Priority
    template: str
    # a level with nobody in the roster falls back to the county office's webhook
    fallback: bool = True


# (event type, payload `level` or None) -> route. Change routing here, nowhere else.
ROUTES: dict[tuple[str, str | None], Route] = {
    # rules §4.10: the village visits a self-declaring household within 2 working days
    ("CaseOpened", None): Route(("village",), "normal", "case_opened"),
    # rules §4.10: also when the declaration joins a case a department or cadre opened; risk
    # sets `level` only on the merge that started the clock, other merges have no route
    ("CaseMerged", "village"): Route(("village",), "normal", "home_visit_due"),
    # rules §4.11: warning share of the time used -> the township reviewer
    ("CaseDeadlineApproaching", "township"): Route(("township",), "normal", "deadline_approaching"),
    ("CaseDeadlineApproaching", "county"): Route(("county",), "normal", "deadline_approaching"),
    # rules §4.12: overdue -> orange warning escalated to the county
    ("CaseOverdue", "county"): Route(("county",), "normal", "case_overdue"),
    ("CaseOverdue", "township"): Route(("township",), "normal", "case_overdue"),
    # rules §5.2: assist first, identify later: everybody concerned, now
    ("GreenChannelOpened", None): Route(
        ("responsible", "township", "county"), "urgent", "green_channel"
    ),
    # rules §6.8: the responsible cadre learns of the assignment and of the plan
    ("CadreAssigned", None): Route(("named",), "low", "cadre_assigned", fallback=False),
    ("PlanCreated", None): Route(("responsible",), "low", "plan_created", fallback=False),
    # rules §6.10: a missed visit warns the cadre first, then the township
    ("VisitOverdue", "cadre"): Route(("named",), "normal", "visit_overdue"),
    ("VisitOverdue", "township"): Route(("township",), "normal", "visit_overdue_township"),
    # rules §4.5, §7.2: a case now waits for whoever must act next (level: step_level below)
    ("CaseStepCompleted", "township"): Route(("township",), "normal", "review_due"),
    ("CaseStepCompleted", "county"): Route(("county",), "normal", "approval_due"),
    ("CaseStepCompleted", "village"): Route(("village",), "normal", "elimination_check"),
    # rules §9.4, §4.2: the county placed a case in a village, which now verifies at home
    ("CaseStepCompleted", "village_assigned"): Route(("village",), "normal", "village_assigned"),
    # outcomes: the officials who decided know; the village tells the household (rules §4.6,
    # §4.7), so no fallback to the office
    ("HouseholdIdentified", None): Route(("village",), "normal", "identified", fallback=False),
    ("CaseRejected", None): Route(("village",), "normal", "rejected", fallback=False),
    # rules §7: nothing left to do but tell the household (some measures go on, rules §6.7)
    ("RiskEliminated", None): Route(
        ("village", "responsible"), "low", "risk_eliminated", fallback=False
    ),
    # rules §4 channel 4: a monitoring object's new signal; level None tells nobody
    ("MonitoredHouseholdReassessed", "green_channel"): Route(
        ("responsible", "township", "county"), "urgent", "reassessed_green_channel"
    ),
    # rules §6.2: the plan must fill the new gap
    ("MonitoredHouseholdReassessed", "new_risk"): Route(
        ("responsible",), "normal", "reassessed_new_risk"
    ),
}

# CaseStepCompleted has no `level`: the level that must act is read from the actions the case
# can take next (`next_steps`, risk's workflow action names), rules §4.5
NEXT_STEP_LEVELS: tuple[tuple[str, str], ...] = (
    ("approve_township_review", "township"),
    ("approve_county", "county"),
)
# rules §7.2: risk proposes an elimination itself, and the village makes the home check; the
# village's other steps follow its own, and it was told of an identification case at CaseOpened
ELIMINATION_PROPOSED = "elimination_proposed"
# rules §9.4: the county placed a case it held without a village (risk's assign_village): the
# village the payload names answers for it now, whatever the next steps
VILLAGE_ASSIGNED = "village_assigned"

# who stands above whom when an urgent alert is not acknowledged in time
NEXT_LEVEL: dict[str, Level | None] = {
    "village": "township",
    "responsible": "township",
    "named": "township",
    "township": "county",
    "county": "office",
    "office": None,
}

# cadre ranks (CadreRegistered.rank) that answer for a level of the region
LEVEL_RANKS: dict[str, frozenset[str]] = {
    "village": frozenset({"village"}),
    "township": frozenset({"township"}),
    "county": frozenset({"county_leader"}),
}

# preferred channel order; urgent alerts use every push channel, SMS is the escalation path
CHANNEL_PREFERENCE = ("webhook", "robot", "email", "sms")
PUSH_CHANNELS = ("webhook", "robot", "email")


@dataclass(frozen=True)
class Cadre:
    """One entry of the roster projection."""

    cadre_id: str
    name: str
    rank: str
    township_code: str
    village_codes: tuple[str, ...] = ()
    contacts: Mapping[str, str] = field(default_factory=dict)
    active: bool = True


@dataclass(frozen=True)
class Target:
    """One recipient of one message, on one channel, at one address."""

    recipient: str
    level: Level
    channel: str
    address: str


def step_level(payload: Payload) -> str | None:
    """Who must act after a completed step: township review, county approval, or the village's
    home check of a proposed elimination; `village_assigned` (its own route to the village)
    when the county placed the case in a village; None when the one who acted acts next."""
    if payload.get("step") == VILLAGE_ASSIGNED:
        return VILLAGE_ASSIGNED
    steps = payload.get("next_steps") or ()
    for action, level in NEXT_STEP_LEVELS:
        if action in steps:
            return level
    if payload.get("step") == ELIMINATION_PROPOSED and "complete_home_verification" in steps:
        return "village"
    return None


def level_of(event_type: str, payload: Payload) -> str | None:
    """The level an event is routed by: its payload's `level`, derived for a completed step."""
    if event_type == "CaseStepCompleted":
        return step_level(payload)
    level: str | None = payload.get("level")
    return level


def route_for(
    event_type: str, level: str | None, routes: Mapping[tuple[str, str | None], Route] = ROUTES
) -> Route | None:
    """The route of an event, by its type and, where it has one, its payload level."""
    return routes.get((event_type, level)) or routes.get((event_type, None))


def routes_with(overrides: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str | None], Route]:
    """The table with entries replaced or added from settings, keyed "Event" or "Event:level"."""
    table = dict(ROUTES)
    for key, spec in overrides.items():
        event_type, _, level = key.partition(":")
        existing = route_for(event_type, level or None)
        targets = tuple(spec["targets"])
        unknown = [t for t in targets if t not in NEXT_LEVEL]
        if unknown or spec.get("priority", "normal") not in ("low", "normal", "urgent"):
            raise ValueError(f"routes.{key}: unknown target or priority in {dict(spec)}")
        table[(event_type, level or None)] = Route(
            targets=targets,
            priority=spec.get("priority", "normal"),
            template=spec.get("template", existing.template if existing else "escalation"),
            fallback=bool(spec.get("fallback", True)),
        )
    return table


def township_of(village_code: str) -> str:
    """rules §9.4: the township is the first 9 digits of a village code."""
    return village_code[:9]


COUNTY_DIGITS = 6  # rules §9.4: a region code's county part


def county_of(region_code: str) -> str:
    """rules §9.4: the county is the first 6 digits."""
    return region_code[:COUNTY_DIGITS]


def cadres_at(
    level: Level,
    roster: Iterable[Cadre],
    *,
    village_code: str,
    responsible: str | None = None,
    named: str | None = None,
) -> list[Cadre]:
    """The active cadres answering for `level` of the household's village."""
    found = []
    for cadre in roster:
        if not cadre.active:
            continue
        if level == "responsible":
            hit = cadre.cadre_id == responsible
        elif level == "named":
            hit = cadre.cadre_id == named
        elif level == "village":
            hit = cadre.rank in LEVEL_RANKS["village"] and village_code in cadre.village_codes
        elif level == "township":
            hit = cadre.rank in LEVEL_RANKS["township"] and (
                cadre.township_code == township_of(village_code)
            )
        elif level == "county":
            hit = cadre.rank in LEVEL_RANKS["county"] and (
                county_of(cadre.township_code) == county_of(village_code)
            )
        else:
            hit = False
        if hit:
            found.append(cadre)
    return sorted(found, key=lambda c: c.cadre_id)


def channels_for(cadre: Cadre, priority: Priority) -> list[str]:
    """Urgent: every push channel the cadre has (SMS if none); otherwise the preferred one."""
    have = [c for c in CHANNEL_PREFERENCE if cadre.contacts.get(c)]
    if priority == "urgent":
        push = [c for c in have if c in PUSH_CHANNELS]
        return push or have[:1]
    return have[:1]


def recipient_key(cadre_id: str) -> str:
    """How a cadre is named in notifications."""
    return f"cadre:{cadre_id}"


def office_target(office_url: str) -> Target:
    """The county office's default webhook."""
    return Target(OFFICE, "office", "webhook", office_url)


def targets_for(
    levels: Iterable[Level],
    roster: Iterable[Cadre],
    *,
    priority: Priority,
    village_code: str,
    office_url: str,
    fallback: bool,
    responsible: str | None = None,
    named: str | None = None,
) -> list[Target]:
    """Every (recipient, channel) that must hear of an event; one per pair, in a stable order."""
    roster = list(roster)
    chosen: dict[tuple[str, str], Target] = {}
    for level in levels:
        if level == "office":
            cadres: list[Cadre] = []
        else:
            cadres = cadres_at(
                level, roster, village_code=village_code, responsible=responsible, named=named
            )
        reachable = False
        for cadre in cadres:
            for channel in channels_for(cadre, priority):
                target = Target(
                    recipient_key(cadre.cadre_id), level, channel, cadre.contacts[channel]
                )
                chosen.setdefault((target.recipient, channel), target)
                reachable = True
        if not reachable and (fallback or level == "office"):
            office = office_target(office_url)
            chosen.setdefault((office.recipient, office.channel), office)
    return list(chosen.values())


def escalation_channel(cadre: Cadre | None, channel: str, sms_used: bool) -> str | None:
    """An unacknowledged push alert goes again by SMS when the cadre has a phone."""
    if cadre is None or channel == "sms" or sms_used or not cadre.contacts.get("sms"):
        return None
    return "sms"
