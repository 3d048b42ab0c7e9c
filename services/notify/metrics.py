"""Prometheus metrics of notify delivery (served on /metrics with the shared ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ATTEMPTS = Counter("holdline_notify_attempts_total", "Delivery attempts", ["channel", "outcome"])
DEAD_LETTERED = Counter(
    "holdline_notify_dead_lettered_total",
    "Notifications failed after the last attempt",
    ["channel"],
)
# level: the one told of an alert nobody received (township, county, office), "none" when there
# is nobody above (escalation.report_undelivered)
UNDELIVERED_REPORTED = Counter(
    "holdline_notify_undelivered_reported_total",
    "Non-urgent alerts that could not be delivered, reported to the level above",
    ["event_type", "level"],
)
HELD_BY_BREAKER = Counter(
    "holdline_notify_held_by_breaker_total", "Attempts postponed by an open breaker", ["channel"]
)
NO_RECIPIENT = Counter(
    "holdline_notify_no_recipient_total",
    "Routed events with nobody to notify (routes without the office fallback, no cadre yet)",
    ["event_type"],
)
BREAKER_OPEN = Gauge(
    "holdline_notify_breaker_open",
    "1 while the breaker of a gateway is open",
    ["channel", "gateway"],
)
# lane: "feed" for alerts about cases a department feed opened (sent after the others of
# their priority), "direct" for the rest (declarations, cadre reports, deadlines, ...)
DUE_WAITING = Gauge(
    "holdline_notify_due_waiting",
    "Notifications due and not yet sent (pending), by priority and lane",
    ["priority", "lane"],
)
DUE_OLDEST = Gauge(
    "holdline_notify_due_oldest_seconds",
    "How long the oldest due, unsent notification has been due, by priority and lane (0: none)",
    ["priority", "lane"],
)
