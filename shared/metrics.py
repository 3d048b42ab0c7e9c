"""Prometheus metrics shared by every service (names follow Prometheus conventions)."""

from __future__ import annotations

from collections import Counter as CounterOf
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, get_args

from prometheus_client import Counter, Gauge, Histogram

from shared.auth import DEPARTMENTS
from shared.events import MonitoringKind

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
BACKGROUND_STOPPED = Gauge(
    "holdline_background_loop_stopped",
    "1 when a background loop (consumers and relay, dispatcher, scheduler) ended on an error",
    ["service", "task"],
)
HOUSEKEEPING_DELETED = Counter(
    "holdline_housekeeping_deleted_total",
    "Rows deleted by housekeeping: published outbox rows and dedup marks past their retention",
    ["service", "table"],
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

DAY = 86_400.0
IDENTIFICATION_SECONDS = Histogram(
    "holdline_identification_duration_seconds",
    "Time from a case opening to the household's identification (rules §4.9: 15 days)",
    ["kind", "county"],
    buckets=(600, 3600, DAY / 4, DAY, 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 10 * DAY, 15 * DAY,
             20 * DAY, 30 * DAY, 45 * DAY),
)  # fmt: skip
ACK_SECONDS = Histogram(
    "holdline_notification_ack_seconds",
    "Time from an urgent message's delivery to its recipient's acknowledgement",
    ["service"],
    buckets=(10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800, DAY),
)
# channel label of events that carry no channel or department of their own
DEFAULT_CHANNEL = {"CadreReportSubmitted": "cadre", "RegistryRecordReceived": "registry"}
# events each service commits, so their series exist (at zero) from start-up
EMITTED: dict[str, tuple[str, ...]] = {
    "intake": ("DeclarationSubmitted", "CadreReportSubmitted", "FeedRecordReceived",
               "RegistryRecordReceived"),
    "risk": ("CaseOpened", "CaseMerged", "CaseStepCompleted", "GreenChannelOpened",
             "HouseholdIdentified", "CaseRejected", "CaseDeadlineApproaching", "CaseOverdue",
             "RiskEliminated", "EliminationRolledBack"),
    "assistance": ("CadreRegistered", "PlanCreated", "MeasureAssigned", "CadreAssigned",
                   "VisitRecorded", "VisitOverdue", "MeasureCompleted", "IncomeUpdated"),
    "notify": ("NotificationDelivered", "NotificationFailed", "NotificationAcknowledged"),
}  # fmt: skip
NOTIFY_CHANNELS = ("webhook", "robot", "email", "sms")


def preinit_domain_events(source: str) -> None:
    """Create the zero series of the events a service commits (county and kind left empty).

    A counter series that first appears at 1 hides that increment from increase(); created at
    zero on start-up, every panel and alert sees the first event and has data before it. The
    service's housekeeping counts start at zero too.
    """
    for event_type in EMITTED.get(source, ()):
        channels: Iterable[str] = (DEFAULT_CHANNEL.get(event_type, ""),)
        kinds: Iterable[str] = ("",)
        if event_type == "DeclarationSubmitted":
            channels = ("app",)
        elif event_type == "FeedRecordReceived":
            channels = DEPARTMENTS
        elif event_type in ("NotificationDelivered", "NotificationFailed"):
            channels = NOTIFY_CHANNELS
        elif event_type == "HouseholdIdentified":
            kinds = get_args(MonitoringKind)
        for channel in channels:
            for kind in kinds:
                DOMAIN_EVENTS.labels(source, event_type, "", kind, channel)
    if source == "notify":
        ACK_SECONDS.labels(source)
    for table in ("outbox", "processed_events"):
        HOUSEKEEPING_DELETED.labels(source, table)


class ConsumerLike(Protocol):
    """What preinit_consumers reads of a consumer group (shared.service.ConsumerSpec)."""

    @property
    def name(self) -> str: ...
    @property
    def topics(self) -> Sequence[str]: ...
    @property
    def handlers(self) -> Mapping[str, Any]: ...


def preinit_consumers(consumers: Iterable[ConsumerLike], topic: Callable[[str], str]) -> None:
    """Create each consumer's dead-letter series (per topic it reads) and its processed and
    dead-lettered counts (per event type it handles) at zero.

    Without them the first poison message makes its series appear already at 1, a step that
    increase() never sees: *HoldlineDeadLettersGrowing* stayed silent and the dashboard read 0.
    `topic` turns a short topic name into the full one (ServiceSettings.topic).
    """
    for consumer in consumers:
        for short in consumer.topics:
            EVENTS_DEAD_LETTERED.labels(consumer.name, topic(short))
        for event_type in consumer.handlers:
            for outcome in ("processed", "dead_lettered"):
                EVENTS_CONSUMED.labels(consumer.name, event_type, outcome)


_DURATION_EVENTS = frozenset({"CaseOpened", "HouseholdIdentified", "NotificationAcknowledged"})
_COUNTIES_STARTED: set[str] = set()  # counties whose identification series exist already


def count_domain_events(events: Iterable[Any]) -> None:
    """Count committed events by type with their bounded business labels."""
    # summed first: a batch commits thousands of events over a handful of label sets
    counts: CounterOf[tuple[str, str, str, str, str]] = CounterOf()
    for event in events:
        payload = event.payload
        village = payload.get("village_code") or ""
        channel = (
            payload.get("department")
            or payload.get("channel")
            or DEFAULT_CHANNEL.get(event.event_type, "")
        )
        # monitoring kind, or the measure code for measure events (a catalogue of ~25)
        kind = payload.get("kind") or payload.get("code") or ""
        counts[(event.source, event.event_type, village[:6], kind, channel)] += 1
        if event.event_type in _DURATION_EVENTS:
            _observe_durations(event, kind=kind, county=village[:6])
    for labels, n in counts.items():
        DOMAIN_EVENTS.labels(*labels).inc(n)


def count_feed_rows(department: str, villages: Iterable[str | None]) -> None:
    """Count committed feed rows as intake signals of their department, by county.

    Feed rows travel many to a message (FeedRecordsReceived), so they are counted here, one per
    row, under the event type a single row has always had.
    """
    counts = CounterOf((village or "")[:6] for village in villages)
    for county, n in counts.items():
        DOMAIN_EVENTS.labels("intake", "FeedRecordReceived", county, "", department).inc(n)


def _observe_durations(event: Any, *, kind: str, county: str) -> None:
    """Durations carried by committed events, observed once (the event is recorded once)."""
    payload = event.payload
    if event.event_type == "CaseOpened":
        if county in _COUNTIES_STARTED:
            return
        _COUNTIES_STARTED.add(county)
        # the county's identification, deadline-warning and overdue series start at zero
        # now, so increase() over the dashboard's range and the alerts see their first step
        for monitoring_kind in get_args(MonitoringKind):
            IDENTIFICATION_SECONDS.labels(monitoring_kind, county)
            DOMAIN_EVENTS.labels(event.source, "HouseholdIdentified", county, monitoring_kind, "")
        for deadline_event in ("CaseDeadlineApproaching", "CaseOverdue"):  # rules §4.11, §4.12
            DOMAIN_EVENTS.labels(event.source, deadline_event, county, "", "")
    elif event.event_type == "HouseholdIdentified" and payload.opened_at is not None:
        IDENTIFICATION_SECONDS.labels(kind, county).observe(
            _seconds(payload.opened_at, event.occurred_at)
        )
    elif event.event_type == "NotificationAcknowledged" and payload.delivered_at is not None:
        ACK_SECONDS.labels(event.source).observe(
            _seconds(payload.delivered_at, payload.acknowledged_at)
        )


def _seconds(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0)
