"""Prometheus metrics shared by every service (names follow Prometheus conventions)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "holdline_events_consumed_total",
    "Events taken from Kafka",
    ["consumer", "event_type", "outcome"],
)
EVENT_PROCESSING_SECONDS = Histogram(
    "holdline_event_processing_seconds", "Time to process one event", ["consumer"]
)
EVENTS_DEAD_LETTERED = Counter(
    "holdline_events_dead_lettered_total", "Messages sent to a DLQ", ["consumer", "topic"]
)
EVENTS_PUBLISHED = Counter(
    "holdline_events_published_total", "Outbox rows published to Kafka", ["topic"]
)
OUTBOX_BACKLOG = Gauge("holdline_outbox_backlog", "Outbox rows not yet published", ["service"])
HTTP_REQUESTS = Counter(
    "holdline_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "holdline_http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"]
)
