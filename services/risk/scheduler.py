"""The deadline scheduler (rules §4.9-§4.12, §5.3): each alert leaves exactly once.

Exactly once across restarts and replicas: the (case_id, kind) row of `deadline_alerts` is
inserted in the same transaction as the outbox event; a second replica's insert conflicts
and records nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from services.risk.config import RiskSettings
from services.risk.handlers import publish
from services.risk.models import cases, deadline_alerts
from services.risk.rules import DueAlert, due_alerts
from shared.db import UnitOfWork, utc
from shared.events import CaseDeadlineApproaching, CaseOverdue, Payload

log = logging.getLogger(__name__)
DEADLINE_KINDS = {
    "warning": "identification",
    "overdue": "identification",
    "home_visit": "home_visit",
    "paperwork": "green_channel_paperwork",
}


def _event(row: Any, alert: DueAlert) -> Payload:
    if alert.kind == "warning":
        return CaseDeadlineApproaching(
            case_id=row.id, village_code=row.village_code, deadline=alert.deadline, level="township"
        )
    return CaseOverdue(
        case_id=row.id,
        village_code=row.village_code,
        deadline=alert.deadline,
        level=alert.level,
        deadline_kind=DEADLINE_KINDS[alert.kind],
    )


async def scan_deadlines(*, uow_factory: Callable[[], UnitOfWork], settings: RiskSettings) -> int:
    """One pass over the open identification cases with something due; returns events emitted."""
    emitted = 0
    async with uow_factory() as uow:
        now = uow.clock.now()
        overdue_sent = exists().where(
            deadline_alerts.c.case_id == cases.c.id, deadline_alerts.c.kind == "overdue"
        )
        rows = (
            await uow.execute(
                select(cases)
                .where(
                    cases.c.status == "open",
                    cases.c.purpose == "identification",
                    or_(
                        and_(cases.c.warning_at <= now, ~overdue_sent),
                        and_(cases.c.home_visit_due <= now, cases.c.home_visited_at.is_(None)),
                        cases.c.paperwork_due <= now,
                    ),
                )
                .order_by(cases.c.deadline)
                .limit(settings.deadline_scan_batch)
            )
        ).all()
        if not rows:
            return 0
        sent = {
            (r.case_id, r.kind)
            for r in await uow.execute(
                select(deadline_alerts.c.case_id, deadline_alerts.c.kind).where(
                    deadline_alerts.c.case_id.in_([r.id for r in rows])
                )
            )
        }
        dialect = sqlite if uow.conn.dialect.name == "sqlite" else postgresql
        for row in rows:
            for alert in due_alerts(
                opened_at=utc(row.opened_at),
                deadline=utc(row.deadline),
                now=now,
                warning_fraction=settings.warning_fraction,
                home_visit_due=utc(row.home_visit_due) if row.home_visit_due else None,
                home_visited=row.home_visited_at is not None,
                paperwork_due=utc(row.paperwork_due) if row.paperwork_due else None,
            ):
                if (row.id, alert.kind) in sent:
                    continue
                claimed = await uow.execute(
                    dialect.insert(deadline_alerts)
                    .values(case_id=row.id, kind=alert.kind, emitted_at=now)
                    .on_conflict_do_nothing()
                )
                if claimed.rowcount != 1:
                    continue  # another replica emitted it
                await publish(
                    uow,
                    _event(row, alert),
                    household_id=row.household_id,
                    correlation_id=row.id,
                    topic=settings.topic("cases"),
                )
                emitted += 1
    return emitted


def deadline_job(settings: RiskSettings) -> Callable[[Any], Any]:
    """A Runtime background job running the scheduler every `deadline_scan_seconds`."""

    async def deadline_scheduler(runtime: Any) -> None:
        while True:
            try:
                await scan_deadlines(uow_factory=runtime.uow, settings=settings)
            except Exception:
                log.exception("deadline scan failed; retrying")
            await asyncio.sleep(settings.deadline_scan_seconds)

    return deadline_scheduler
