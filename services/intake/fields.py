"""Validated field types shared by every intake schema (rules §9)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from shared.identity import phone_problem, region_problem, resident_id_problem

# rules apply in China Standard Time: a date that is today in Beijing is not in the future
CHINA = timedelta(hours=8)


def china_today() -> date:
    """Today's date in China (UTC+8)."""
    return (datetime.now(UTC) + CHINA).date()


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _resident_id(value: str) -> str:
    problem = resident_id_problem(value, china_today())
    if problem:
        raise ValueError(f"resident ID {problem}")
    return value


def _phone(value: str) -> str:
    problem = phone_problem(value)
    if problem:
        raise ValueError(f"phone {problem}")
    return value


def _region(value: str) -> str:
    problem = region_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _not_future(value: date) -> date:
    if value > china_today():
        raise ValueError("date is in the future")
    return value


ResidentId = Annotated[
    str,
    BeforeValidator(_upper),
    AfterValidator(_resident_id),
    Field(
        description="居民身份证号 (GB 11643, 18 characters, check character verified)",
        json_schema_extra={"pattern": r"^\d{17}[\dX]$", "examples": ["11010519491231002X"]},
    ),
]
Phone = Annotated[
    str,
    BeforeValidator(_strip),
    AfterValidator(_phone),
    Field(
        description="手机号码 (11 digits starting with 1)",
        json_schema_extra={"pattern": r"^1\d{10}$", "examples": ["13800138000"]},
    ),
]
RegionCode = Annotated[
    str,
    BeforeValidator(_strip),
    AfterValidator(_region),
    Field(
        description="统计用区划代码 (12 digits: province, city, county, township, village)",
        json_schema_extra={"pattern": r"^\d{12}$", "examples": ["530102001001"]},
    ),
]
# rules §9.5: amounts are yuan and never negative; NaN and infinity are not amounts
Amount = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False, description="金额 (yuan)")]
PastDate = Annotated[date, AfterValidator(_not_future), Field(description="日期 (not future)")]
HouseholdId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


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
