"""The policy as pure functions (no I/O). Sections cite docs/rules.md."""

from __future__ import annotations

from datetime import datetime, timedelta


def identification_deadline(opened_at: datetime, *, days: int) -> datetime:
    """rules §4: identification must be complete within `days` calendar days of discovery."""
    return opened_at + timedelta(days=days)


def add_working_days(start: datetime, days: int) -> datetime:
    """`days` working days (Monday to Friday) after `start`; public holidays are not modelled."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


def merged_risk_types(existing: list[str], incoming: list[str]) -> list[str]:
    """rules §4: a new signal joins the open case; its risk types add to the case's."""
    return sorted(set(existing) | set(incoming))
