"""Notify use cases: keep the roster projection, and record who must hear of each event."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from services.notify import acks, metrics, names, routing, rules, templates
from services.notify.config import NotifySettings
from services.notify.models import notifications, recipients, responsibilities
from services.notify.routing import Cadre, Priority, Target
from shared.db import UnitOfWork, one_of
from shared.events import FEED_CHANNEL, CadreAssigned, CadreRegistered, Envelope
from shared.logs import redact

log = logging.getLogger(__name__)


# what routing reads, built once with the values bound when they run (shared.db.one_of)
_RESPONSIBLE = select(responsibilities.c.household_id, responsibilities.c.cadre_id).where(
    one_of(responsibilities.c.household_id, "households")
)
_COUNTY = func.substr(recipients.c.township_code, 1, routing.COUNTY_DIGITS)
_ROSTERS = select(recipients).where(one_of(_COUNTY, "counties"))
_IN_COUNTY = recipients.c.township_code.startswith(bindparam("county"))
_ROSTER = select(recipients).where(_IN_COUNTY)
_NAMED = select(recipients).where(one_of(recipients.c.cadre_id, "cadre_ids"))
_ROSTER_AND_NAMED = select(recipients).where(
    or_(_IN_COUNTY, one_of(recipients.c.cadre_id, "cadre_ids"))
)


@dataclass
class Lookups:
    """What routing reads from the projections, kept for one batch of events in one
    transaction: each household's responsible cadre and each county's roster are read once,
    and the batch's notifications are inserted together at the end."""

    responsible: dict[str, str | None] = field(default_factory=dict)
    rosters: dict[str, list[Cadre]] = field(default_factory=dict)
    named: dict[str, Cadre | None] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    # the batch's CadreAssigned, upserted together at the end (routing reads `responsible`)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    # each household's head's name (None: not known), and those the batch's events told,
    # upserted together at the end
    head_names: dict[str, str | None] = field(default_factory=dict)
    learned: dict[str, str] = field(default_factory=dict)

    async def prefetch(self, uow: UnitOfWork, household_ids: Sequence[str]) -> None:
        """Read the responsible cadres of many households in one query."""
        wanted = [h for h in dict.fromkeys(household_ids) if h not in self.responsible]
        if not wanted:
            return
        rows = (await uow.execute(_RESPONSIBLE, {"households": wanted})).all()
        found = {row.household_id: row.cadre_id for row in rows}
        for household in wanted:
            self.responsible[household] = found.get(household)

    async def prefetch_names(self, uow: UnitOfWork, household_ids: Sequence[str]) -> None:
        """Read the known names of many households in one query."""
        wanted = [h for h in dict.fromkeys(household_ids) if h not in self.head_names]
        found = await names.names_of(uow, wanted)
        for household in wanted:
            self.head_names[household] = found.get(household)

    async def name_for(self, uow: UnitOfWork, household_id: str) -> str | None:
        """The household's head's name, as known so far."""
        if household_id not in self.head_names:
            await self.prefetch_names(uow, [household_id])
        return self.head_names[household_id]

    def learn(self, household_id: str, name: str) -> None:
        """An event of the batch told the household's name: later events use it."""
        self.head_names[household_id] = self.learned[household_id] = name

    async def prefetch_rosters(self, uow: UnitOfWork, region_codes: Iterable[str]) -> None:
        """Read the rosters of many counties in one query (a feed's run spans hundreds)."""
        wanted = {routing.county_of(c) for c in region_codes} - self.rosters.keys()
        if not wanted:
            return
        for county in wanted:
            self.rosters[county] = []
        for row in (await uow.execute(_ROSTERS, {"counties": list(wanted)})).all():
            self.rosters[routing.county_of(row.township_code)].append(cadre_of(row))

    async def responsible_for(self, uow: UnitOfWork, household_id: str) -> str | None:
        """The household's responsible cadre."""
        if household_id not in self.responsible:
            self.responsible[household_id] = await responsible_cadre(uow, household_id)
        return self.responsible[household_id]

    async def roster(self, uow: UnitOfWork, region_code: str, also: Sequence[str]) -> list[Cadre]:
        """As load_roster: the county's cadres plus the named ones wherever they are."""
        county = routing.county_of(region_code)
        if county not in self.rosters:
            rows = (await uow.execute(_ROSTER, {"county": county})).all()
            self.rosters[county] = [cadre_of(r) for r in rows]
        cadres = self.rosters[county]
        present = {c.cadre_id for c in cadres}
        missing = [c for c in also if c not in present and c not in self.named]
        if missing:
            found = (await uow.execute(_NAMED, {"cadre_ids": missing})).all()
            rows = {r.cadre_id: cadre_of(r) for r in found}
            for cadre_id in missing:
                self.named[cadre_id] = rows.get(cadre_id)
        extra = [self.named[c] for c in dict.fromkeys(also) if c not in present]
        return cadres + [c for c in extra if c is not None]

    def roster_changed(self) -> None:
        """A cadre was registered or changed: read the rosters again."""
        self.rosters.clear()
        self.named.clear()

    async def flush(self, uow: UnitOfWork) -> None:
        """Upsert the collected assignments, in order, and insert the collected
        notifications; an (event, recipient, channel) that already has one is skipped, as on
        the one-event path."""
        if self.assignments:
            await uow.execute(_assign(uow), self.assignments)
            self.assignments.clear()
        await names.remember(uow, self.learned)
        self.learned.clear()
        if self.rows:
            # executemany: compiled once and cached, batched into few round trips by the driver
            await uow.execute(_new_notifications(uow), self.rows)
        self.rows.clear()


