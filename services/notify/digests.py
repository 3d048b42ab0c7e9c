"""Digests: many low-priority alerts to one cadre leave as one message."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from services.notify import names, rules, templates
from services.notify.config import NotifySettings
from services.notify.handlers import create_notification
from services.notify.models import notifications
from services.notify.routing import Target
from shared.db import UnitOfWork, utc
from shared.logs import redact

DIGEST_NAMESPACE = uuid.UUID("5b0f6d2e-0b7a-4a43-9a55-8c4f1e0d0d11")


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def release_digests(
    *, uow_factory: Callable[[], UnitOfWork], settings: NotifySettings
) -> int:
    """Held low-priority alerts of one cadre and channel leave as one digest (or alone)."""
    async with uow_factory() as uow:
        now = uow.clock.now()
        held = (
            await uow.execute(
                select(notifications)
                .where(notifications.c.status == "held")
                .order_by(notifications.c.created_at)
            )
        ).all()
        groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
        for row in held:
            groups[(row.recipient, row.channel, row.address or "")].append(row)
        released = 0
        for (recipient, channel, address), rows in groups.items():
            if not rules.digest_ready(
                utc(rows[0].created_at),
                len(rows),
                now=now,
                window=timedelta(minutes=settings.digest_window_minutes),
                max_items=settings.digest_max_items,
            ):
                continue
            released += len(rows)
            if len(rows) == 1:
                await _release_one(uow, settings, rows[0], now)
                continue
            await _send_digest(
                uow,
                settings,
                rows,
                Target(recipient, rows[0].recipient_level or "named", channel, address),
            )
    return released


async def _release_one(uow: UnitOfWork, settings: NotifySettings, row: Any, now: datetime) -> None:
    release = rules.quiet_release(
        now,
        priority=row.priority,
        zone=ZoneInfo(settings.timezone),
        start=settings.quiet_hours_start,
        end=settings.quiet_hours_end,
    )
    await uow.execute(
        update(notifications)
        .where(notifications.c.id == row.id)
        .values(status="pending", next_attempt_at=release)
    )


async def _send_digest(
    uow: UnitOfWork, settings: NotifySettings, rows: list[Any], target: Target
) -> None:
    deadlines = sorted(d for d in (_parse(r.body.get("deadline")) for r in rows) if d)
    households = list(dict.fromkeys(r.household_id for r in rows))
    # the latest names known, else those the alerts gave (rules §4.13: the family is named)
    given = {r.household_id: r.body.get("household_name") for r in rows}
    known = {h: n for h, n in given.items() if n} | await names.names_of(uow, households)
    # what the alerts are: a cadre taking over households reads so, not only a count
    kinds = dict(Counter(r.event_type for r in rows))
    text = templates.render(
        "digest",
        language=settings.language,
        zone=ZoneInfo(settings.timezone),
        household=households[0],
        households=households,
        count=len(rows),
        deadline=deadlines[0] if deadlines else None,
        names=known,
        kinds=kinds,
    )
    body: dict[str, Any] = {
        "household_id": redact(households[0]),
        "households": [redact(h) for h in households],
        "event_type": "Digest",
        # the first alert's village: whom to tell if the digest cannot be delivered
        "village_code": rows[0].village_code,
        "deadline": deadlines[0].isoformat() if deadlines else None,
        "items": [r.id for r in rows],
        "kinds": kinds,
    }
    if known.get(households[0]):
        body["household_name"] = redact(known[households[0]])
    # the digest's identity follows from its members, so a replayed pass cannot send it twice
    digest_source = str(uuid.uuid5(DIGEST_NAMESPACE, ",".join(sorted(r.id for r in rows))))
    digest_id = await create_notification(
        uow=uow,
        settings=settings,
        source_event_id=digest_source,
        event_type="Digest",
        household_id=households[0],
        target=target,
        priority="normal",
        text=text,
        body=body,
    )
    await uow.execute(
        update(notifications)
        .where(notifications.c.id.in_([r.id for r in rows]))
        .values(status="digested", digest_id=digest_id)
    )
