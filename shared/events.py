"""The event envelope and the event models every service shares (architecture: event flow)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID, uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.clock import Clock

SCHEMA_VERSION = "1.4"  # 1.1: GreenChannelOpened.channel; 1.2: CaseMerged village, visit due,
# level; MonitoredHouseholdReassessed; GreenChannelOpened.submission_ids;
# 1.3: CaseStepCompleted.purpose; 1.4: head_name on CaseOpened, CaseMerged, GreenChannelOpened,
# HouseholdIdentified, MonitoredHouseholdReassessed
SUPPORTED_MAJOR = 1


class Payload(BaseModel):
    """Base of every event payload; the class name is the event type.

    No float of a payload may be infinite or NaN: JSON has no such number, so the event would
    carry `null` and fail to decode at its consumer, after its producer had committed it. The
    producer fails instead, when it builds the payload."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    def units(self) -> int:
        """How many units of work the event carries (a consumer bounds a transaction by it)."""
        return 1

    def get(self, name: str, default: Any = None) -> Any:
        """The field `name`, or `default` when this payload type has none. For code that reads
        events of many types: getattr() with a default raises and catches an AttributeError
        inside pydantic for every field a type lacks, several microseconds each."""
        return self.__dict__.get(name, default)


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


# --- facts shared by several events --------------------------------------------------

LabourCapacity = Literal["full", "partial", "none"]
RiskType = Literal[
    "illness",
    "disability",
    "schooling",
    "disaster",
    "accident",
    "business_failure",
    "unstable_employment",
    "lack_of_labour",
    "housing_unsafe",
    "water_unsafe",
    "other",
]
MonitoringKind = Literal["unstable", "marginal", "sudden"]
# a member's schooling stage (rules §1), the one vocabulary of intake's inputs and assistance's
# catalogue: secondary vocational (中职) and higher vocational (高职) are the stages of the
# Rain-and-Dew subsidy (rules §6.6); `higher` is an ordinary university
SchoolingStage = Literal[
    "preschool", "primary", "junior", "senior", "vocational", "higher_vocational", "higher"
]


class Member(Payload):
    """One household member as the registry or a cadre knows them (rules §1)."""

    person_id_hash: str
    person_id_masked: str
    name: str = ""
    age: int = Field(ge=0, le=130)
    labour_capacity: LabourCapacity = "full"
    chronic_illness: bool = False
    serious_illness: bool = False
    disability_grade: int | None = Field(None, ge=1, le=4)
    # one of SchoolingStage; a plain string, so that an event with a stage this code does not
    # know still decodes (an older event's values are all in SchoolingStage)
    schooling_stage: str | None = None
    employed: bool = False
    has_employment_record: bool = False


class Guarantees(Payload):
    """Two no-worries, three guarantees and drinking water (rules §3); None means not checked."""

    food_clothing_secure: bool | None = None
    compulsory_education_secure: bool | None = None  # no dropout aged 6-15
    medical_insured: bool | None = None
    medical_affordable: bool | None = None
    house_rating: Literal["A", "B", "C", "D"] | None = None
    drinking_water_safe: bool | None = None


class Reason(Payload):
    """Why a rule fired: which rule, the value seen, the threshold it was held against."""

    rule: str  # e.g. "rules §2 monitoring threshold"
    detail: str
    value: float | str | None = None
    threshold: float | str | None = None


# --- signals (holdline.signals.v1) ---------------------------------------------------


class DeclarationSubmitted(Payload):
    """A farmer's self-declaration (农户自主申报) was accepted by intake."""

    submission_id: str
    channel: str = "app"
    declarant_name: str
    declarant_id_masked: str
    declarant_id_hash: str = ""
    village_code: str
    risk_types: list[str]
    description: str = ""
    medical_spending: float = 0
    schooling_spending: float = 0
    loss_amount: float = 0
    income_change: float = 0
    happened_on: date | None = None


class CadreReportSubmitted(Payload):
    """A grassroots cadre's investigation report (基层干部排查)."""

    submission_id: str
    cadre_id: str
    village_code: str
    risk_types: list[str] = []
    per_capita_income: float | None = None
    previous_year_income: float | None = None
    annual_income: float | None = None
    medical_spending: float = 0
    schooling_spending: float = 0
    loss_amount: float = 0
    members: list[Member] = []
    guarantees: Guarantees = Guarantees()
    basic_living_seriously_difficult: bool = False
    facts_verified: bool = False
    description: str = ""


class FeedRecordReceived(Payload):
    """One valid row of a department data-comparison feed (部门筛查预警, rules §8)."""

    batch_id: str
    department: str  # medical_insurance, health, education, housing, water, ...
    line: int
    person_id_hash: str
    person_id_masked: str
    village_code: str | None = None
    recorded_on: date
    facts: dict[str, Any]  # the department's validated row, IDs removed


