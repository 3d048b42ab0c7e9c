"""Validated field types shared by every intake schema (rules §9)."""

from __future__ import annotations

import time
import unicodedata
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from shared.clock import local_date
from shared.identity import phone_problem, region_problem, resident_id_problem
from shared.inputs import NUL
from shared.inputs import PROBLEM as NUL_PROBLEM

# rules apply in China Standard Time: a date that is today in Beijing is not in the future
CHINA = timedelta(hours=8)


def china_today() -> date:
    """Today's date in China (UTC+8; shared.clock's zone)."""
    return local_date(datetime.now(UTC))


_DAY = 86_400
# today in China as YYYY-MM-DD, and the epoch seconds of its midnights (start, end)
_today_iso: tuple[float, float, str] = (0.0, 0.0, "")


def china_today_iso() -> str:
    """china_today() as YYYY-MM-DD, worked out once a day (a feed row checks its date with it)."""
    global _today_iso
    now = time.time()
    start, end, today = _today_iso
    if not start <= now < end:
        start = now - (now + CHINA.total_seconds()) % _DAY
        today = china_today().isoformat()
        _today_iso = (start, start + _DAY, today)
    return today


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


def _past_date(value: object) -> object:
    """A date as YYYY-MM-DD (a CSV cell too), not in the future (rules §9.5).

    Lax validation would also take a number (seconds since 1970: 0 is 1970-01-01) or a
    date-time string at midnight. One call a value, as feeds check millions: ISO dates compare
    as strings, and pydantic parses the digits and the calendar after it."""
    if isinstance(value, str):
        if len(value) == 10 and value[4] == "-" and value[7] == "-" and value.isascii():
            if value <= china_today_iso():
                return value
            try:
                date.fromisoformat(value)
            except ValueError:
                return value  # not a date at all: pydantic says what is wrong with it
            raise ValueError("date is in the future")
    elif isinstance(value, date) and not isinstance(value, datetime):
        if value > china_today():
            raise ValueError("date is in the future")
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


# characters that show nothing on their own: format characters (zero-width space U+200B,
# joiners, bidi marks), separators, combining marks without a base, and the filler letters
_BLANK_CATEGORIES = {"Cf", "Zs", "Zl", "Zp", "Mn", "Me"}
_FILLERS = set("\u115f\u1160\u3164\uffa0\u2800")


def _person_name(value: str) -> str:
    for char in value:
        if unicodedata.category(char) == "Cc":
            if char == NUL:
                raise ValueError(NUL_PROBLEM)
            raise ValueError(f"must not contain a control character (U+{ord(char):04X})")
    if value and all(unicodedata.category(c) in _BLANK_CATEGORIES or c in _FILLERS for c in value):
        raise ValueError("must contain a visible character, not only blank or zero-width ones")
    return value


ResidentId = Annotated[
    str,
    BeforeValidator(_upper),
    AfterValidator(_resident_id),
    Field(
        description="居民身份证号 (GB 11643, 18 characters, check character verified)",
        json_schema_extra={"pattern": r"^[0-9]{17}[0-9Xx]$", "examples": ["11010519491231002X"]},
    ),
]
Phone = Annotated[
    str,
    BeforeValidator(_strip),
    AfterValidator(_phone),
    Field(
        description="手机号码 (11 digits starting with 1)",
        json_schema_extra={"pattern": r"^1[0-9]{10}$", "examples": ["13800138000"]},
    ),
]
# rules §9.4: the province parts of shared.identity.PROVINCES, then ten digits
REGION_PATTERN = r"^(1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[12])[0-9]{10}$"
RegionCode = Annotated[
    str,
    BeforeValidator(_strip),
    AfterValidator(_region),
    Field(
        description=(
            "统计用区划代码 (12 digits: province, city, county, township, village); the province "
            "is a province-level division and the region (first 6) no placeholder such as 999999"
        ),
        json_schema_extra={"pattern": REGION_PATTERN, "examples": ["530102001001"]},
    ),
]
PastDate = Annotated[
    date, BeforeValidator(_past_date), Field(description="日期 (YYYY-MM-DD, not future)")
]
# a person's name: no control characters, and something visible when given
PersonName = Annotated[str, AfterValidator(_person_name)]
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