async def on_events(
    *,
    uow: UnitOfWork,
    events: list[Envelope[Any]],
    settings: NotifySettings,
    wake: Callable[[], None] | None = None,
) -> None:
    """A run of consumed events in one transaction, in order, as the one-event handlers would
    take them one by one (a CadreAssigned is seen by the events after it). `wake` is called
    once the new notifications are committed, so the dispatcher need not wait for its poll."""
    lookups = Lookups()
    # only for events that have a route: most CaseMerged have none (rules §4.10)
    routes = routing.routes_with(settings.routes)
    routed = [
        e
        for e in events
        if routing.route_for(e.event_type, routing.level_of(e.event_type, e.payload), routes)
    ]
    await lookups.prefetch(uow, [e.household_id for e in routed])
    # a risk event tells the name itself: only the households the batch names nowhere are read
    # (assistance's events), so a run of risk events costs no read at all
    told = {e.household_id for e in events if names.name_in(e.payload) is not None}
    unnamed = [e.household_id for e in routed if e.household_id not in told]
    await lookups.prefetch_names(uow, unnamed)
    await lookups.prefetch_rosters(
        uow, [code for e in routed if (code := e.payload.get("village_code"))]
    )
    for event in events:
        if event.event_type == "CadreRegistered":
            await on_cadre_registered(uow=uow, event=event, settings=settings)
            lookups.roster_changed()
        elif event.event_type == "CadreAssigned":
            await on_cadre_assigned(uow=uow, event=event, settings=settings, lookups=lookups)
        else:
            await on_routed_event(uow=uow, event=event, settings=settings, lookups=lookups)
    if lookups.rows and wake is not None:
        uow.after_commit(wake)
    await lookups.flush(uow)


def _insert(uow: UnitOfWork) -> Any:
    return (sqlite if uow.conn.dialect.name == "sqlite" else postgresql).insert


def _assign(uow: UnitOfWork) -> Any:
    """Upsert a household's responsible cadre (rows or a list of them)."""
    return _assign_on(uow.conn.dialect.name)


@cache
def _assign_on(dialect: str) -> Any:
    """The upsert for one dialect, built once."""
    stmt = (sqlite if dialect == "sqlite" else postgresql).insert(responsibilities)
    changed = ("cadre_id", "case_id", "village_code", "updated_at")
    return stmt.on_conflict_do_update(
        index_elements=["household_id"], set_={c: stmt.excluded[c] for c in changed}
    )


async def on_cadre_registered(
    *, uow: UnitOfWork, event: Envelope[CadreRegistered], settings: NotifySettings
) -> None:
    """Upsert the cadre into the roster projection (routing never calls assistance)."""
    cadre = event.payload
    values = {
        "name": cadre.name,
        "rank": cadre.rank,
        "township_code": cadre.township_code,
        "village_codes": list(cadre.village_codes),
        "contacts": dict(cadre.contacts),
        "active": cadre.active,
        "updated_at": uow.clock.now(),
    }
    stmt = _insert(uow)(recipients).values(cadre_id=cadre.cadre_id, **values)
    await uow.execute(stmt.on_conflict_do_update(index_elements=["cadre_id"], set_=values))


