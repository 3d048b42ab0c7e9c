"""Request and response models of the intake API (declarations, cadre reports, registry)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from services.intake.fields import (
    HouseholdId,
    PastDate,
    PersonName,
    Phone,
    RegionCode,
    ResidentId,
    RiskType,
)
from shared.amounts import NOT_BOOLEAN, Amount
from shared.events import MonitoringKind, SchoolingStage
from shared.inputs import CleanInput

STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
Location = tuple[str | int, ...]


def refuse(model: str, problems: list[tuple[Location, str]]) -> None:
    """Raise `problems` of a check across fields, each at the field it names (a ValueError
    raised by a model validator would name the whole model)."""
    if problems:
        raise ValidationError.from_exception_data(
            model,
            [
                InitErrorDetails(
                    type=PydanticCustomError("duplicate", "{problem}", {"problem": problem}),
                    loc=loc,
                    input=None,
                )
                for loc, problem in problems
            ],
        )


class DeclarationCreate(CleanInput):
    """A farmer's self-declaration (农户自主申报) from the mobile app."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "declarant_name": "张三",
                    "declarant_id": "11010519491231002X",
                    "phone": "13800138000",
                    "village_code": "530102001001",
                    "risk_types": ["illness"],
                    "description": "父亲住院，自付医疗费用约三万元",
                    "medical_spending": 30000,
                    "happened_on": "2026-11-20",
                }
            ]
        },
    )

    household_id: HouseholdId | None = Field(
        None, description="户编号; omit to use the household of `member_id` or of the declarant"
    )
    member_id: ResidentId | None = Field(None, description="户内成员身份证号, names the household")
    declarant_name: PersonName = Field(min_length=1, max_length=50, description="申报人姓名")
    declarant_id: ResidentId
    phone: Phone
    village_code: RegionCode
    risk_types: list[RiskType] = Field(min_length=1, max_length=11, description="风险类型")
    description: str = Field("", max_length=2000, description="情况说明")
    medical_spending: Amount = Field(0, description="自付医疗支出 (yuan)")
    schooling_spending: Amount = Field(0, description="教育支出 (yuan)")
    loss_amount: Amount = Field(0, description="损失金额 (yuan)")
    income_change: Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False), NOT_BOOLEAN] = (
        Field(0, description="收入变化 (yuan, negative = fall)")
    )
    happened_on: PastDate | None = Field(None, description="发生日期")


class MemberIn(CleanInput):
    """One household member as a cadre or the registry knows them (rules §1)."""

    model_config = STRICT

    resident_id: ResidentId
    name: PersonName = Field("", max_length=50, description="姓名")
    age: Annotated[int, Field(ge=0, le=130), NOT_BOOLEAN] | None = Field(
        None, description="年龄 (default: from the ID)"
    )
    labour_capacity: Literal["full", "partial", "none"] = Field("full", description="劳动能力")
    chronic_illness: bool = Field(False, description="慢性病")
    serious_illness: bool = Field(False, description="大病")
    disability_grade: Annotated[int, Field(ge=1, le=4), NOT_BOOLEAN] | None = Field(
        None, description="残疾等级"
    )
    schooling_stage: SchoolingStage | None = Field(None, description="在校学段")
    employed: bool = Field(False, description="务工就业")
    has_employment_record: bool = Field(False, description="有就业记录")


class GuaranteesIn(CleanInput):
    """Two no-worries, three guarantees and drinking water (两不愁三保障, rules §3)."""

    model_config = STRICT

    food_clothing_secure: bool | None = Field(None, description="不愁吃不愁穿")
    compulsory_education_secure: bool | None = Field(None, description="义务教育有保障")
    medical_insured: bool | None = Field(None, description="参加医保")
    medical_affordable: bool | None = Field(None, description="看得起病")
    house_rating: Literal["A", "B", "C", "D"] | None = Field(None, description="住房安全等级")
    drinking_water_safe: bool | None = Field(None, description="饮水安全")


class _NamesHousehold(CleanInput):
    household_id: HouseholdId | None = Field(None, description="户编号")
    household_member_id: ResidentId | None = Field(
        None, description="户内成员身份证号; names the household when household_id is omitted"
    )
    members: list[MemberIn] = Field(default_factory=list, max_length=30, description="家庭成员")

    @model_validator(mode="after")
    def _one_way_to_name_the_household(self) -> _NamesHousehold:
        if not (self.household_id or self.household_member_id or self.members):
            raise ValueError(
                "household_id: give household_id, household_member_id or at least one member"
            )
        return self

    @model_validator(mode="after")
    def _each_member_once(self) -> _NamesHousehold:
        first: dict[str, int] = {}
        problems: list[tuple[Location, str]] = []
        for n, member in enumerate(self.members):
            seen = first.setdefault(member.resident_id, n)
            if seen != n:
                problems.append(
                    (("members", n, "resident_id"), f"the same person as members.{seen}")
                )
        refuse(type(self).__name__, problems)
        return self

    def naming_id(self) -> str | None:
        """The resident ID that keys the household when no household id is given."""
        if self.household_member_id:
            return self.household_member_id
        return self.members[0].resident_id if self.members else None


