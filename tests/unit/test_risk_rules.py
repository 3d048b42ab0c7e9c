"""Deadline rules of rules §4."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.risk.rules import add_working_days, identification_deadline, merged_risk_types


def test_fifteen_day_deadline() -> None:
    opened = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert identification_deadline(opened, days=15) == datetime(2026, 3, 17, 9, 30, tzinfo=UTC)


def test_two_working_days_skip_the_weekend() -> None:
    friday = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    assert add_working_days(friday, 2) == datetime(2026, 3, 10, 17, 0, tzinfo=UTC)


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)), st.integers(1, 30)
)
def test_working_days_land_on_a_weekday_within_bounds(start: datetime, days: int) -> None:
    end = add_working_days(start, days)
    assert end.weekday() < 5
    assert timedelta(days=days) <= end - start <= timedelta(days=days + 2 * (days // 5 + 1))


def test_merge_keeps_each_risk_type_once() -> None:
    assert merged_risk_types(["illness"], ["illness", "disaster"]) == ["disaster", "illness"]
