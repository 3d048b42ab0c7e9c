"""Deadlines of the identification procedure (rules §4.9-§4.12, §5.3), as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.risk.workdays import WorkCalendar

AlertKind = Literal["warning", "overdue", "home_visit", "paperwork"]


def identification_deadline(
    opened_at: datetime, *, days: int, calendar: WorkCalendar, basis: str = "calendar"
) -> datetime:
    """rules §4.9: identification complete within `days` calendar (or working) days of discovery."""
    if basis == "working":
        return calendar.add_working_days(opened_at, days)
    return opened_at + timedelta(days=days)


def merged_risk_types(existing: list[str], incoming: list[str]) -> list[str]:
    """rules §4.8: a new signal joins the open case; its risk types add to the case's."""
    return sorted(set(existing) | set(incoming))


def warning_time(opened_at: datetime, deadline: datetime, fraction: float) -> datetime:
    """rules §4.11: when `fraction` of the identification time has passed (day 10 of 15)."""
    return opened_at + (deadline - opened_at) * fraction


@dataclass(frozen=True)
class DueAlert:
    """A deadline event that is due for a case: what, against which deadline, to whom."""

    kind: AlertKind
    deadline: datetime
    level: Literal["township", "county"]


def due_alerts(
    *,
    opened_at: datetime,
    deadline: datetime,
    now: datetime,
    warning_fraction: float,
    home_visit_due: datetime | None = None,
    home_visited: bool = True,
    paperwork_due: datetime | None = None,
) -> list[DueAlert]:
    """Every deadline alert an open case has reached at `now` (the caller emits each once)."""
    alerts = []
    if now >= warning_time(opened_at, deadline, warning_fraction):
        alerts.append(DueAlert("warning", deadline, "township"))  # rules §4.11
    if now > deadline:
        alerts.append(DueAlert("overdue", deadline, "county"))  # rules §4.12: orange warning
    if home_visit_due is not None and not home_visited and now > home_visit_due:
        alerts.append(DueAlert("home_visit", home_visit_due, "township"))  # rules §4.10
    if paperwork_due is not None and now > paperwork_due:
        alerts.append(DueAlert("paperwork", paperwork_due, "county"))  # rules §5.3
    return alerts
