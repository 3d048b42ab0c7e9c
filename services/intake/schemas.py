"""Request and response models of the intake API."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.identity import phone_problem, region_problem, resident_id_problem


class RiskType(StrEnum):
    """Risk types of rules §3."""

    illness = "illness"
    disability = "disability"
    schooling = "schooling"
    disaster = "disaster"
    accident = "accident"
    business_failure = "business_failure"
    unstable_employment = "unstable_employment"
    lack_of_labour = "lack_of_labour"
    housing_unsafe = "housing_unsafe"
    water_unsafe = "water_unsafe"
    other = "other"


class DeclarationCreate(BaseModel):
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

    household_id: str | None = Field(
        None, max_length=64, description="户编号; omit to use the declarant's household"
    )
    declarant_name: str = Field(min_length=1, max_length=50, description="申报人姓名")
    declarant_id: str = Field(description="申报人身份证号 (18 characters)")
    phone: str = Field(description="联系电话 (mobile, 11 digits)")
    village_code: str = Field(description="行政村区划代码 (12 digits)")
    risk_types: list[RiskType] = Field(min_length=1, description="风险类型")
    description: str = Field("", max_length=2000, description="情况说明")
    medical_spending: float = Field(0, ge=0, description="自付医疗支出 (yuan)")
    schooling_spending: float = Field(0, ge=0, description="教育支出 (yuan)")
    loss_amount: float = Field(0, ge=0, description="损失金额 (yuan)")
    income_change: float = Field(0, description="收入变化 (yuan, negative for a fall)")
    happened_on: date | None = Field(None, description="发生日期")

    @field_validator("declarant_id")
    @classmethod
    def _resident_id(cls, value: str) -> str:
        problem = resident_id_problem(value.upper())
        if problem:
            raise ValueError(f"resident ID {problem}")
        return value.upper()

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        problem = phone_problem(value)
        if problem:
            raise ValueError(f"phone {problem}")
        return value

    @field_validator("village_code")
    @classmethod
    def _village(cls, value: str) -> str:
        problem = region_problem(value)
        if problem:
            raise ValueError(f"village_code {problem}")
        return value

    @field_validator("happened_on")
    @classmethod
    def _not_future(cls, value: date | None) -> date | None:
        if value and value > datetime.now(UTC).date():
            raise ValueError("happened_on is in the future")
        return value


class SubmissionAccepted(BaseModel):
    """The 202 answer: where to follow the submission."""

    submission_id: str
    household_id: str
    status: str
    status_url: str


class SubmissionRead(BaseModel):
    """A submission's status for the app: received, then published."""

    submission_id: str
    kind: str
    household_id: str
    status: str
    received_at: datetime
    published_at: datetime | None
