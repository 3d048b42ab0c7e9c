"""Delivery timing, circuit breaker and acknowledgement tokens (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notify import acks, rules
from services.notify.breaker import Breaker

ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


@given(st.integers(1, 30), st.floats(0.01, 10), st.floats(1, 600), st.integers(0, 2**32))
def test_backoff_is_jittered_below_the_exponential_cap(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    delay = rules.next_attempt_delay(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert timedelta(0) <= delay <= timedelta(seconds=min(cap, base * 2 ** (attempt - 1)))


@pytest.mark.parametrize(
    ("utc_time", "priority", "release_local_hour", "next_day"),
    [
        (datetime(2026, 3, 2, 4, 0, tzinfo=UTC), "normal", None, False),  # 12:00: now
        (datetime(2026, 3, 2, 13, 0, tzinfo=UTC), "normal", 8, True),  # 21:00: tomorrow 08:00
        (datetime(2026, 3, 2, 19, 0, tzinfo=UTC), "low", 8, False),  # 03:00: today 08:00
        (datetime(2026, 3, 2, 13, 0, tzinfo=UTC), "urgent", None, False),  # urgent never waits
    ],
)
def test_quiet_hours_hold_non_urgent_alerts_until_morning(
    utc_time: datetime, priority: str, release_local_hour: int | None, next_day: bool
) -> None:
    release = rules.quiet_release(utc_time, priority=priority, zone=ZONE, start=20, end=8)
    if release_local_hour is None:
        assert release == utc_time
        return
    local = release.astimezone(ZONE)
    assert (local.hour, local.minute) == (release_local_hour, 0)
    assert local.date() == utc_time.astimezone(ZONE).date() + timedelta(days=int(next_day))


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)))
def test_a_released_alert_never_goes_out_in_quiet_hours(naive: datetime) -> None:
    now = naive.replace(tzinfo=UTC)
    release = rules.quiet_release(now, priority="normal", zone=ZONE, start=20, end=8)
    assert release >= now
    assert release - now <= timedelta(hours=12)
    assert not rules.in_quiet_hours(release, zone=ZONE, start=20, end=8)


def test_equal_quiet_hours_mean_off() -> None:
    assert not rules.in_quiet_hours(T0, zone=ZONE, start=0, end=0)


@pytest.mark.parametrize(
    ("waited_minutes", "count", "ready"), [(5, 2, False), (61, 2, True), (1, 20, True)]
)
def test_digest_goes_after_the_window_or_when_full(
    waited_minutes: int, count: int, ready: bool
) -> None:
    oldest = T0 - timedelta(minutes=waited_minutes)
    assert (
        rules.digest_ready(oldest, count, now=T0, window=timedelta(minutes=60), max_items=20)
        is ready
    )


def test_breaker_opens_when_nearly_every_call_fails_then_lets_one_trial_through() -> None:
    b = Breaker(min_calls=3, cooldown=timedelta(seconds=30))
    for _ in range(3):
        assert b.allow(T0)
        b.record(ok=False, now=T0, error="HTTP 500")
    assert b.state == "open" and not b.allow(T0 + timedelta(seconds=29))
    assert b.retry_at(T0) == T0 + timedelta(seconds=30)
    later = T0 + timedelta(seconds=30)
    assert b.allow(later) and not b.allow(later), "half-open: one trial at a time"
    b.record(ok=False, now=later)
    assert b.state == "open" and b.opened_at == later
    assert b.allow(later + timedelta(seconds=30))
    b.record(ok=True, now=later + timedelta(seconds=30))
    assert b.state == "closed" and b.recent_failures == 0 and b.allow(later)


@given(st.integers(0, 2**32))
def test_a_gateway_failing_half_the_time_is_still_called(seed: int) -> None:
    """It still delivers half the messages; only a (nearly) dead gateway is cut off."""
    rng = random.Random(seed)
    b = Breaker(min_calls=10, cooldown=timedelta(seconds=30), window=20, ratio=0.9)
    opened = 0
    for _ in range(200):
        b.record(ok=rng.random() < 0.5, now=T0)
        if b.state == "open":
            opened += 1
            b.state, b.opened_at = "closed", None  # recovered: count the next opening anew
            b.outcomes.clear()
    assert opened <= 2


def test_a_dead_gateway_opens_after_min_calls() -> None:
    b = Breaker(min_calls=10, cooldown=timedelta(seconds=30))
    for n in range(10):
        assert b.state == "closed", n
        b.record(ok=False, now=T0, error="ConnectError")
    assert b.state == "open" and b.last_error == "ConnectError"


def test_ack_token_round_trip_and_forgery() -> None:
    token = acks.sign("n-1", expires_at=T0 + timedelta(days=7), secret="s")
    assert acks.verify(token, now=T0, secret="s") == "n-1"
    with pytest.raises(acks.AckTokenError, match="signature"):
        acks.verify(token, now=T0, secret="other")
    with pytest.raises(acks.AckTokenError, match="signature"):
        acks.verify(token.replace("n-1", "n-2"), now=T0, secret="s")
    with pytest.raises(acks.AckTokenError, match="expired"):
        acks.verify(token, now=T0 + timedelta(days=8), secret="s")
    with pytest.raises(acks.AckTokenError, match="malformed"):
        acks.verify("garbage", now=T0, secret="s")