class CadreReportCreate(_NamesHousehold):
    """A grassroots cadre's investigation report (基层干部排查)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "household_member_id": "11010519491231002X",
                    "village_code": "110105001001",
                    "risk_types": ["disaster"],
                    "per_capita_income": 6200,
                    "loss_amount": 18000,
                    "members": [
                        {
                            "resident_id": "11010519491231002X",
                            "name": "李桂兰",
                            "labour_capacity": "partial",
                        }
                    ],
                    "guarantees": {"house_rating": "C", "drinking_water_safe": True},
                    "basic_living_seriously_difficult": True,
                    "facts_verified": True,
                    "description": "山洪冲毁住房，家庭基本生活严重困难",
                }
            ]
        },
    )

    village_code: RegionCode
    risk_types: list[RiskType] = Field(default_factory=list, max_length=11, description="风险类型")
    per_capita_income: Amount | None = Field(None, description="人均纯收入 (yuan/year)")
    previous_year_income: Amount | None = Field(None, description="上年家庭收入 (yuan)")
    annual_income: Amount | None = Field(None, description="家庭年收入 (yuan)")
    medical_spending: Amount = Field(0, description="自付医疗支出")
    schooling_spending: Amount = Field(0, description="教育支出")
    loss_amount: Amount = Field(0, description="损失金额")
    guarantees: GuaranteesIn = Field(default_factory=lambda: GuaranteesIn.model_validate({}))
    basic_living_seriously_difficult: bool = Field(False, description="基本生活严重困难")
    facts_verified: bool = Field(False, description="事实清楚 (facts verified)")
    visited_on: PastDate | None = Field(None, description="入户日期")
    description: str = Field("", max_length=4000, description="排查情况")


class RegistryHousehold(_NamesHousehold):
    """One household of the baseline registry (rules §1)."""

    model_config = STRICT

    village_code: RegionCode
    baseline_status: Literal["formerly_poor", "ordinary"] = Field(
        description="formerly_poor 脱贫户 / ordinary 一般农户"
    )
    per_capita_income: Amount = Field(description="人均纯收入 (yuan/year)")
    previous_year_income: Amount | None = Field(None, description="上年家庭收入")
    members: list[MemberIn] = Field(min_length=1, max_length=30, description="家庭成员")


class RegistrySync(CleanInput):
    """A registry sync: one or many households, upserted by household id."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "households": [
                        {
                            "village_code": "110105001001",
                            "baseline_status": "formerly_poor",
                            "per_capita_income": 8100,
                            "members": [
                                {"resident_id": "11010519491231002X", "name": "李桂兰"},
                            ],
                        }
                    ]
                }
            ]
        },
    )

    households: list[RegistryHousehold] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _each_household_and_person_once(self) -> RegistrySync:
        # a sync that names a household twice, or a person in two households, cannot be
        # upserted as it says: one of the two would silently win
        ids: dict[str, int] = {}
        people: dict[str, int] = {}
        problems: list[tuple[Location, str]] = []
        for n, household in enumerate(self.households):
            if household.household_id is not None:
                seen = ids.setdefault(household.household_id, n)
                if seen != n:
                    problems.append(
                        (("households", n, "household_id"),
                         f"{household.household_id} is also households.{seen}")
                    )  # fmt: skip
            named: list[tuple[Location, str]] = [
                (("households", n, "members", m, "resident_id"), member.resident_id)
                for m, member in enumerate(household.members)
            ]
            if household.household_member_id is not None:
                named.append((("households", n, "household_member_id"),
                              household.household_member_id))  # fmt: skip
            for loc, resident in named:
                seen = people.setdefault(resident, n)
                if seen != n:
                    problems.append((loc, f"the same person is in households.{seen}"))
        refuse(type(self).__name__, problems)
        return self


class SubmissionAccepted(BaseModel):
    """The 202 answer: where to follow the submission."""

    submission_id: str
    household_id: str
    status: str
    status_url: str


