"""Injected clocks: deadlines are computed from event times and a clock, so tests can move time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

# the policy's dates (deadlines, visits, "not in the future") are China's: UTC+8 all year
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")


def local(at: datetime, zone: tzinfo = LOCAL_ZONE) -> datetime:
    """An instant in `zone`; a naive instant (SQLite's columns) is UTC."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone)


def local_date(at: datetime, zone: tzinfo = LOCAL_ZONE) -> date:
    """The calendar date of an instant in `zone` (naive is UTC)."""
    return local(at, zone).date()


class Clock(Protocol):
    """Anything that tells the current UTC time."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta
