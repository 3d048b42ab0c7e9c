"""Deadline rules of rules §4."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.risk.rules import identification_deadline, merged_risk_types
from services.risk.workdays import WorkCalendar

# these count Monday to Friday in UTC; local zones and holidays: test_risk_workdays.py
UTC_DAYS = WorkCalendar(zone=UTC)
add_working_days = UTC_DAYS.add_working_days


def test_fifteen_day_deadline() -> None:
    opened = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert identification_deadline(opened, days=15, calendar=UTC_DAYS) == datetime(
        2026, 3, 17, 9, 30, tzinfo=UTC
    )


def test_two_working_days_skip_the_weekend() -> None:
    friday = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    assert add_working_days(friday, 2) == datetime(2026, 3, 10, 17, 0, tzinfo=UTC)


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(1, 30),
)
def test_working_days_land_on_a_weekday_within_bounds(start: datetime, days: int) -> None:
    end = add_working_days(start, days)
    assert end.weekday() < 5
    assert timedelta(days=days) <= end - start <= timedelta(days=days + 2 * (days // 5 + 1))


def test_merge_keeps_each_risk_type_once() -> None:
    assert merged_risk_types(["illness"], ["illness", "disaster"]) == ["disaster", "illness"]


# --- rules §4.9-§4.12 and §5.3: deadline alerts, with time travel -------------------------

from services.risk.rules import due_alerts, warning_time  # noqa: E402

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
DEADLINE = identification_deadline(OPENED, days=15, calendar=UTC_DAYS)


def kinds_at(now: datetime, **kw: object) -> list[str]:
    return [
        a.kind
        for a in due_alerts(
            opened_at=OPENED,
            deadline=DEADLINE,
            now=now,
            warning_fraction=2 / 3,
            **kw,  # type: ignore[arg-type]
        )
    ]


def test_rules_4_9_twenty_working_days_basis() -> None:
    assert identification_deadline(OPENED, days=20, calendar=UTC_DAYS, basis="working") == datetime(
        2026, 3, 30, 9, 0, tzinfo=UTC
    )


def test_rules_4_11_warning_on_day_ten_of_fifteen() -> None:
    assert warning_time(OPENED, DEADLINE, 2 / 3) == OPENED + timedelta(days=10)
    assert kinds_at(OPENED + timedelta(days=9, hours=23)) == []
    assert kinds_at(OPENED + timedelta(days=10)) == ["warning"]


def test_rules_4_12_overdue_after_fifteen_days_goes_to_the_county() -> None:
    assert kinds_at(DEADLINE) == ["warning"]
    alerts = due_alerts(
        opened_at=OPENED, deadline=DEADLINE, now=DEADLINE + timedelta(seconds=1),
        warning_fraction=2 / 3,
    )  # fmt: skip
    assert [(a.kind, a.level) for a in alerts] == [("warning", "township"), ("overdue", "county")]


def test_rules_4_10_home_visit_within_two_working_days() -> None:
    due = add_working_days(OPENED, 2)
    assert kinds_at(due, home_visit_due=due, home_visited=False) == []
    late = due + timedelta(minutes=1)
    assert kinds_at(late, home_visit_due=due, home_visited=False) == ["home_visit"]
    assert kinds_at(late, home_visit_due=due, home_visited=True) == []


def test_rules_5_3_green_channel_paperwork_within_ten_working_days() -> None:
    due = add_working_days(OPENED, 10)
    assert due == datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    assert "paperwork" in kinds_at(due + timedelta(seconds=1), paperwork_due=due)


@given(st.integers(0, 40 * 24), st.integers(0, 40 * 24))
def test_rules_4_alerts_once_due_stay_due(first: int, later: int) -> None:
    """Property: moving time forward never withdraws an alert (the scheduler emits each once)."""
    a, b = sorted((first, later))
    early = set(kinds_at(OPENED + timedelta(hours=a)))
    assert early <= set(kinds_at(OPENED + timedelta(hours=b)))


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(0, 10_000),
    st.sampled_from(["calendar", "working"]),
)
def test_rules_4_deadlines_never_move_earlier(start: datetime, minutes: int, basis: str) -> None:
    """Property: a later discovery never has an earlier deadline."""
    later = start + timedelta(minutes=minutes)
    assert identification_deadline(
        later, days=15, calendar=UTC_DAYS, basis=basis
    ) >= identification_deadline(start, days=15, calendar=UTC_DAYS, basis=basis)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (datetime(2026, 3, 6, 23, 0, tzinfo=UTC), datetime(2026, 3, 10, 23, 0, tzinfo=UTC)),  # Fri
        (datetime(2026, 3, 7, 1, 0, tzinfo=UTC), datetime(2026, 3, 11, 0, 0, tzinfo=UTC)),  # Sat
        (datetime(2026, 3, 8, 23, 0, tzinfo=UTC), datetime(2026, 3, 11, 0, 0, tzinfo=UTC)),  # Sun
        (datetime(2026, 3, 9, 0, 0, tzinfo=UTC), datetime(2026, 3, 11, 0, 0, tzinfo=UTC)),  # Mon
    ],
)
def test_rules_4_10_weekend_declaration_counts_from_monday(start: datetime, due: datetime) -> None:
    assert add_working_days(start, 2) == due
