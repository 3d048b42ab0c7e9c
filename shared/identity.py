"""Identity and data-quality checks (rules §9): resident IDs, phones, region codes, masking."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date
from operator import mul

_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK = "10X98765432"
_ASCII_ZERO = sum(ord("0") * w for w in _WEIGHTS)  # the digits' ASCII offset, taken off once
# ASCII digits only, spelled [0-9]: in a str pattern \d and str.isdigit() also match other
# scripts' digits (fullwidth ５, Arabic-Indic ٥), which no register, token or prefix match knows
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_PHONE = re.compile(r"1[0-9]{10}")
_REGION = re.compile(r"[0-9]{12}")
_COUNTY = re.compile(r"[0-9]{6}")  # a region of registration (province, city, county)
_REGION_PREFIX = re.compile(r"[0-9]{1,12}")
# rules §9.2: region parts of placeholder IDs, which name no region
PLACEHOLDER_REGIONS = frozenset({"000000", "999999", "123456"})
# rules §9.4: the province part of a region code, one of China's province-level divisions
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82".split()
)
# rules §9.4: township 000 and village 000 mean "not placed in a village yet"
UNPLACED = "000000"


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits (GB 11643)."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("the first 17 characters must be digits")
    # weighted sum over the ASCII codes, minus the weighted '0's: a feed checks millions of IDs
    total = sum(map(mul, first17.encode(), _WEIGHTS)) - _ASCII_ZERO
    return _CHECK[total % 11]


def resident_id_problem(value: str, today: date | None = None) -> str | None:
    """Why `value` is not a valid resident ID, or None when it is."""
    if not _ID_SHAPE.fullmatch(value):
        return "must be 17 digits followed by a digit or X"
    if value[:6] in PLACEHOLDER_REGIONS or len(set(value[:17])) == 1:
        return "is a placeholder, not a real resident ID"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "has an impossible birth date"
    if born > (today or date.today()) or born.year < 1900:
        return "has a birth date out of range"
    if check_character(value[:17]) != value[17]:
        return "check character does not match (GB 11643)"
    return None


def phone_problem(value: str) -> str | None:
    """Why `value` is not a mainland mobile number, or None."""
    return None if _PHONE.fullmatch(value) else "must be 11 digits starting with 1"


def region_problem(value: str) -> str | None:
    """Why `value` is not a 12-digit statistical division code, or None."""
    if not _REGION.fullmatch(value):
        return "must be a 12-digit region code"
    return _place_problem(value)


def _place_problem(code: str) -> str | None:
    """Why a code of ASCII digits names no place (rules §9.2, §9.4), or None: its region part
    is a placeholder (999999), or its province part is no province-level division."""
    if code[:6] in PLACEHOLDER_REGIONS:
        return f"region {code[:6]} is a placeholder, not a region (rules §9.2)"
    if code[:2] not in PROVINCES:
        return f"province {code[:2]} is not a province-level division (rules §9.4)"
    return None


def is_region_prefix(value: str) -> bool:
    """Whether `value` is a jurisdiction: a prefix of a region code, 1 to 12 ASCII digits,
    that some real code starts with (a province-level division, no placeholder region)."""
    if _REGION_PREFIX.fullmatch(value) is None:
        return False
    if len(value) == 1:
        return any(p.startswith(value) for p in PROVINCES)
    return _place_problem(value) is None


def county_placeholder(person_id_masked: str) -> str:
    """Where a household known only by a person's (masked) resident ID is held until the county
    places it (rules §9.4): the ID's region of registration (its first 6 digits, rules §9.1)
    with township and village 000, e.g. 530102***********1 -> 530102000000; "" when those
    digits are no region (a placeholder, rules §9.2, or not 6 ASCII digits)."""
    region = person_id_masked[:6]
    if not _COUNTY.fullmatch(region) or _place_problem(region) is not None:
        return ""
    return region + UNPLACED


def is_unplaced(village_code: str) -> bool:
    """Whether a household or case has no village yet: no code, or one whose village part is
    000 (a county or township placeholder, rules §9.4)."""
    return not village_code or village_code.endswith("000")


def village_problem(value: str) -> str | None:
    """Why `value` is not a village's 12-digit code (rules §9.4), or None."""
    if not _REGION.fullmatch(value):
        return "must be a 12-digit village code"
    problem = _place_problem(value)
    if problem:
        return problem
    if value[6:9] == "000" or value[9:] == "000":
        return "must name a village: its township and village parts are not 000 (rules §9.4)"
    return None


def mask_resident_id(value: str) -> str:
    """Show region and last digit only: 110101********123X -> 110101***********X."""
    return value[:6] + "*" * (len(value) - 7) + value[-1:]


def mask_phone(value: str) -> str:
    """138****5678."""
    return value[:3] + "****" + value[-4:]


def keyed_hash(value: str, key: str) -> str:
    """A keyed hash for matching people without storing their ID in clear."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
