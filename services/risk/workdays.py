"""Local dates and working days (rules §4.9-§4.10, §5.3): the county's clock, not UTC.

A deadline counted in working days skips weekends and the public holidays of the official
calendar, and counts the weekend days worked in their place (调休). Dates (the threshold in
force, months in monitoring, the dates a notice shows) are the dates on the local calendar: a
declaration at 07:00 Beijing time on 1 January is a 1 January declaration, not a 31 December
one. The calendar is data (workdays.json by default; HOLDLINE_RISK_WORKDAYS_FILE), published
once a year; a date of a year it does not list is a working day when it falls Monday to Friday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.clock import LOCAL_ZONE, local, local_date


class CalendarConfigError(ValueError):
    """A working-day calendar or time zone that cannot be used, naming the field."""


@dataclass(frozen=True)
class WorkCalendar:
    """The local time zone and the official working-day calendar."""

    zone: tzinfo = LOCAL_ZONE
    holidays: frozenset[date] = frozenset()  # days off, weekday or not
    workdays: frozenset[date] = frozenset()  # weekend days worked in exchange (调休)

    def local(self, at: datetime) -> datetime:
        """An instant in the local zone; a naive one (SQLite's columns) is UTC."""
        return local(at, self.zone)

    def local_date(self, at: datetime) -> date:
        """The date on the local calendar of an instant."""
        return local_date(at, self.zone)

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday unless a holiday; a listed make-up day even at the weekend."""
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """`days` working days after `start`, at the same local time of day.

        A start on a day off counts from the next working day's 00:00 local time (a Saturday
        start with 2 days: Monday and Tuesday, due Wednesday 00:00), so a later start never
        has an earlier end. The result is in UTC, like every instant risk stores: SQLite keeps
        a datetime's wall time without its offset and reads it back as UTC, so a local result
        would fall due 8 hours late there.
        """
        local = self.local(start)
        day, clock = local.date(), local.timetz().replace(tzinfo=None)
        if not self.is_working_day(day):
            day = self._next_working_day(day)
            clock = time(0)
        for _ in range(days):
            day = self._next_working_day(day)
        return datetime.combine(day, clock, tzinfo=self.zone).astimezone(UTC)

    def _next_working_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def years(self) -> set[int]:
        """The years the calendar lists days for."""
        return {d.year for d in self.holidays | self.workdays}


def parse_calendar(raw: Any, zone_name: str) -> WorkCalendar:
    """The calendar file's content (`{"holidays": [...], "workdays": [...]}`, ISO dates) and a
    time zone name, checked; errors name the field and the entry."""
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarConfigError(
            f"timezone: {zone_name!r} is not a known time zone (e.g. Asia/Shanghai)"
        ) from None
    if not isinstance(raw, dict):
        raise CalendarConfigError("workdays file: must be an object with holidays and workdays")
    lists = {name: _dates(raw, name) for name in ("holidays", "workdays")}
    both = sorted(set(lists["holidays"]) & set(lists["workdays"]))
    if both:
        raise CalendarConfigError(f"workdays: {both[0]} is also listed in holidays")
    return WorkCalendar(
        zone=zone, holidays=frozenset(lists["holidays"]), workdays=frozenset(lists["workdays"])
    )


def _dates(raw: dict[str, Any], name: str) -> list[date]:
    values = raw.get(name, [])
    if not isinstance(values, list):
        raise CalendarConfigError(f"{name}: must be a list of dates (YYYY-MM-DD)")
    days = []
    for n, value in enumerate(values):
        try:
            days.append(date.fromisoformat(value))
        except (TypeError, ValueError):
            raise CalendarConfigError(
                f"{name}[{n}]: {value!r} is not a date (YYYY-MM-DD)"
            ) from None
    return days