async def on_cadre_assigned(
    *,
    uow: UnitOfWork,
    event: Envelope[CadreAssigned],
    settings: NotifySettings,
    lookups: Lookups | None = None,
) -> None:
    """rules §6.8: remember the household's responsible cadre, then tell that cadre."""
    assigned = event.payload
    row = {
        "household_id": event.household_id,
        "cadre_id": assigned.cadre_id,
        "case_id": assigned.case_id,
        "village_code": assigned.village_code,
        "updated_at": uow.clock.now(),
    }
    if lookups is None:
        await uow.execute(_assign(uow), row)
    else:  # a run's: written with the others when the run is done
        lookups.assignments.append(row)
        lookups.responsible[event.household_id] = assigned.cadre_id
    await on_routed_event(uow=uow, event=event, settings=settings, lookups=lookups)


async def on_routed_event(
    *,
    uow: UnitOfWork,
    event: Envelope[Any],
    settings: NotifySettings,
    lookups: Lookups | None = None,
) -> None:
    """Route an event by the table in routing.py: one notification per recipient and channel.
    A head's name the event tells is remembered first, routed or not (rules §4.13: alerts name
    the family), and every message about the household names it from then on."""
    payload = event.payload
    name = names.name_in(payload)
    if name is not None:
        if lookups is None:
            await names.remember(uow, {event.household_id: name})
        else:
            lookups.learn(event.household_id, name)
    route = routing.route_for(
        event.event_type,
        routing.level_of(event.event_type, payload),
        routing.routes_with(settings.routes),
    )
    if route is None:
        return
    village_code: str = payload.village_code
    named = payload.get("cadre_id")
    if lookups is None:
        responsible = await responsible_cadre(uow, event.household_id)
        roster = await load_roster(uow, village_code, also=[c for c in (responsible, named) if c])
    else:
        responsible = await lookups.responsible_for(uow, event.household_id)
        also = [c for c in (responsible, named) if c]
        roster = await lookups.roster(uow, village_code, also)
    targets = routing.targets_for(
        route.targets,
        roster,
        priority=route.priority,
        village_code=village_code,
        office_url=settings.webhook_url,
        fallback=route.fallback,
        responsible=responsible,
        named=named,
    )
    if not targets:
        # a route without the office fallback (a plan, an assignment) and no cadre for it yet:
        # counted, not logged per event, since a county without a roster has one per case
        metrics.NO_RECIPIENT.labels(event.event_type).inc()
        log.debug("%s %s: nobody to notify", event.event_type, event.event_id)
        return
    if name is None:
        if lookups is None:
            name = (await names.names_of(uow, [event.household_id])).get(event.household_id)
        else:
            name = await lookups.name_for(uow, event.household_id)
    zone = ZoneInfo(settings.timezone)
    text = templates.render(
        route.template,
        language=settings.language,
        zone=zone,
        household=event.household_id,
        deadline=templates.deadline_of(payload),
        visit_due=payload.get("home_visit_due"),
        risks=payload.get("risk_types", ()),
        new_risks=payload.get("new_risk_types", ()),
        measures=payload.get("measures") or payload.get("provisional_measures", ()),
        reason=payload.get("reason", ""),
        purpose=payload.get("purpose"),
        names={event.household_id: name} if name else None,
    )
    body = {
        "household_id": redact(event.household_id),
        "event_type": event.event_type,
        "case_id": payload.get("case_id"),
        "village_code": village_code,
        "deadline": _iso(templates.deadline_of(payload)),
        "correlation_id": event.correlation_id,
    }
    if name:
        body["household_name"] = redact(name)
    # a case a department feed opened: its alerts go after the declarations' and reports'
    from_feed = payload.get("channel") == FEED_CHANNEL
    for target in targets:
        row = notification_row(
            uow=uow,
            settings=settings,
            source_event_id=str(event.event_id),
            event_type=event.event_type,
            household_id=event.household_id,
            target=target,
            priority=route.priority,
            text=text,
            body=body,
            from_feed=from_feed,
        )
        if lookups is None:
            await _insert_notification(uow, row)
        else:
            lookups.rows.append(row)


