"""Prometheus metrics shared by every service (names follow Prometheus conventions)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
OUTBOX_OLDEST_SECONDS = Gauge(
    "holdline_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
CONSUMER_LAG = Gauge(
    "holdline_consumer_lag_messages",
    "Messages behind the end of the partition",
    ["consumer", "topic", "partition"],
)
# Business events, counted once their transaction commits. `county` is the 6-digit county code
# (bounded: a province has about a hundred); `kind` and `channel` are small enums.
DOMAIN_EVENTS = Counter(
    "holdline_domain_events_total",
    "Domain events committed, by type, county, monitoring kind and channel or department",
    ["source", "event_type", "county", "kind", "channel"],
)


def count_domain_events(events: Iterable[Any]) -> None:
    """Count committed events by type with their bounded business labels."""
    for event in events:
        payload = event.payload
        village = getattr(payload, "village_code", None) or ""
        channel = getattr(payload, "department", None) or getattr(payload, "channel", None) or ""
        DOMAIN_EVENTS.labels(
            event.source,
            event.event_type,
            village[:6],
            # monitoring kind, or the measure code for measure events (a catalogue of ~25)
            getattr(payload, "kind", None) or getattr(payload, "code", None) or "",
            channel,
        ).inc()
