"""Local dates and the working-day calendar (rules §4.10 reading, §5.3)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.risk.config import RiskSettings
from services.risk.workdays import CalendarConfigError, WorkCalendar, parse_calendar

BEIJING = ZoneInfo("Asia/Shanghai")
SHIPPED = RiskSettings().work_calendar


def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=BEIJING)


def test_a_date_is_the_local_one() -> None:
    """05:00 on 1 January in Beijing is still 31 December in UTC."""
    assert SHIPPED.local_date(datetime(2024, 12, 31, 21, 0, tzinfo=UTC)) == date(2025, 1, 1)


def test_a_saturday_morning_in_beijing_counts_from_monday() -> None:
    """Friday 23:00 UTC is Saturday 07:00 in Beijing: Monday and Tuesday, due Wednesday 00:00."""
    due = SHIPPED.add_working_days(datetime(2026, 3, 6, 23, 0, tzinfo=UTC), 2)
    assert due == at(2026, 3, 11)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # National Day 2025 (1-8 October): Tuesday 30 September, then 9 and 10 October
        (at(2025, 9, 30, 10), 2, at(2025, 10, 10, 10)),
        # Sunday 28 September 2025 is worked in exchange: it counts, and a start on it is kept
        (at(2025, 9, 28, 9), 2, at(2025, 9, 30, 9)),
        (at(2025, 9, 26, 9), 1, at(2025, 9, 28, 9)),  # Friday + 1 is that Sunday
        # a start on a holiday counts from the next working day's 00:00
        (at(2026, 10, 3, 15), 2, at(2026, 10, 10)),  # 8 Oct (Thu), 9 (Fri), due Sat 10 00:00
        # Spring Festival 2026: 15-23 February off, Saturday 14 and 28 February worked
        (at(2026, 2, 13, 10), 2, at(2026, 2, 24, 10)),
        (at(2026, 2, 27, 10), 1, at(2026, 2, 28, 10)),
    ],
)
def test_holidays_are_skipped_and_make_up_days_count(
    start: datetime, days: int, due: datetime
) -> None:
    assert SHIPPED.add_working_days(start, days) == due


def test_a_year_the_calendar_does_not_list_counts_monday_to_friday() -> None:
    assert SHIPPED.add_working_days(at(2031, 1, 3, 10), 2) == at(2031, 1, 7, 10)  # Fri -> Tue


@given(
    st.datetimes(
        min_value=datetime(2024, 6, 1), max_value=datetime(2027, 6, 1), timezones=st.just(UTC)
    ),
    st.integers(0, 20_000),
    st.integers(1, 25),
)
def test_a_later_start_never_has_an_earlier_end_and_ends_on_a_working_day(
    start: datetime, minutes: int, days: int
) -> None:
    later = start + timedelta(minutes=minutes)
    end = SHIPPED.add_working_days(start, days)
    assert SHIPPED.add_working_days(later, days) >= end
    assert end.utcoffset() == timedelta(0)  # stored as it is, UTC on every database
    assert SHIPPED.is_working_day(SHIPPED.local_date(end))
    assert end - start >= timedelta(days=days)


def test_the_shipped_calendar_is_the_national_arrangement() -> None:
    raw = json.loads((Path(RiskSettings().workdays_file)).read_text(encoding="utf-8"))
    assert raw["source"]
    by_year = {y: sorted(d for d in SHIPPED.holidays if d.year == y) for y in (2025, 2026)}
    assert (len(by_year[2025]), len(by_year[2026])) == (28, 33)
    assert all(d.weekday() >= 5 for d in SHIPPED.workdays)  # make-up days are weekend days
    assert len(SHIPPED.workdays) == 11 and SHIPPED.years() == {2025, 2026}
    assert SHIPPED.zone == BEIJING


@pytest.mark.parametrize(
    ("raw", "zone", "message"),
    [
        ({}, "Mars/Olympus", "timezone: 'Mars/Olympus' is not a known time zone"),
        ([], "UTC", "workdays file: must be an object"),
        ({"holidays": "2026-01-01"}, "UTC", "holidays: must be a list"),
        ({"holidays": ["2026-02-30"]}, "UTC", "holidays[0]: '2026-02-30' is not a date"),
        ({"workdays": [20260104]}, "UTC", "workdays[0]: 20260104 is not a date"),
        (
            {"holidays": ["2026-01-04"], "workdays": ["2026-01-04"]},
            "UTC",
            "workdays: 2026-01-04 is also listed in holidays",
        ),
    ],
)
def test_a_calendar_that_cannot_be_used_names_the_field(
    raw: object, zone: str, message: str
) -> None:
    with pytest.raises(CalendarConfigError, match=message.replace("[", r"\[")):
        parse_calendar(raw, zone)


def test_settings_refuse_an_unusable_calendar_or_zone_at_start(tmp_path: Path) -> None:
    broken = tmp_path / "workdays.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValidationError, match="workdays_file: cannot read"):
        RiskSettings(workdays_file=broken)
    with pytest.raises(ValidationError, match=r"timezone\n.*'Beijing' is not a known time zone"):
        RiskSettings(timezone="Beijing")
    with pytest.raises(ValidationError, match="thresholds_file: cannot read"):
        RiskSettings(thresholds_file=tmp_path / "missing.json")
    listless = tmp_path / "thresholds.json"
    listless.write_text('[{"region_prefix": "53", "year": "x"}]', encoding="utf-8")
    with pytest.raises(ValidationError, match="entry 0: year: 'x' is not a valid value"):
        RiskSettings(thresholds_file=listless)


def test_a_calendar_in_utc_without_holidays_is_monday_to_friday() -> None:
    plain = WorkCalendar(zone=UTC)
    assert plain.add_working_days(datetime(2026, 10, 1, 9, tzinfo=UTC), 1) == datetime(
        2026, 10, 2, 9, tzinfo=UTC
    )


def test_the_risk_service_warns_when_the_calendar_lacks_this_year(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from services.risk.app import warn_of_a_missing_year
    from shared.clock import FrozenClock

    def calendar_warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "workdays_file" in r.getMessage()]

    with caplog.at_level("WARNING", logger="holdline.risk"):
        warn_of_a_missing_year(RiskSettings(), FrozenClock(datetime(2026, 6, 1, tzinfo=UTC)))
        assert not calendar_warnings()
        warn_of_a_missing_year(RiskSettings(), FrozenClock(datetime(2026, 12, 31, 17, tzinfo=UTC)))
    [message] = calendar_warnings()  # 1 January 2027 in Beijing
    assert "lists no holidays for 2027" in message


def test_the_risk_service_warns_of_regions_without_this_years_threshold(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from services.risk.app import warn_of_a_missing_year
    from shared.clock import FrozenClock

    entries = [
        {"region_prefix": "53", "year": 2025, "effective_from": "2025-01-01",
         "monitoring_threshold_yuan": 8700, "label": "Yunnan 2025"},
        {"region_prefix": "53", "year": 2026, "effective_from": "2026-01-01",
         "monitoring_threshold_yuan": 8900},
        {"region_prefix": "21", "year": 2025, "effective_from": "2025-01-01",
         "monitoring_threshold_yuan": 7800, "label": "Liaoning 2025"},
    ]  # fmt: skip
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    settings = RiskSettings(thresholds_file=path)
    with caplog.at_level("WARNING", logger="holdline.risk"):
        warn_of_a_missing_year(settings, FrozenClock(datetime(2026, 6, 1, tzinfo=UTC)))
    [record] = caplog.records
    assert "no 2026 threshold for 21 (Liaoning 2025)" in record.getMessage()
    assert "53" not in record.getMessage().split("threshold for", 1)[1]
