"""The event envelope and the event models every service shares (architecture: event flow)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.clock import Clock

SCHEMA_VERSION = "1.0"
SUPPORTED_MAJOR = 1


class Payload(BaseModel):
    """Base of every event payload; the class name is the event type."""

    model_config = ConfigDict(extra="ignore", frozen=True)


P = TypeVar("P", bound=Payload)


class Envelope(BaseModel, Generic[P]):
    """What travels on every topic: identity, time, household key, lineage, typed payload."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    schema_version: str = SCHEMA_VERSION
    occurred_at: datetime
    household_id: str
    source: str
    correlation_id: str
    payload: P

    def to_bytes(self) -> bytes:
        """Serialise for Kafka."""
        return self.model_dump_json().encode()


class EnvelopeError(Exception):
    """A message that can never be processed as it is: it goes to the DLQ without retries."""


class MalformedEvent(EnvelopeError):
    """Not JSON, or missing or invalid envelope fields."""


class UnknownEventType(EnvelopeError):
    """An event type this code base does not know."""


class UnsupportedSchemaVersion(EnvelopeError):
    """A newer major schema version than this code base understands."""


# --- signals --------------------------------------------------------------------------


class DeclarationSubmitted(Payload):
    """A farmer's self-declaration (农户自主申报) was accepted by intake."""

    submission_id: str
    channel: str = "app"
    declarant_name: str
    declarant_id_masked: str
    village_code: str
    risk_types: list[str]
    description: str = ""
    medical_spending: float = 0
    schooling_spending: float = 0
    loss_amount: float = 0
    income_change: float = 0
    happened_on: date | None = None


# --- cases ----------------------------------------------------------------------------


class CaseOpened(Payload):
    """Risk was discovered for a household; the identification clock started."""

    case_id: str
    village_code: str
    risk_types: list[str]
    channel: str
    opened_at: datetime
    deadline: datetime
    home_visit_due: datetime | None = None
    submission_id: str | None = None


class CaseMerged(Payload):
    """A new signal joined the household's open case."""

    case_id: str
    risk_types: list[str]
    submission_id: str | None = None


# --- assistance -----------------------------------------------------------------------


class PlanCreated(Payload):
    """A household's assistance plan was created."""

    plan_id: str
    case_id: str
    village_code: str
    measures: list[str]
    case_deadline: datetime


# --- notifications --------------------------------------------------------------------


class NotificationDelivered(Payload):
    """A notification reached its channel."""

    notification_id: str
    source_event_id: str
    recipient: str
    channel: str
    attempts: int


class NotificationFailed(Payload):
    """A notification could not be delivered after its last attempt."""

    notification_id: str
    source_event_id: str
    recipient: str
    channel: str
    attempts: int
    error: str


EVENT_TYPES: dict[str, type[Payload]] = {
    cls.__name__: cls
    for cls in (
        DeclarationSubmitted,
        CaseOpened,
        CaseMerged,
        PlanCreated,
        NotificationDelivered,
        NotificationFailed,
    )
}


def new_event(
    payload: P, *, household_id: str, source: str, correlation_id: str, clock: Clock
) -> Envelope[P]:
    """Wrap a payload in a fresh envelope."""
    return Envelope[type(payload)](  # type: ignore[misc,operator]
        event_type=type(payload).__name__,
        occurred_at=clock.now(),
        household_id=household_id,
        source=source,
        correlation_id=correlation_id,
        payload=payload,
    )


def decode(raw: bytes | None) -> Envelope[Any]:
    """Parse bytes from Kafka into a typed envelope, or raise an EnvelopeError saying why not."""
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedEvent("envelope is not a JSON object")
    event_type = body.get("event_type")
    version = str(body.get("schema_version", ""))
    major, _, _ = version.partition(".")
    if not major.isdigit():
        raise MalformedEvent(f"schema_version {version!r} is not MAJOR.MINOR")
    if int(major) > SUPPORTED_MAJOR:
        raise UnsupportedSchemaVersion(
            f"schema_version {version} is newer than {SUPPORTED_MAJOR}.x"
        )
    payload_type = EVENT_TYPES.get(str(event_type))
    if payload_type is None:
        raise UnknownEventType(f"unknown event_type {event_type!r}")
    try:
        return Envelope[payload_type].model_validate(body)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise MalformedEvent(str(exc)) from exc
