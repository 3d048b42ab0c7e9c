"""Rate limits of the mobile app (per phone and per client address): the platform's limiter."""

from __future__ import annotations

from shared.ratelimit import RateLimiter

__all__ = ["RateLimiter"]
