"""Risk request and response models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.risk.workflow import Action, Purpose, Stage
from shared.amounts import Amount
from shared.events import Reason
from shared.identity import village_problem
from shared.inputs import CleanInput


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


def _village(value: str) -> str:
    problem = village_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# rules §9.4: a village's 12-digit code, township and village parts not 000
VillageCode = Annotated[str, AfterValidator(_village)]

# the values of cases.status (services/risk/models.py)
CaseStatus = Literal["open", "identified", "rejected", "eliminated"]
# the ledger's status filter: "open" (an open case, whatever the household's own status), or
# one of the values of households.status
LedgerStatus = Literal["open", "registered", "monitoring", "eliminated", "no_labour_support"]
# the orders of GET /v1/cases: newest or oldest opened first, or the nearest identification
# deadline first (the most urgent, rules §4.9)
CaseOrder = Literal["newest", "oldest", "deadline"]
MAX_OFFSET = 100_000_000  # a bound the database's 64-bit offset holds with room to spare


class CaseQuery(BaseModel):
    """The filters and paging of GET /v1/cases. Any other query parameter is refused (422
    naming it), so a misspelt filter is not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    household_id: str | None = None
    status: CaseStatus | None = None
    stage: Stage | None = None
    purpose: Purpose | None = None
    green_channel: bool | None = None
    overdue: bool | None = Field(
        None, description="open identification case past its deadline (rules §4.12)"
    )
    home_visit_overdue: bool | None = Field(
        None, description="open, home visit due and passed, nobody visited (rules §4.10)"
    )
    paperwork_overdue: bool | None = Field(
        None, description="open, green-channel paperwork past due (rules §5.3)"
    )
    unplaced: bool | None = Field(
        None, description="no village yet: held by its county until assign_village (rules §9.4)"
    )
    order: CaseOrder = "newest"
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="cases to skip; not with cursor")
    cursor: str | None = Field(
        None, max_length=200, description="where the previous page ended: its Link rel=next"
    )


class CaseRead(BaseModel):
    """A case as listed: what an official needs to decide what to do next."""

    case_id: str
    household_id: str
    village_code: str
    status: str
    channel: str
    risk_types: list[str]
    opened_at: datetime
    deadline: datetime
    home_visit_due: datetime | None
    signals: int
    stage: str = "risk_discovered"
    purpose: str = "identification"
    kind: str | None = None
    green_channel: bool = False
    home_visited_at: datetime | None = None  # rules §4.10
    notice_posted_at: datetime | None = None  # rules §4.4
    notice_ends_at: datetime | None = None
    warning_at: datetime | None = None  # rules §4.11: when the township is (or was) warned
    paperwork_due: datetime | None = None  # rules §5.3
    closed_at: datetime | None = None
    # what is late now (rules §4.10, §4.12, §5.3), as the filters of the same names
    overdue: bool = False
    home_visit_overdue: bool = False
    paperwork_overdue: bool = False
    # the deadline alerts already sent (warning, overdue, home_visit, paperwork) and when
    alerts: dict[str, datetime] = {}


class HistoryRead(BaseModel):
    """One recorded transition: who, when, why."""

    at: datetime
    actor: str
    role: str
    action: str
    from_stage: str | None
    to_stage: str
    note: str


class CaseDetail(CaseRead):
    """A case with its reasons, flags, workflow state and history (rules §4)."""

    reasons: list[Reason]
    flags: list[Reason]
    data_compared: bool
    signed_form: bool
    objections: int = Field(
        0, description="objections to the public notice recorded (record_objection, rules §4.4)"
    )
    provisional_measures: list[str]
    rejection_reason: str | None
    next_actions: list[str]
    history: list[HistoryRead]


class ActionCreate(CleanInput):
    """A workflow action (rules §4.2-§4.7)."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    note: str = Field("", max_length=2000)
    # required for reject (rules §4.7) and record_objection (what the objection is, §4.4)
    reason: str = Field("", max_length=2000)
    signed_form: bool = False  # rules §4.2, for complete_home_verification
    per_capita_income: Amount | None = Field(None, description="人均纯收入 (yuan/year)")
    annual_income: Amount | None = Field(None, description="家庭年收入 (yuan)")
    village_code: VillageCode | None = Field(
        None, description="assign_village: the village of the county the case moves to"
    )


class RollbackCreate(CleanInput):
    """Take a risk elimination back (rules §7.4)."""

    model_config = ConfigDict(extra="forbid")

    reason: NonBlank = Field(min_length=1, max_length=2000)


class LedgerRow(BaseModel):
    """One household of the monitoring ledger (台账)."""

    household_id: str
    village_code: str
    head_name: str
    status: str
    kind: str | None
    risk_types: list[str]
    per_capita_income: float | None
    identified_at: datetime | None
    case_id: str | None
    case_stage: str | None
    deadline: datetime | None
    green_channel: bool


class LedgerPage(BaseModel):
    """A page of the ledger."""

    total: int
    page: int
    page_size: int
    items: list[LedgerRow]


class RegionCount(BaseModel):
    """Counts for one region prefix."""

    region: str
    by_status: dict[str, int]
    by_kind: dict[str, int]
    open_cases: int


class HouseholdRead(BaseModel):
    """A household of the ledger with its full signal history."""

    household_id: str
    village_code: str
    baseline_status: str | None
    status: str
    kind: str | None
    risk_types: list[str]
    new_risk_types: list[str]
    new_risks_since: date | None = Field(
        None, description="the day the latest new risk appeared; a visit from then resolves them"
    )
    last_visit_on: date | None = Field(None, description="the day of the latest visit recorded")
    last_visit_clear: bool = Field(
        False, description="whether that visit found no risk and the guarantees secured"
    )
    per_capita_income: float | None
    income_above_since: date | None
    measures_completed: int
    members: int
    signals: list[dict[str, Any]]


class ThresholdRead(BaseModel):
    """One configured monitoring threshold (rules §2)."""

    region_prefix: str
    year: int
    effective_from: date
    mode: str
    annual_yuan: float
    form: str
    label: str


class NoticeRead(BaseModel):
    """The village public notice text (rules §4.13 redactions applied)."""

    case_id: str
    text: str
