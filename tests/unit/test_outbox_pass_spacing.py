"""How long a relay waits between passes (shared.kafka.pass_spacing): the configured interval
on an idle machine, longer when passes slow down, never past the maximum, and no longer than the
interval while a backlog drains."""

from __future__ import annotations

import pytest

from shared.kafka import pass_spacing

DEFAULTS = {"interval": 0.010, "factor": 2.0, "most": 0.100}


@pytest.mark.parametrize(
    ("took", "spacing"),
    [
        (0.002, 0.010),  # a pass of a row or two on an idle machine
        (0.005, 0.010),
        (0.022, 0.044),  # the same pass when the cores are busy
        (0.050, 0.100),
        (3.000, 0.100),  # waited out a broker outage in its sends
    ],
)
def test_a_pass_that_took_longer_is_followed_later_up_to_the_maximum(
    took: float, spacing: float
) -> None:
    assert pass_spacing(took=took, full=False, **DEFAULTS) == pytest.approx(spacing)


def test_a_full_pass_is_followed_after_the_interval_however_long_it_took() -> None:
    # a backlog is being drained: its batches are as large as they get already
    assert pass_spacing(took=0.080, full=True, **DEFAULTS) == 0.010


def test_factor_zero_keeps_the_interval_alone_and_the_interval_wins_over_the_maximum() -> None:
    assert pass_spacing(took=0.050, full=False, interval=0.010, factor=0, most=0.1) == 0.010
    assert pass_spacing(took=0.050, full=False, interval=1.0, factor=2, most=0.1) == 1.0