async def create_notification(
    *,
    uow: UnitOfWork,
    settings: NotifySettings,
    source_event_id: str,
    event_type: str,
    household_id: str,
    target: Target,
    priority: Priority,
    text: str,
    body: dict[str, Any],
    from_feed: bool = False,
) -> str | None:
    """Insert one notification unless (event, recipient, channel) already has one; its id."""
    row = notification_row(
        uow=uow,
        settings=settings,
        source_event_id=source_event_id,
        event_type=event_type,
        household_id=household_id,
        target=target,
        priority=priority,
        text=text,
        body=body,
        from_feed=from_feed,
    )
    return row["id"] if await _insert_notification(uow, row) else None


def _new_notifications(uow: UnitOfWork) -> Any:
    """Insert notifications, skipping an (event, recipient, channel) that already has one."""
    return _insert(uow)(notifications).on_conflict_do_nothing(
        index_elements=["source_event_id", "recipient", "channel"]
    )


async def _insert_notification(uow: UnitOfWork, row: dict[str, Any]) -> bool:
    return bool((await uow.execute(_new_notifications(uow), row)).rowcount == 1)


def notification_row(
    *,
    uow: UnitOfWork,
    settings: NotifySettings,
    source_event_id: str,
    event_type: str,
    household_id: str,
    target: Target,
    priority: Priority,
    text: str,
    body: dict[str, Any],
    from_feed: bool = False,
) -> dict[str, Any]:
    """The row of one notification: ack link for urgent ones, quiet hours for people.
    `from_feed`: about a case a department feed opened (claimed after the others)."""
    now = uow.clock.now()
    notification_id = str(uuid4())
    link = None
    if priority == "urgent":
        token = acks.sign(
            notification_id,
            expires_at=now + timedelta(hours=settings.ack_link_ttl_hours),
            secret=settings.secret_key.get_secret_value(),
        )
        link = f"{settings.public_base_url}/v1/acks/{token}"
    cadre_facing = target.level != "office"
    # the office webhook is a machine; quiet hours and digests are for people
    held = cadre_facing and priority == "low"
    release = now
    if cadre_facing:
        release = rules.quiet_release(
            now,
            priority=priority,
            zone=ZoneInfo(settings.timezone),
            start=settings.quiet_hours_start,
            end=settings.quiet_hours_end,
        )
    full_body = body | {
        "text": templates.with_ack_link(text, link, settings.language),
        "priority": priority,
        "ack_url": link,
    }
    return {
        "id": notification_id,
        "source_event_id": source_event_id,
        "event_type": event_type,
        "household_id": household_id,
        "recipient": target.recipient,
        "recipient_level": target.level,
        "channel": target.channel,
        "address": target.address,
        "village_code": body.get("village_code"),
        "priority": priority,
        "body": full_body,
        "status": "held" if held else "pending",
        "attempts": 0,
        "attempt_limit": settings.max_attempts,
        "next_attempt_at": release,
        "created_at": now,
        "from_feed": from_feed,
    }


async def responsible_cadre(uow: UnitOfWork, household_id: str) -> str | None:
    """The household's responsible cadre, as the projection knows it."""
    query = select(responsibilities.c.cadre_id).where(
        responsibilities.c.household_id == household_id
    )
    return (await uow.execute(query)).scalar_one_or_none()


async def load_roster(uow: UnitOfWork, region_code: str, also: Sequence[str] = ()) -> list[Cadre]:
    """Active cadres of the region's county, plus the named ones wherever they are."""
    county = routing.county_of(region_code)
    rows = await uow.execute(_ROSTER_AND_NAMED, {"county": county, "cadre_ids": list(also)})
    return [cadre_of(row) for row in rows.all()]


def cadre_of(row: Any) -> Cadre:
    """A roster row as the pure routing code sees it."""
    return Cadre(
        cadre_id=row.cadre_id,
        name=row.name,
        rank=row.rank,
        township_code=row.township_code,
        village_codes=tuple(row.village_codes or ()),
        contacts=dict(row.contacts or {}),
        active=bool(row.active),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
