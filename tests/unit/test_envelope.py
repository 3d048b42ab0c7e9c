"""The envelope: round trip, and the decisions that send a message to the DLQ."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.clock import FrozenClock
from shared.events import (
    CaseOpened,
    MalformedEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode,
    known_type,
    new_event,
)

CLOCK = FrozenClock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))


def _case_opened() -> bytes:
    payload = CaseOpened(
        case_id="c-1",
        village_code="530102001001",
        risk_types=["illness"],
        channel="app",
        opened_at=CLOCK.now(),
        deadline=CLOCK.now(),
    )
    event = new_event(
        payload, household_id="hh-1", source="risk", correlation_id="s-1", clock=CLOCK
    )
    return event.to_bytes()


def test_round_trip_keeps_every_field_and_the_payload_type() -> None:
    raw = _case_opened()
    event = decode(raw)
    assert isinstance(event.payload, CaseOpened)
    assert event.event_type == "CaseOpened"
    assert event.household_id == "hh-1"
    assert event.correlation_id == "s-1"
    assert event.occurred_at == CLOCK.now()
    assert event.to_bytes() == raw


def test_a_payload_gives_its_fields_by_name_and_the_default_for_fields_its_type_lacks() -> None:
    payload = decode(_case_opened()).payload
    assert payload.get("village_code") == "530102001001"
    assert payload.get("home_visit_due") is None  # a field of the type, left unset
    assert payload.get("home_visit_due", "x") is None  # set (to None) is not missing
    assert payload.get("cadre_id") is None  # not a field of CaseOpened
    assert payload.get("measures", ()) == ()


def test_unknown_event_type_is_refused() -> None:
    body = json.loads(_case_opened()) | {"event_type": "CaseTeleported"}
    with pytest.raises(UnknownEventType):
        decode(json.dumps(body).encode())


@pytest.mark.parametrize("version", ["2.0", "10.3"])
def test_newer_major_version_is_refused(version: str) -> None:
    body = json.loads(_case_opened()) | {"schema_version": version}
    with pytest.raises(UnsupportedSchemaVersion):
        decode(json.dumps(body).encode())


def test_newer_minor_version_is_accepted() -> None:
    body = json.loads(_case_opened()) | {"schema_version": "1.7"}
    body["payload"]["added_in_1_7"] = "ignored by older readers"
    assert decode(json.dumps(body).encode()).schema_version == "1.7"


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'{"event_type": "CaseOpened", "schema_version": "1.0"}', None],
)
def test_malformed_messages_are_refused(raw: bytes | None) -> None:
    with pytest.raises(MalformedEvent):
        decode(raw)


def _edited(**changes: object) -> bytes:
    body = json.loads(_case_opened())
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_case_opened(), "CaseOpened"),
        # payload problems are not looked at: a consumer that handles the type decodes fully
        (_edited(payload={"case_id": 5}), "CaseOpened"),
        (_edited(schema_version="1.7"), "CaseOpened"),
        # anything decode() would refuse for the envelope itself needs the full decode
        (_edited(event_type="NoSuchEvent"), None),
        (_edited(schema_version="99.0"), None),
        (_edited(schema_version="x"), None),
        (b"[1, 2]", None),
        (b"not json", None),
        (None, None),
    ],
)
def test_known_type_names_only_envelopes_decode_would_not_refuse_for_their_frame(
    raw: bytes | None, expected: str | None
) -> None:
    assert known_type(raw) == expected
