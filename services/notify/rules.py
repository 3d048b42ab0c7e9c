"""Delivery timing as pure functions (no I/O): backoff, quiet hours, digests."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta, tzinfo


def next_attempt_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter after failed attempt number `attempt` (1-based)."""
    return timedelta(seconds=rng.uniform(0, min(cap, base * 2 ** (attempt - 1))))


def is_due(next_attempt_at: datetime, now: datetime) -> bool:
    """A pending notification is due when its next attempt time has come."""
    return next_attempt_at <= now


def in_quiet_hours(now: datetime, *, zone: tzinfo, start: int, end: int) -> bool:
    """Whether local time lies in [start, end) hours (wrapping midnight); start == end is off."""
    if start == end:
        return False
    hour = now.astimezone(zone).hour
    return start <= hour or hour < end if start > end else start <= hour < end


def quiet_release(now: datetime, *, priority: str, zone: tzinfo, start: int, end: int) -> datetime:
    """When a message may go: urgent ones now; the others wait for the end of quiet hours."""
    if priority == "urgent" or not in_quiet_hours(now, zone=zone, start=start, end=end):
        return now
    local = now.astimezone(zone)
    release = datetime.combine(local.date(), time(end), tzinfo=zone)
    if release <= local:
        release += timedelta(days=1)
    return release.astimezone(now.tzinfo)


def digest_ready(
    oldest: datetime, count: int, *, now: datetime, window: timedelta, max_items: int
) -> bool:
    """Held low-priority messages go out once the oldest has waited `window` or enough piled up."""
    return count >= max_items or oldest + window <= now


def attempt_limit(attempts: int, limit: int | None, default: int) -> bool:
    """Whether the attempt just made was the last one allowed (then the message is dead)."""
    return attempts >= (limit if limit is not None else default)
