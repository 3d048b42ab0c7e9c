"""Acknowledgements, and escalation of urgent alerts nobody acknowledged in time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update

from services.notify import metrics, names, routing, templates
from services.notify.config import NotifySettings
from services.notify.handlers import cadre_of, create_notification, load_roster
from services.notify.models import notifications, recipients
from services.notify.routing import Priority, Target
from shared.db import UnitOfWork, utc
from shared.events import NotificationAcknowledged, new_event
from shared.logs import redact

log = logging.getLogger(__name__)
ESCALATION_NAMESPACE = uuid.UUID("0c3e1f4a-6d2b-4e8f-9a1c-2b7d5e9f3a60")
UNDELIVERED_NAMESPACE = uuid.UUID("9d41c6b2-3f0e-4c57-8a2d-6e1b7f4c0a93")


async def acknowledge(
    *, uow: UnitOfWork, notification_id: str, settings: NotifySettings
) -> datetime | None:
    """Mark the alert acknowledged by its recipient (all channels); None if unknown."""
    row = (
        await uow.execute(select(notifications).where(notifications.c.id == notification_id))
    ).first()
    if row is None:
        return None
    if row.acknowledged_at is not None:
        return utc(row.acknowledged_at)
    now = uow.clock.now()
    await uow.execute(
        update(notifications)
        .where(
            notifications.c.source_event_id == row.source_event_id,
            notifications.c.recipient == row.recipient,
            notifications.c.acknowledged_at.is_(None),
        )
        .values(acknowledged_at=now)
    )
    await uow.record(
        new_event(
            NotificationAcknowledged(
                notification_id=row.id,
                source_event_id=row.source_event_id,
                recipient=row.recipient,
                acknowledged_at=now,
                delivered_at=utc(row.delivered_at) if row.delivered_at else None,
            ),
            household_id=row.household_id,
            source="notify",
            correlation_id=row.body.get("correlation_id") or row.id,
            clock=uow.clock,
        ),
        settings.topic("notifications"),
    )
    return now


async def escalate_due(*, uow_factory: Callable[[], UnitOfWork], settings: NotifySettings) -> int:
    """Urgent alerts unacknowledged after the timeout (or dead) go by SMS or one level up."""
    async with uow_factory() as uow:
        now = uow.clock.now()
        cutoff = now - timedelta(minutes=settings.ack_timeout_minutes)
        rows = (
            await uow.execute(
                select(notifications).where(
                    notifications.c.priority == "urgent",
                    notifications.c.escalated_at.is_(None),
                    notifications.c.acknowledged_at.is_(None),
                    or_(
                        notifications.c.status == "failed",
                        and_(
                            notifications.c.status == "delivered",
                            notifications.c.created_at <= cutoff,
                        ),
                    ),
                )
            )
        ).all()
        for row in rows:
            await _escalate(uow=uow, row=row, settings=settings)
            await uow.execute(
                update(notifications).where(notifications.c.id == row.id).values(escalated_at=now)
            )
    return len(rows)


async def _escalate(*, uow: UnitOfWork, row: Any, settings: NotifySettings) -> None:
    cadre = None
    if row.recipient.startswith("cadre:"):
        found = (
            await uow.execute(
                select(recipients).where(recipients.c.cadre_id == row.recipient[len("cadre:") :])
            )
        ).first()
        cadre = cadre_of(found) if found else None
    sms_used = (
        await uow.execute(
            select(notifications.c.id).where(
                notifications.c.source_event_id == row.source_event_id,
                notifications.c.recipient == row.recipient,
                notifications.c.channel == "sms",
            )
        )
    ).first() is not None
    body = {k: v for k, v in row.body.items() if k not in ("text", "ack_url", "priority")}
    if cadre is not None and row.status == "delivered":
        channel = routing.escalation_channel(cadre, row.channel, sms_used)
        if channel is not None:
            # same recipient, louder channel
            target = Target(row.recipient, row.recipient_level, channel, cadre.contacts[channel])
            await _create(uow, settings, row, target, text_of(row), body)
            return
    level = routing.NEXT_LEVEL.get(row.recipient_level or "office")
    if level is None:
        log.error("notification %s: unacknowledged and nobody above %s", row.id, row.recipient)
        return
    name = await _name_of(uow, row)
    if name:
        body["household_name"] = redact(name)
    text = templates.render(
        "escalation",
        language=settings.language,
        zone=ZoneInfo(settings.timezone),
        household=row.household_id,
        deadline=_parse(row.body.get("deadline")),
        names={row.household_id: name} if name else None,
    )
    # one escalation per unacknowledged recipient of an alert, however many channels it used
    source = str(uuid.uuid5(ESCALATION_NAMESPACE, f"{row.source_event_id}:{row.recipient}"))
    for target in await _targets_at(uow, row, level, "urgent", settings):
        await _create(
            uow, settings, row, target, text, body | {"escalated_from": row.id}, source=source
        )


async def report_undelivered(
    *, uow_factory: Callable[[], UnitOfWork], settings: NotifySettings
) -> int:
    """A non-urgent alert that could not be delivered (every attempt spent, `failed`) is told
    one level up, by the ladder of escalate_due, so that someone acts on the household in time
    (a village cadre's dead webhook must not swallow the visit of rules §4.10): once per failed
    alert, marked in `escalated_at` in the same transaction; urgent ones go up through
    escalate_due. Returns how many failed alerts were taken."""
    async with uow_factory() as uow:
        query = (
            select(notifications)
            .where(
                notifications.c.status == "failed",
                notifications.c.priority != "urgent",
                notifications.c.escalated_at.is_(None),
            )
            .order_by(notifications.c.created_at)
            .limit(settings.dispatch_batch_size)
        )
        if uow.conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # another replica skips them
        rows = (await uow.execute(query)).all()
        told: list[tuple[str, str]] = []
        for row in rows:
            told.append((row.event_type, await _report(uow=uow, row=row, settings=settings)))
        if rows:
            await uow.execute(
                update(notifications)
                .where(notifications.c.id.in_([r.id for r in rows]))
                .values(escalated_at=uow.clock.now())
            )
        uow.after_commit(lambda: _count(told))
    return len(rows)


def _count(told: list[tuple[str, str]]) -> None:
    for event_type, level in told:
        metrics.UNDELIVERED_REPORTED.labels(event_type, level).inc()


async def _report(*, uow: UnitOfWork, row: Any, settings: NotifySettings) -> str:
    """Tell the level above whom a failed alert did not reach and what it asked; the level
    told, or "none" when there is nobody above (the county office's own webhook)."""
    level = routing.NEXT_LEVEL.get(row.recipient_level or "office")
    if level is None:
        log.error("notification %s: undelivered and nobody above %s", row.id, row.recipient)
        return "none"
    whom = row.recipient
    if row.recipient.startswith("cadre:"):
        found = (
            await uow.execute(
                select(recipients.c.name).where(
                    recipients.c.cadre_id == row.recipient[len("cadre:") :]
                )
            )
        ).first()
        whom = found.name if found else row.recipient[len("cadre:") :]
    # a notice that is itself undelivered quotes the first alert's ask, not itself
    asked = row.body.get("asked") or text_of(row)
    text = templates.undelivered(whom, asked, language=settings.language)
    body = {k: v for k, v in row.body.items() if k not in ("text", "ack_url", "priority")}
    body |= {"undelivered_from": row.id, "unreached": row.recipient, "asked": asked}
    name = await _name_of(uow, row)
    if name:
        body["household_name"] = redact(name)
    # one notice per failed alert and recipient, whatever is replayed
    source = str(uuid.uuid5(UNDELIVERED_NAMESPACE, row.id))
    for target in await _targets_at(uow, row, level, "normal", settings):
        await create_notification(
            uow=uow,
            settings=settings,
            source_event_id=source,
            event_type=row.event_type,
            household_id=row.household_id,
            target=target,
            priority="normal",
            text=text,
            body=body,
            from_feed=bool(row.from_feed),
        )
    log.warning("notification %s: undelivered to %s, told the %s", row.id, row.recipient, level)
    return level


async def _name_of(uow: UnitOfWork, row: Any) -> str | None:
    """The household's latest name known, else the one the alert carried (rules §4.13: the
    family is named)."""
    latest = (await names.names_of(uow, [row.household_id])).get(row.household_id)
    name: str | None = latest or row.body.get("household_name")
    return name


async def _targets_at(
    uow: UnitOfWork, row: Any, level: routing.Level, priority: Priority, settings: NotifySettings
) -> list[Target]:
    """Who answers at `level` for the alert's village (the office when nobody does)."""
    village = row.village_code or ""
    roster = await load_roster(uow, village) if village else []
    return routing.targets_for(
        [level], roster, priority=priority, village_code=village,
        office_url=settings.webhook_url, fallback=True,
    )  # fmt: skip


def text_of(row: Any) -> str:
    """An alert's text without its acknowledgement link."""
    text: str = row.body.get("text", "")
    return text.split(" 确认:")[0].split(" Ack: ")[0]


async def _create(
    uow: UnitOfWork,
    settings: NotifySettings,
    row: Any,
    target: Target,
    text: str,
    body: dict[str, Any],
    *,
    source: str | None = None,
) -> None:
    await create_notification(
        uow=uow,
        settings=settings,
        source_event_id=source or row.source_event_id,
        event_type=row.event_type,
        household_id=row.household_id,
        target=target,
        priority="urgent",
        text=text,
        body=body,
        from_feed=bool(row.from_feed),
    )


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