class FeedRecord(BaseModel):
    """One valid row of a department feed, as carried inside a FeedRecordsReceived slice."""

    line: int
    household_id: str
    person_id_hash: str
    person_id_masked: str
    village_code: str | None = None
    recorded_on: date
    facts: dict[str, Any]


class FeedRecordsReceived(Payload):
    """A slice of one feed batch's valid rows (rules §8), one unit of work for the consumer.

    A province's monthly feed has millions of rows; carrying a few hundred per message keeps the
    outbox, the broker and the consumers' transactions at one step per slice instead of per row.
    Intake puts all rows of a household in the same slice stream (`shard`), so a household's
    rows of one batch stay in order.
    """

    batch_id: str
    department: str
    shard: int = 0
    records: list[FeedRecord]

    def units(self) -> int:
        """Each record is evaluated on its own."""
        return len(self.records)


class RegistryRecordReceived(Payload):
    """A household of the baseline registry, upserted (rules §1)."""

    submission_id: str
    village_code: str
    baseline_status: Literal["formerly_poor", "ordinary"]
    per_capita_income: float
    previous_year_income: float | None = None
    members: list[Member]


# --- cases (holdline.cases.v1) -------------------------------------------------------


# the `channel` of a signal, case or alert that came from a department data-comparison feed
# (rules §4 channel 3, §8); the others are the declaring app's channel, "cadre", ...
FEED_CHANNEL = "department"


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
    reasons: list[Reason] = []
    # the household head's name as risk knows it, so alerts can name the family (rules §4.13:
    # names may be shown; schema 1.4; None when not known yet or from an older producer)
    head_name: str | None = None


class CaseMerged(Payload):
    """A new signal joined the household's open case (rules §4.8)."""

    case_id: str
    risk_types: list[str]
    submission_id: str | None = None
    # the household's village (None from an older producer)
    village_code: str | None = None
    # rules §4.10: set only when this merge (a self-declaration) started the home-visit clock;
    # `level` "village" then asks notify to tell the village cadre, None asks nobody
    home_visit_due: datetime | None = None
    level: Literal["village"] | None = None
    head_name: str | None = None  # schema 1.4, as on CaseOpened


class CaseStepCompleted(Payload):
    """A step of a case's procedure was completed: an identification (rules §4) or a risk
    elimination (rules §7.2)."""

    case_id: str
    village_code: str
    step: str
    actor: str
    role: str
    note: str = ""
    next_steps: list[str] = []
    # what the case decides, "identification" (rules §4) or "elimination" (rules §7), so the
    # official it waits for knows which decision it is (schema 1.3; None from an older producer)
    purpose: str | None = None


class GreenChannelOpened(Payload):
    """Assist first, identify later (先帮扶后认定, rules §5): provisional help requested now."""

    case_id: str
    village_code: str
    risk_types: list[str]
    provisional_measures: list[str]
    paperwork_due: datetime
    reasons: list[Reason]
    # the channel of the signal that opened it (schema 1.1; None from a 1.0 producer)
    channel: str | None = None
    # the submissions linked to the case when its green channel opened with it (schema 1.2):
    # [] for a department record's case, so intake has nothing to look up; None when not told
    # (a green channel opened on a later signal, or an older producer): intake finds them by case
    submission_ids: list[str] | None = None
    head_name: str | None = None  # schema 1.4, as on CaseOpened


class HouseholdIdentified(Payload):
    """The household became a monitoring object (监测对象) of one kind (rules §1, §4)."""

    case_id: str
    village_code: str
    kind: MonitoringKind
    risk_types: list[str]
    reasons: list[Reason]
    members: list[Member] = []
    per_capita_income: float | None = None
    green_channel: bool = False
    opened_at: datetime | None = None  # when the case opened: time to identification
    head_name: str | None = None  # schema 1.4, as on CaseOpened


class MonitoredHouseholdReassessed(Payload):
    """A new signal about a monitoring object was evaluated (rules §4 channel 4, key-object
    tracking). It joins no identification case: the household is monitored already.

    `level` says who must act: "green_channel" when rules §5.1 is met (provisional help now,
    `provisional_measures`; everybody concerned is alerted at once), "new_risk" when the signal
    brought a risk type the household was not identified for (its plan fills the gap, rules
    §6.2, and its responsible cadre is told), None when nothing changed (a declaration or a
    cadre's report still gets this event, so its submitter learns the outcome)."""

    village_code: str
    risk_types: list[str]  # of this evaluation
    new_risk_types: list[str]  # among them, those not in the household's identified types
    channel: str
    level: Literal["green_channel", "new_risk"] | None = None
    provisional_measures: list[str] = []
    reasons: list[Reason] = []
    submission_id: str | None = None
    head_name: str | None = None  # schema 1.4, as on CaseOpened


