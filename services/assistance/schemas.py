"""Assistance request and response models; every problem names its field."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from shared.amounts import Amount
from shared.events import Guarantees, RiskType
from shared.inputs import CleanInput

Rank = Literal["county_leader", "section", "general", "township", "village"]
CHANNELS = ("webhook", "robot", "sms", "email")
MAX_ADDRESS = 500  # notify keeps the address it sent to (notifications.address, String(500))
MOBILE = re.compile(r"1[0-9]{10}")  # rules §9.3; ASCII digits (\d would take full-width ones)
# local@domain.tld: one @, no spaces, a domain of at least two labels (IDN labels allowed)
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
MAX_EMAIL = 254  # RFC 5321
# rules §1: the formerly poor left poverty from 2014; no visit of a monitored household is older
VISITS_FROM = date(2014, 1, 1)


def _url_problem(address: str) -> str | None:
    """Why `address` is not an absolute http(s) URL with a host, or None."""
    if any(c.isspace() or not c.isprintable() for c in address):
        return "must not contain spaces or control characters"
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https"):
        return "must be an http(s) URL"
    try:
        host, _ = parts.hostname, parts.port
    except ValueError:
        return "must have a valid port"
    if not host:
        return "must be an absolute URL with a host"
    return None


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


class CadreIn(CleanInput):
    """A cadre of the roster, as posted or imported (rules §6.8-6.9)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    cadre_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = Field(min_length=1, max_length=100)
    rank: Rank
    township_code: str = Field(pattern=r"^[0-9]{9}$")
    village_codes: list[str] = Field(default_factory=list)
    contacts: dict[str, str] = Field(default_factory=dict)
    active: bool = True

    @field_validator("village_codes")
    @classmethod
    def _villages(cls, value: list[str]) -> list[str]:
        for code in value:
            if not re.fullmatch(r"[0-9]{12}", code):
                raise ValueError(f"{code!r} is not a 12-digit village code")
        return sorted(set(value))

    @field_validator("contacts")
    @classmethod
    def _contacts(cls, value: dict[str, str]) -> dict[str, str]:
        for channel, address in value.items():
            if channel not in CHANNELS:
                raise ValueError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
            if len(address) > MAX_ADDRESS:
                raise ValueError(f"{channel} is longer than {MAX_ADDRESS} characters")
            if channel == "sms" and not MOBILE.fullmatch(address):
                raise ValueError("sms must be an 11-digit mobile number starting with 1")
            if channel == "email" and (len(address) > MAX_EMAIL or not EMAIL.fullmatch(address)):
                raise ValueError("email must be an e-mail address (name@domain.tld)")
            if channel in ("webhook", "robot") and (problem := _url_problem(address)):
                raise ValueError(f"{channel} {problem}")
        return value

    @model_validator(mode="after")
    def _villages_in_township(self) -> CadreIn:
        outside = [v for v in self.village_codes if not v.startswith(self.township_code)]
        if outside:
            raise ValueError(f"village_codes {outside} are outside township {self.township_code}")
        return self


class CadreRead(BaseModel):
    """A cadre as stored, with their current load (not checked again as input: a cadre stored
    under older rules is still listed)."""

    cadre_id: str
    name: str
    rank: Rank
    township_code: str
    village_codes: list[str]
    contacts: dict[str, str]
    active: bool
    load: int
    capacity: int | None


class WorkloadRead(BaseModel):
    """Cadre workload of a region: who holds how many households, and who waits."""

    cadres: list[CadreRead]
    unassigned_households: list[str]


class MeasureRead(BaseModel):
    """One measure of a plan, with why it was chosen and where it stands."""

    measure_id: str
    plan_id: str
    household_id: str
    village_code: str
    code: str
    category: str
    person_id_hash: str | None
    reason: str
    provisional: bool
    status: str
    recorded_as: str | None
    started_on: date | None
    completed_on: date | None
    cancelled_on: date | None
    updated_by: str


class MeasureStep(BaseModel):
    """One recorded change of a measure's status."""

    from_status: str | None
    to_status: str
    at: datetime
    actor: str
    note: str


class ViolationRead(BaseModel):
    """A rule the plan breaks (rules §6)."""

    rule: str
    problem: str
    measure_id: str | None = None


class PlanDetail(BaseModel):
    """A household's plan: its measures in working order, their reasons, and any violation."""

    plan_id: str
    household_id: str
    case_id: str
    village_code: str
    status: str
    kind: str | None
    risk_types: list[str]
    labour_class: str | None
    catalogue_version: str | None
    measures: list[MeasureRead]
    violations: list[ViolationRead]
    responsible_cadre: str | None
    created_at: datetime


class MeasureIn(CleanInput):
    """A measure added to a plan by hand; the consistency checker reports what it breaks."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=50)
    # as stored (measures.person_id_hash, String(128)); a measure for a person names one of
    # the plan's members, a household measure nobody (rules §6.1, checked against the plan)
    person_id_hash: str | None = Field(None, min_length=1, max_length=128)
    reason: NonBlank = Field(min_length=1, max_length=500)


class TransitionIn(CleanInput):
    """Move a measure along its lifecycle (planned -> in_progress -> completed | cancelled)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["in_progress", "completed", "cancelled"]
    note: str = Field("", max_length=500)


class VisitIn(CleanInput):
    """A responsible cadre's home visit with what they found (rules §6.10)."""

    model_config = ConfigDict(extra="forbid")

    household_id: str = Field(min_length=1, max_length=64)
    visited_on: date = Field(description=f"走访日期: not in the future, not before {VISITS_FROM}")
    per_capita_income: Amount | None = Field(None, description="人均纯收入 (yuan/year)")
    guarantees: Guarantees = Guarantees()
    new_risk_types: list[RiskType] = Field(
        default_factory=list, max_length=11, description="新发现的风险类型 (rules §3)"
    )
    note: str = Field("", max_length=2000)

    @field_validator("visited_on")
    @classmethod
    def _after_the_baseline(cls, value: date) -> date:
        if value < VISITS_FROM:
            raise ValueError(f"is before {VISITS_FROM}, when the monitoring baseline starts")
        return value

    @field_validator("new_risk_types")
    @classmethod
    def _once_each(cls, value: list[RiskType]) -> list[RiskType]:
        return list(dict.fromkeys(value))


class VisitRead(BaseModel):
    """A recorded visit."""

    visit_id: str
    household_id: str
    cadre_id: str
    visited_on: date
    per_capita_income: float | None
    income_changed: bool = False


class VisitDueRead(BaseModel):
    """A monitored household's next visit, whether it is late, and why it must be visited."""

    household_id: str
    village_code: str
    cadre_id: str | None
    last_visit_on: date | None
    next_visit_due: date | None
    overdue: bool
    must_visit: list[str]
