"""A circuit breaker per channel and gateway (pure: time is passed in)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass
class Breaker:
    """Opens when `ratio` of the last calls failed (at least `min_calls` seen in `window`);
    after `cooldown` lets one trial through, and closes again on its success.

    A ratio rather than a run of failures: a gateway that drops half the messages still
    delivers the other half and is worth calling; one that is down is not.
    """

    min_calls: int
    cooldown: timedelta
    window: int = 20
    ratio: float = 0.9
    state: State = "closed"
    opened_at: datetime | None = None
    trial_in_flight: bool = False
    last_error: str | None = None
    outcomes: deque[bool] = field(default_factory=deque)

    @property
    def recent_failures(self) -> int:
        """Failures among the last `window` calls."""
        return sum(not ok for ok in self.outcomes)

    def allow(self, now: datetime) -> bool:
        """Whether an attempt may go to the gateway now."""
        if self.state == "closed":
            return True
        if self.state == "open" and self.opened_at and now >= self.opened_at + self.cooldown:
            self.state = "half_open"
            self.trial_in_flight = False
        if self.state == "half_open" and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def retry_at(self, now: datetime) -> datetime:
        """When a message held back by the open breaker should try again."""
        if self.opened_at is None:
            return now
        return max(now, self.opened_at + self.cooldown)

    def record(self, *, ok: bool, now: datetime, error: str | None = None) -> None:
        """Feed the outcome of one attempt."""
        self.trial_in_flight = False
        if not ok:
            self.last_error = error
        if self.state == "half_open":
            if ok:
                self.state, self.opened_at = "closed", None
                self.outcomes.clear()
            else:
                self.opened_at = now
                self.state = "open"
            return
        self.outcomes.append(ok)
        while len(self.outcomes) > self.window:
            self.outcomes.popleft()
        calls = len(self.outcomes)
        if calls >= self.min_calls and self.recent_failures >= self.ratio * calls:
            self.state, self.opened_at = "open", now


@dataclass
class BreakerBoard:
    """All breakers of one process, keyed by (channel, gateway)."""

    min_calls: int
    cooldown: timedelta
    window: int = 20
    ratio: float = 0.9
    breakers: dict[tuple[str, str], Breaker] = field(default_factory=dict)

    def get(self, channel: str, gateway: str) -> Breaker:
        """The breaker of one channel and gateway, created closed."""
        key = (channel, gateway)
        if key not in self.breakers:
            self.breakers[key] = Breaker(self.min_calls, self.cooldown, self.window, self.ratio)
        return self.breakers[key]
