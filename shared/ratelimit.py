"""Fixed-window rate limits per key (a phone, a client address), in-process."""

from __future__ import annotations

import math

from shared.clock import Clock


class RateLimiter:
    """Counts hits per key in fixed windows; in-process, so each replica limits on its own."""

    def __init__(self, *, limit: int, window_seconds: float, clock: Clock) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}

    def hit(self, key: str) -> float | None:
        """Count one hit; None when allowed, else the seconds until the window resets."""
        now = self._clock.now().timestamp()
        window = int(now // self._window)
        start, count = self._counts.get(key, (window, 0))
        if start != window:
            count = 0
            if len(self._counts) > 100_000:
                # drop stale windows so the table cannot grow without bound
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        if count >= self._limit:
            return max(1.0, math.ceil((window + 1) * self._window - now))
        self._counts[key] = (window, count + 1)
        return None
