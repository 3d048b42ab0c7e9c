"""Business metrics: durations from committed events, zero series at start-up, DLQ names."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from shared import metrics
from shared.clock import FrozenClock
from shared.dlq import topic_names
from shared.events import (
    CaseOpened,
    HouseholdIdentified,
    NotificationAcknowledged,
    Payload,
    new_event,
)
from shared.settings import ServiceSettings

NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
COUNTY = "530199"  # a county no other test uses, so the series start empty


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def commit(payload: Payload, source: str = "risk") -> None:
    """What UnitOfWork does after a commit."""
    event = new_event(
        payload, household_id="hh-1", source=source, correlation_id="c", clock=FrozenClock(NOW)
    )
    metrics.count_domain_events([event])


def identified(opened_at: datetime | None, kind: str = "sudden") -> HouseholdIdentified:
    return HouseholdIdentified(
        case_id="c1", village_code=COUNTY + "001001", kind=kind,  # type: ignore[arg-type]
        risk_types=["illness"], reasons=[], opened_at=opened_at,
    )  # fmt: skip


def test_rules_4_9_identification_time_from_opening_to_identification() -> None:
    name = "holdline_identification_duration_seconds"
    before = sample(f"{name}_count", kind="sudden", county=COUNTY) or 0
    commit(identified(NOW - timedelta(days=3)))
    assert sample(f"{name}_count", kind="sudden", county=COUNTY) == before + 1
    assert sample(f"{name}_bucket", kind="sudden", county=COUNTY, le="172800.0") == 0
    assert sample(f"{name}_bucket", kind="sudden", county=COUNTY, le="259200.0") == before + 1
    commit(identified(None))  # an event from before the field existed: nothing to observe
    assert sample(f"{name}_count", kind="sudden", county=COUNTY) == before + 1


def test_case_opening_creates_the_county_identification_series_at_zero() -> None:
    county = "530198"
    assert sample("holdline_identification_duration_seconds_count", kind="marginal",
                  county=county) is None  # fmt: skip
    commit(
        CaseOpened(
            case_id="c2", village_code=county + "001001", risk_types=["illness"], channel="app",
            opened_at=NOW, deadline=NOW + timedelta(days=15),
        )
    )  # fmt: skip
    for kind in ("unstable", "marginal", "sudden"):
        assert sample("holdline_identification_duration_seconds_count", kind=kind,
                      county=county) == 0  # fmt: skip
        labels = {"source": "risk", "event_type": "HouseholdIdentified", "county": county,
                  "kind": kind, "channel": ""}  # fmt: skip
        assert sample("holdline_domain_events_total", **labels) == 0


def test_acknowledgement_time_from_delivery() -> None:
    before = sample("holdline_notification_ack_seconds_sum", service="notify") or 0
    commit(
        NotificationAcknowledged(
            notification_id="n1", source_event_id="e1", recipient="cadre-1",
            acknowledged_at=NOW, delivered_at=NOW - timedelta(minutes=7),
        ),
        source="notify",
    )  # fmt: skip
    assert sample("holdline_notification_ack_seconds_sum", service="notify") == before + 420


@pytest.mark.parametrize(
    ("source", "event_type", "channel", "kind"),
    [
        ("intake", "DeclarationSubmitted", "app", ""),
        ("intake", "FeedRecordReceived", "medical_insurance", ""),
        ("intake", "CadreReportSubmitted", "cadre", ""),
        ("risk", "CaseOverdue", "", ""),
        ("risk", "GreenChannelOpened", "", ""),
        ("risk", "HouseholdIdentified", "", "unstable"),
        ("assistance", "MeasureAssigned", "", ""),
        ("notify", "NotificationFailed", "sms", ""),
    ],
)
def test_each_service_starts_its_event_series_at_zero(
    source: str, event_type: str, channel: str, kind: str
) -> None:
    metrics.preinit_domain_events(source)
    labels = {"source": source, "event_type": event_type, "county": "", "kind": kind,
              "channel": channel}  # fmt: skip
    assert sample("holdline_domain_events_total", **labels) is not None


def test_a_service_does_not_start_the_series_of_another() -> None:
    metrics.preinit_domain_events("risk")
    labels = {"source": "risk", "event_type": "PlanCreated", "county": "", "kind": "",
              "channel": ""}  # fmt: skip
    assert sample("holdline_domain_events_total", **labels) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("holdline.signals.v1", ("holdline.signals.v1", "holdline.signals.v1.dlq")),
        ("holdline.signals.v1.dlq", ("holdline.signals.v1", "holdline.signals.v1.dlq")),
        ("signals", ("holdline.signals.v1", "holdline.signals.v1.dlq")),
        ("cases.dlq", ("holdline.cases.v1", "holdline.cases.v1.dlq")),
    ],
)
def test_dlq_topic_names(given: str, expected: tuple[str, str]) -> None:
    assert topic_names(given, ServiceSettings(topic_prefix="holdline.")) == expected


async def test_a_request_does_not_look_for_opentelemetry_providers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # metrics go out as Prometheus; a FastAPI that speaks OpenTelemetry must not look up its
    # global providers on every request
    import httpx

    trace = pytest.importorskip("opentelemetry.trace")  # a FastAPI without it looks up nothing
    from services.intake.app import create_app
    from services.intake.config import IntakeSettings

    looked = 0
    original = trace.get_tracer_provider

    def counted() -> object:
        nonlocal looked
        looked += 1
        return original()

    monkeypatch.setattr(trace, "get_tracer_provider", counted)
    app = create_app(IntakeSettings(database_url="sqlite+aiosqlite:///:memory:"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        for _ in range(3):
            assert (await http.get("/healthz")).status_code == 200
    assert looked == 0


def test_each_consumer_starts_its_dead_letter_series_at_zero() -> None:
    # a series that first appears at 1 hides the first dead letter from increase()
    from services.risk.app import create_app
    from services.risk.config import RiskSettings

    settings = RiskSettings(database_url="sqlite+aiosqlite:///:memory:", topic_prefix="t0.")
    create_app(settings)
    for consumer, topic in (("risk", "t0.signals.v1"), ("risk-feeds", "t0.signals.v1"),
                            ("risk-assistance", "t0.assistance.v1")):  # fmt: skip
        assert sample("holdline_events_dead_lettered_total", consumer=consumer, topic=topic) == 0
    # this count has no topic label: other tests of the run may have moved it, but it exists
    counted = {"consumer": "risk-feeds", "event_type": "FeedRecordsReceived"}
    for outcome in ("processed", "dead_lettered"):
        assert sample("holdline_events_consumed_total", **counted, outcome=outcome) is not None


def test_a_county_first_case_starts_its_deadline_series_at_zero() -> None:
    # rules §4.11, §4.12: the county's first overdue case is a step the alert sees
    county = "530197"
    commit(
        CaseOpened(
            case_id="c3", village_code=county + "001001", risk_types=["illness"], channel="app",
            opened_at=NOW, deadline=NOW + timedelta(days=15),
        )
    )  # fmt: skip
    for event_type in ("CaseDeadlineApproaching", "CaseOverdue"):
        labels = {"source": "risk", "event_type": event_type, "county": county, "kind": "",
                  "channel": ""}  # fmt: skip
        assert sample("holdline_domain_events_total", **labels) == 0


def test_each_service_starts_its_housekeeping_counts_at_zero() -> None:
    metrics.preinit_domain_events("assistance")
    for table in ("outbox", "processed_events"):
        assert sample("holdline_housekeeping_deleted_total", service="assistance",
                      table=table) == 0  # fmt: skip


@pytest.mark.parametrize("service", ["intake", "risk", "assistance", "notify"])
def test_every_service_starts_its_consumers_dead_letter_series_at_zero(service: str) -> None:
    """create_service_app, shared by the four, creates each consumer's dead-letter series for
    every topic it reads at 0, so the first poison message is a step the alert sees."""
    app_module = importlib.import_module(f"services.{service}.app")
    config = importlib.import_module(f"services.{service}.config")
    settings_type = next(
        v for k, v in vars(config).items() if k.endswith("Settings") and k != "ServiceSettings"
    )
    settings = settings_type(topic_prefix=f"holdline.zero-{service}.")
    runtime = app_module.create_app(settings).state.runtime
    assert runtime.consumers
    for consumer in runtime.consumers:
        for short in consumer.topics:
            labels = {"consumer": consumer.name, "topic": settings.topic(short)}
            assert sample("holdline_events_dead_lettered_total", **labels) == 0.0, labels
