"""The envelope: round trip, and the decisions that send a message to the DLQ."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.clock import FrozenClock
from shared.events import (
    SCHEMA_VERSION,
    CadreReportSubmitted,
    CaseMerged,
    CaseOpened,
    CaseStepCompleted,
    GreenChannelOpened,
    HouseholdIdentified,
    IncomeUpdated,
    MalformedEvent,
    MonitoredHouseholdReassessed,
    Reason,
    UnknownEventType,
    UnsupportedSchemaVersion,
    VisitRecorded,
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


def test_a_completed_step_names_its_case_purpose_and_one_from_before_1_3_still_decodes() -> None:
    step = CaseStepCompleted(
        case_id="c-1", village_code="530102001001", step="complete_village_appraisal",
        actor="v1", role="village", next_steps=["approve_township_review"],
        purpose="elimination",
    )  # fmt: skip
    event = new_event(step, household_id="hh-1", source="risk", correlation_id="c-1", clock=CLOCK)
    assert event.schema_version == SCHEMA_VERSION
    assert decode(event.to_bytes()).payload.get("purpose") == "elimination"
    # a 1.2 producer's event has no purpose: it decodes, and says nothing of the decision
    body = json.loads(event.to_bytes()) | {"schema_version": "1.2"}
    del body["payload"]["purpose"]
    older = decode(json.dumps(body).encode())
    assert isinstance(older.payload, CaseStepCompleted)
    assert older.payload.purpose is None and older.payload.next_steps == ["approve_township_review"]


NAMED = [
    CaseOpened(
        case_id="c-1", village_code="530102001001", risk_types=["illness"], channel="app",
        opened_at=CLOCK.now(), deadline=CLOCK.now(), head_name="张三",
    ),
    CaseMerged(case_id="c-1", risk_types=["illness"], head_name="张三"),
    GreenChannelOpened(
        case_id="c-1", village_code="530102001001", risk_types=["illness"],
        provisional_measures=["medical_aid"], paperwork_due=CLOCK.now(), reasons=[],
        head_name="张三",
    ),
    HouseholdIdentified(
        case_id="c-1", village_code="530102001001", kind="marginal", risk_types=["illness"],
        reasons=[], head_name="张三",
    ),
    MonitoredHouseholdReassessed(
        village_code="530102001001", risk_types=["illness"], new_risk_types=[], channel="app",
        head_name="张三",
    ),
]  # fmt: skip


@pytest.mark.parametrize("payload", NAMED, ids=lambda p: type(p).__name__)
def test_the_events_that_open_or_change_a_case_name_its_head_and_older_ones_still_decode(
    payload: Any,
) -> None:
    """Schema 1.4: the household head's name travels with the events notify alerts on; a 1.3
    producer's event has none and decodes with head_name None."""
    event = new_event(payload, household_id="hh-1", source="risk", correlation_id="c", clock=CLOCK)
    assert event.schema_version == "1.4"
    assert decode(event.to_bytes()).payload.head_name == "张三"
    body = json.loads(event.to_bytes()) | {"schema_version": "1.3"}
    del body["payload"]["head_name"]
    older = decode(json.dumps(body).encode())
    assert type(older.payload) is type(payload) and older.payload.head_name is None


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


NOT_NUMBERS = [float("inf"), float("-inf"), float("nan")]


@pytest.mark.parametrize("value", NOT_NUMBERS)
@pytest.mark.parametrize(
    "build",
    [
        lambda v: IncomeUpdated(per_capita_income=v, recorded_on=date(2026, 3, 1), source="visit"),
        lambda v: VisitRecorded(visit_id="v", cadre_id="c", visited_on=date(2026, 3, 1),
                                per_capita_income=v),
        lambda v: HouseholdIdentified(case_id="c", village_code="530102001001", kind="marginal",
                                      risk_types=[], reasons=[], per_capita_income=v),
        lambda v: CadreReportSubmitted(submission_id="s", cadre_id="c",
                                       village_code="530102001001", medical_spending=v),
        lambda v: Reason(rule="rules §2.1", detail="income", value=v),
    ],
    ids=["IncomeUpdated", "VisitRecorded", "HouseholdIdentified", "CadreReportSubmitted", "Reason"],
)  # fmt: skip
def test_no_payload_can_be_built_with_an_infinite_or_nan_amount(build: Any, value: float) -> None:
    """JSON has no such number: the event would go out with null and fail at its consumer,
    after the producer committed it. It fails where it is built instead."""
    with pytest.raises(ValidationError, match="finite"):
        build(value)


def test_an_event_whose_amount_is_not_a_finite_number_is_malformed() -> None:
    event = new_event(
        IncomeUpdated(per_capita_income=7100, recorded_on=date(2026, 3, 1), source="visit"),
        household_id="hh-1", source="assistance", correlation_id="v-1", clock=CLOCK,
    )  # fmt: skip
    raw = event.to_bytes().replace(b"7100.0", b"Infinity")
    assert b"Infinity" in raw
    with pytest.raises(MalformedEvent, match="finite"):
        decode(raw)
