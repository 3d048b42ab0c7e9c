"""rules §7.1 "per-capita income has stayed above the threshold": the run of income records
above it is read by the records' dates, whatever order they arrive in (elimination.income_run)."""

from __future__ import annotations

from datetime import date

from services.risk.elimination import IncomeRecord, income_run


def rec(day: str, income: float, *, restart: bool = False) -> IncomeRecord:
    """A record against an 8,700 threshold."""
    return IncomeRecord(date.fromisoformat(day), income, income > 8700, restart)


def test_records_in_order_run_from_the_first_above_after_the_last_below() -> None:
    latest, since = income_run(
        [rec("2026-03-01", 9500), rec("2026-04-01", 6000), rec("2026-05-01", 9600),
         rec("2026-06-01", 9700)]
    )  # fmt: skip
    assert since == date(2026, 5, 1) and latest.income == 9700


def test_a_backdated_figure_above_does_not_reach_past_a_lower_one_recorded_after_it() -> None:
    """The home verification of 8 December found 6,000; a visit dated 1 May arriving later
    with 12,000 neither makes the household above nor starts the clock in May."""
    latest, since = income_run([rec("2026-12-08", 6000), rec("2026-05-01", 12_000)])
    assert since is None and latest.income == 6000
    # above again, recorded after the lower figure: the run starts then
    latest, since = income_run(
        [rec("2026-12-08", 6000), rec("2026-05-01", 12_000), rec("2026-12-09", 12_000)]
    )
    assert since == date(2026, 12, 9) and latest.income == 12_000


def test_a_backdated_figure_below_breaks_the_run_it_falls_in() -> None:
    latest, since = income_run(
        [rec("2026-03-01", 9500), rec("2026-09-01", 9600), rec("2026-06-01", 5000)]
    )
    assert since == date(2026, 9, 1) and latest.income == 9600


def test_a_backdated_figure_above_extends_a_run_nothing_lower_interrupts() -> None:
    _, since = income_run(
        [rec("2026-01-01", 5000), rec("2026-09-01", 9600), rec("2026-03-01", 9500)]
    )
    assert since == date(2026, 3, 1)


def test_figures_equal_to_the_threshold_are_not_above() -> None:
    _, since = income_run([rec("2026-03-01", 9500), rec("2026-04-01", 8700)])
    assert since is None


def test_nothing_before_a_rollback_counts_again() -> None:
    """rules §7.4: the run starts at the rollback at the earliest, even for a record dated
    before it that arrives afterwards."""
    _, since = income_run(
        [rec("2026-01-01", 9500), rec("2026-09-01", 9600, restart=True), rec("2026-05-01", 9800),
         rec("2026-10-01", 9700)]
    )  # fmt: skip
    assert since == date(2026, 9, 1)


def test_records_of_one_day_keep_their_order_of_arrival() -> None:
    latest, since = income_run([rec("2026-03-01", 9500), rec("2026-03-01", 6000)])
    assert since is None and latest.income == 6000