class RegistryAccepted(BaseModel):
    """The answer to a registry sync: what the upsert changed."""

    submission_id: str
    status_url: str
    created: int
    updated: int
    unchanged: int
    household_ids: list[str]


class SubmissionRead(BaseModel):
    """A submission's status for the app: received, then published, then its case and what
    became of it."""

    submission_id: str
    kind: str
    household_id: str
    status: Literal["received", "published"]
    stage: Literal[
        "received",
        "published",
        "case_opened",
        "case_merged",
        "green_channel",
        "identified",
        "rejected",
        "already_monitored",
    ] = Field(
        description="received → published → case_opened / case_merged (with case_id) → "
        "green_channel (provisional help requested, rules §5) → identified / rejected; "
        "already_monitored when the household is a monitoring object already (rules §4)"
    )
    case_id: str | None = None
    outcome: Literal["identified", "rejected", "already_monitored"] | None = Field(
        None, description="the decision, once there is one (stage says the same)"
    )
    outcome_reason: str | None = Field(None, description="why the case was rejected")
    monitoring_kind: MonitoringKind | None = Field(
        None, description="identified: the kind of monitoring object (rules §1)"
    )
    new_risk_types: list[str] = Field(
        [],
        description="already_monitored: risk types the household was not identified for "
        "(its assistance plan fills the gap, rules §6)",
    )
    green_channel: Literal["opened", "rolled_back"] | None = Field(
        None,
        description="opened: provisional help requested before identification (rules §5); "
        "rolled_back: ended by the rejection (rules §5.4)",
    )
    decided_at: datetime | None = Field(None, description="when the outcome was decided")
    received_at: datetime
    published_at: datetime | None


class Amounts(BaseModel):
    """The amounts a submission gave (yuan); a field the channel does not have is null."""

    medical_spending: float | None = Field(None, description="自付医疗支出")
    schooling_spending: float | None = Field(None, description="教育支出")
    loss_amount: float | None = Field(None, description="损失金额")
    income_change: float | None = Field(None, description="收入变化 (declaration; negative = fall)")
    per_capita_income: float | None = Field(None, description="人均纯收入 (cadre report)")
    previous_year_income: float | None = Field(None, description="上年家庭收入 (cadre report)")
    annual_income: float | None = Field(None, description="家庭年收入 (cadre report)")


class MemberContact(BaseModel):
    """A member a cadre report names: the name and the masked resident ID, never the ID."""

    name: str
    resident_id_masked: str


class SubmissionContact(BaseModel):
    """How to reach the household of a submission, and what it said (rules §9: read by an
    official of its village or above; every read is recorded)."""

    submission_id: str
    kind: Literal["declaration", "cadre_report"]
    household_id: str
    village_code: str
    declarant_name: str | None = Field(None, description="申报人姓名 (declaration)")
    phone: str | None = Field(
        None, description="the declarant's phone in clear (declaration; null if undecryptable)"
    )
    phone_masked: str | None = Field(None, description="138****5678 (declaration)")
    declarant_id_masked: str | None = Field(
        None, description="the declarant's resident ID, masked; the full ID is never shown"
    )
    reported_by: str | None = Field(None, description="cadre report: the reporting cadre's id")
    members: list[MemberContact] = Field([], description="cadre report: the members it names")
    description: str = Field("", description="情况说明 / 排查情况, as written")
    risk_types: list[str]
    amounts: Amounts
    happened_on: str | None = Field(None, description="declaration: 发生日期")
    visited_on: str | None = Field(None, description="cadre report: 入户日期")
    stage: str = Field(description="as GET /v1/submissions/{id} gives it")
    case_id: str | None = None
    outcome: str | None = None
    outcome_reason: str | None = None
    green_channel: str | None = None
    decided_at: datetime | None = None
    received_at: datetime


class ContactReadEntry(BaseModel):
    """One read of a submission's contact: who, in which role and jurisdiction, when."""

    subject: str = Field(description="the official's id (token subject)")
    role: str
    jurisdiction: str
    read_at: datetime


class HouseholdSubmission(BaseModel):
    """One declaration or cadre report of a household, as an official finds it from an alert
    that names the household (or its case): where it stands and where to read its contact. It
    holds no phone, name or resident ID; the contact read is recorded (rules §9)."""

    submission_id: str
    kind: Literal["declaration", "cadre_report"]
    village_code: str
    received_at: datetime
    case_id: str | None = None
    stage: str = Field(description="as GET /v1/submissions/{id} gives it")
    outcome: str | None = None
    outcome_reason: str | None = None
    green_channel: str | None = None
    decided_at: datetime | None = None
    contact_url: str = Field(description="/v1/submissions/{id}/contact: how to reach the household")