class CaseRejected(Payload):
    """Not a monitoring object; any provisional green-channel enrolment is rolled back."""

    case_id: str
    village_code: str
    step: str
    reason: str
    actor: str
    green_channel_rolled_back: bool = False


class CaseDeadlineApproaching(Payload):
    """A case has used its warning share of the time (rules §4); goes to the township."""

    case_id: str
    village_code: str
    deadline: datetime
    level: Literal["township", "county"] = "township"
    deadline_kind: str = "identification"  # identification | home_visit | green_channel_paperwork


class CaseOverdue(Payload):
    """A case passed its deadline: an orange warning escalated to the county (rules §4)."""

    case_id: str
    village_code: str
    deadline: datetime
    level: Literal["township", "county"] = "county"
    deadline_kind: str = "identification"  # identification | home_visit | green_channel_paperwork


class RiskEliminated(Payload):
    """The monitoring object's risk was marked eliminated (风险消除, rules §7)."""

    case_id: str
    village_code: str
    reasons: list[Reason] = []


class EliminationRolledBack(Payload):
    """A risk elimination was taken back (风险消除回退, rules §7)."""

    case_id: str
    village_code: str
    reason: str


# --- assistance (holdline.assistance.v1) ---------------------------------------------


class CadreRegistered(Payload):
    """A cadre joined (or changed in) the roster; notify keeps a projection of it."""

    cadre_id: str
    name: str
    rank: str  # county_leader, section, general, township, village
    township_code: str
    village_codes: list[str] = []
    contacts: dict[str, str] = {}  # channel -> address (webhook URL, phone, e-mail)
    active: bool = True


class PlanCreated(Payload):
    """A household's assistance plan was created."""

    plan_id: str
    case_id: str
    village_code: str
    measures: list[str]
    case_deadline: datetime | None = None
    provisional: bool = False


class MeasureAssigned(Payload):
    """One measure of a plan, for the household or one member, with why it was chosen."""

    measure_id: str
    plan_id: str
    code: str
    category: str
    person_id_hash: str | None = None
    reason: str


class CadreAssigned(Payload):
    """A responsible cadre (帮扶责任人) was assigned to the household (rules §6)."""

    cadre_id: str
    case_id: str
    village_code: str
    previous_cadre_id: str | None = None


class VisitRecorded(Payload):
    """A responsible cadre visited the household."""

    visit_id: str
    cadre_id: str
    visited_on: date
    per_capita_income: float | None = None
    guarantees: Guarantees = Guarantees()
    new_risk_types: list[str] = []
    note: str = ""


class VisitOverdue(Payload):
    """A monthly visit was missed (rules §6): to the cadre, then to the township."""

    cadre_id: str
    village_code: str
    due_on: date
    level: Literal["cadre", "township"] = "cadre"


class MeasureCompleted(Payload):
    """A measure was implemented."""

    measure_id: str
    plan_id: str
    code: str
    completed_on: date


class IncomeUpdated(Payload):
    """A household's per-capita income changed (from a visit or a feed)."""

    per_capita_income: float
    recorded_on: date
    source: str


# --- notifications (holdline.notifications.v1) ---------------------------------------


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


class NotificationAcknowledged(Payload):
    """The recipient acknowledged an urgent notification."""

    notification_id: str
    source_event_id: str
    recipient: str
    acknowledged_at: datetime
    delivered_at: datetime | None = None  # of the acknowledged message: time to acknowledge


EVENT_TYPES: dict[str, type[Payload]] = {
    cls.__name__: cls
    for cls in (
        DeclarationSubmitted,
        CadreReportSubmitted,
        FeedRecordReceived,
        FeedRecordsReceived,
        RegistryRecordReceived,
        CaseOpened,
        CaseMerged,
        CaseStepCompleted,
        GreenChannelOpened,
        HouseholdIdentified,
        MonitoredHouseholdReassessed,
        CaseRejected,
        CaseDeadlineApproaching,
        CaseOverdue,
        RiskEliminated,
        EliminationRolledBack,
        CadreRegistered,
        PlanCreated,
        MeasureAssigned,
        CadreAssigned,
        VisitRecorded,
        VisitOverdue,
        MeasureCompleted,
        IncomeUpdated,
        NotificationDelivered,
        NotificationFailed,
        NotificationAcknowledged,
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


def known_type(raw: bytes | None) -> str | None:
    """The event type of a well-formed envelope of a known type and a supported version,
    without validating its payload; None when a full decode() is needed to say what is wrong.
    Lets a consumer pass over the many events it does not handle for the price of a JSON parse."""
    try:
        body = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    event_type, version = body.get("event_type"), body.get("schema_version")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        return None
    major, _, _ = str(version).partition(".")
    return event_type if major.isdigit() and int(major) <= SUPPORTED_MAJOR else None


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
