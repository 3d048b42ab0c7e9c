"""Intake field checks (rules §9), PII protection and the app rate limit, without I/O."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.intake.fields import PastDate, Phone, RegionCode, ResidentId, china_today
from services.intake.handlers import member_event
from services.intake.pii import Vault, household_key
from services.intake.ratelimit import RateLimiter
from services.intake.registry import duplicate_households
from services.intake.schemas import CadreReportCreate, DeclarationCreate, MemberIn, RegistrySync
from shared.amounts import Amount
from shared.clock import FrozenClock
from shared.identity import PLACEHOLDER_REGIONS, PROVINCES, check_character


class Probe(BaseModel):
    """One of each validated type."""

    resident_id: ResidentId | None = None
    phone: Phone | None = None
    region: RegionCode | None = None
    amount: Amount | None = None
    day: PastDate | None = None


def problem(**value: object) -> str | None:
    try:
        Probe(**value)  # type: ignore[arg-type]
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"])
    return None


births = st.dates(date(1900, 1, 1), date(2020, 12, 31))
regions = st.from_regex(r"[1-6][0-9]{5}", fullmatch=True).filter(lambda r: r != "123456")


@given(region=regions, born=births, seq=st.integers(0, 999))
def test_rules_9_1_a_correct_check_character_is_accepted(region: str, born: date, seq: int) -> None:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    assert problem(resident_id=first17 + check_character(first17)) is None
    # a lower-case x is the same check character
    assert problem(resident_id=(first17 + check_character(first17)).lower()) is None


@given(region=regions, born=births, seq=st.integers(0, 999), wrong=st.sampled_from("0123456789X"))
def test_rules_9_1_any_other_check_character_is_refused(
    region: str, born: date, seq: int, wrong: str
) -> None:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    if wrong != check_character(first17):
        assert "check character" in (problem(resident_id=first17 + wrong) or "")


@given(born=births, seq=st.integers(0, 999))
def test_rules_9_2_placeholder_regions_are_refused(born: date, seq: int) -> None:
    first17 = f"999999{born:%Y%m%d}{seq:03d}"
    assert "placeholder" in (problem(resident_id=first17 + check_character(first17)) or "")


@given(st.from_regex(r"[0-9]{12}", fullmatch=True))
def test_rules_9_4_every_twelve_digit_code_of_a_province_is_accepted(code: str) -> None:
    # rules §9.2, §9.4: a placeholder region (999999) or no province-level division is refused
    if code[:2] in PROVINCES and code[:6] not in PLACEHOLDER_REGIONS:
        assert problem(region=code) is None
    else:
        assert "rules §9" in (problem(region=code) or "")


@given(st.text(max_size=20).filter(lambda s: not (len(s.strip()) == 12 and s.strip().isdigit())))
def test_rules_9_4_anything_else_is_refused(code: str) -> None:
    # str.isdigit admits other scripts' digits; the check is ASCII-only on purpose
    if not (len(code.strip()) == 12 and all(c in "0123456789" for c in code.strip())):
        assert problem(region=code) is not None


@pytest.mark.parametrize(
    ("value", "ok"),
    [("13800138000", True), ("19912345678", True), ("23800138000", False), ("1380013800", False),
     ("138001380001", False), ("1380013800a", False)],
)  # fmt: skip
def test_rules_9_3_mobile_numbers(value: str, ok: bool) -> None:
    assert (problem(phone=value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [(0, True), (12.5, True), (-0.01, False), (float("nan"), False), (float("inf"), False)],
)
def test_rules_9_5_amounts_are_never_negative(value: float, ok: bool) -> None:
    assert (problem(amount=value) is None) is ok


def test_rules_9_5_dates_may_not_lie_in_the_future() -> None:
    assert problem(day=china_today()) is None
    assert "future" in (problem(day=china_today() + timedelta(days=1)) or "")


def test_china_today_is_utc_plus_eight() -> None:
    assert china_today() == (datetime.now(UTC) + timedelta(hours=8)).date()


@given(region=regions, born=births, seq=st.integers(0, 999))
def test_vault_hashes_masks_and_encrypts_without_clear_text(
    region: str, born: date, seq: int
) -> None:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    rid = first17 + check_character(first17)
    vault = Vault("k1")
    protected = vault.protect(rid)
    assert rid not in protected.ciphertext and rid != protected.hash
    assert protected.masked == rid[:6] + "*" * 11 + rid[-1]
    assert vault.decrypt(protected.ciphertext) == rid
    assert protected.hash == vault.hash(rid) != Vault("k2").hash(rid)
    assert household_key(protected.hash) == "hh-" + protected.hash[:20]


def test_member_age_comes_from_the_resident_id_when_not_given() -> None:
    first17 = "53010219800601001"
    member = MemberIn(resident_id=first17 + check_character(first17))
    assert member_event(member, Vault("k"), today=date(2026, 5, 31)).age == 45
    assert member_event(member, Vault("k"), today=date(2026, 6, 1)).age == 46


def test_a_cadre_report_must_name_its_household() -> None:
    with pytest.raises(ValidationError, match="household_id"):
        CadreReportCreate(village_code="530102001001")


def test_rate_limiter_counts_per_key_and_says_when_to_retry() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC))
    limiter = RateLimiter(limit=2, window_seconds=60, clock=clock)
    assert [limiter.hit("a"), limiter.hit("a")] == [None, None]
    assert limiter.hit("a") == 50  # seconds left in the window
    assert limiter.hit("b") is None
    clock.advance(timedelta(seconds=50))
    assert limiter.hit("a") is None


def test_rules_9_ids_and_phones_are_masked_in_log_lines() -> None:
    import logging

    from services.intake.redact import RedactingFilter, redact

    line = "declarant 530102195003150018 phone 13800138000 amount 123456789012"
    assert redact(line) == "declarant 530102***********8 phone 138****8000 amount 123456789012"
    record = logging.LogRecord("x", logging.INFO, "f", 1, "id %s", ("11010519491231002X",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "id 110105***********X"


@given(st.text(max_size=40))
def test_vault_hash_is_the_shared_keyed_hash(value: str) -> None:
    """Intake's fast hash must match every other service's matching key."""
    from shared.identity import keyed_hash

    assert Vault("s3cret").hash(value) == keyed_hash(value, "s3cret")


DECLARATION = {
    "declarant_name": "周海燕", "declarant_id": "530102199706267077", "phone": "13903565516",
    "village_code": "530102001001", "risk_types": ["illness"], "medical_spending": 35000,
}  # fmt: skip
ID_A = "530102195003150018"
ID_B = "530102198807070025"


def refused(model: type[BaseModel], body: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) of each problem of `body` sent as JSON ([] when it is accepted)."""
    try:
        model.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        return [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
    return []


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"village_code": "５３０１０２００１００１"}, "village_code", "12-digit"),
        ({"village_code": "٥٣٠١٠٢٠٠١٠٠١"}, "village_code", "12-digit"),
        ({"phone": "1３９０３５６５５１６"}, "phone", "11 digits"),
        ({"medical_spending": True}, "medical_spending", "not true or false"),
        ({"loss_amount": False}, "loss_amount", "not true or false"),
        ({"income_change": True}, "income_change", "not true or false"),
        ({"happened_on": 0}, "happened_on", "YYYY-MM-DD"),
        ({"happened_on": 1767225600}, "happened_on", "YYYY-MM-DD"),
        ({"happened_on": "2026-01-01T00:00:00"}, "happened_on", "YYYY-MM-DD"),
        ({"happened_on": "２０２６-０１-０１"}, "happened_on", "YYYY-MM-DD"),
        ({"declarant_name": "\u200b"}, "declarant_name", "visible"),
        ({"declarant_name": "\u200b\u2060\ufeff\u3164"}, "declarant_name", "visible"),
        ({"declarant_name": "\x07\x1b[31m"}, "declarant_name", "control character (U+0007)"),
        ({"declarant_name": "周\n海燕"}, "declarant_name", "control character (U+000A)"),
    ],
)  # fmt: skip
def test_a_declaration_refuses_what_only_looks_like_its_field(
    change: dict[str, Any], field: str, words: str
) -> None:
    [(named, message)] = refused(DeclarationCreate, DECLARATION | change)
    assert named == field and words in message


@pytest.mark.parametrize(
    "change",
    [{"medical_spending": 12.5}, {"medical_spending": 0}, {"medical_spending": "35000"},
     {"income_change": -300}, {"happened_on": "2026-01-31"},
     {"declarant_name": "阿卜杜拉\u200d"}, {"declarant_name": "Zoë"}],
)  # fmt: skip
def test_a_declaration_still_takes_numbers_dates_and_names(change: dict[str, Any]) -> None:
    assert refused(DeclarationCreate, DECLARATION | change) == []


def test_a_cadre_report_lists_each_member_once() -> None:
    report = {"village_code": "530102001001", "members": [
        {"resident_id": ID_A}, {"resident_id": ID_B}, {"resident_id": ID_A}]}  # fmt: skip
    assert refused(CadreReportCreate, report) == [
        ("members.2.resident_id", "the same person as members.0")
    ]
    # the same ID with a lower-case check character is the same person
    first17 = "11010519491231002"
    upper = first17 + check_character(first17)
    report["members"] = [{"resident_id": upper}, {"resident_id": upper.lower()}]
    assert [f for f, _ in refused(CadreReportCreate, report)] == ["members.1.resident_id"]


def test_a_member_age_is_a_number_and_a_name_something_visible() -> None:
    report = {"village_code": "530102001001", "members": [
        {"resident_id": ID_A, "age": True, "name": "\u3164"},
        {"resident_id": ID_B, "disability_grade": True, "name": "王\tb"}]}  # fmt: skip
    assert [f for f, _ in refused(CadreReportCreate, report)] == [
        "members.0.name", "members.0.age", "members.1.name", "members.1.disability_grade"
    ]  # fmt: skip
    report["members"] = [{"resident_id": ID_A, "age": 52, "name": ""}]
    assert refused(CadreReportCreate, report) == [], "a name may be left out"


def _household(resident: str, **changes: Any) -> dict[str, Any]:
    household = {"village_code": "530102001002", "baseline_status": "formerly_poor",
                 "per_capita_income": 8100, "members": [{"resident_id": resident}]}  # fmt: skip
    return household | changes


def test_a_registry_sync_names_each_household_and_each_person_once() -> None:
    """One of two entries for a household would silently win the upsert; a person is in one
    household."""
    again = _household(ID_B, household_id="hh-1", per_capita_income=1)
    twice = {"households": [_household(ID_A, household_id="hh-1"), _household(ID_B), again]}
    assert refused(RegistrySync, twice) == [
        ("households.2.household_id", "hh-1 is also households.0"),
        ("households.2.members.0.resident_id", "the same person is in households.1"),
    ]
    named = {"households": [_household(ID_A, household_id="h1"),
                            _household(ID_B, household_member_id=ID_A)]}  # fmt: skip
    assert refused(RegistrySync, named) == [
        ("households.1.household_member_id", "the same person is in households.0")
    ]
    apart = {"households": [_household(ID_A, household_member_id=ID_A), _household(ID_B)]}
    assert refused(RegistrySync, apart) == []


def test_a_registry_household_keyed_like_another_is_refused() -> None:
    """A household without an id is keyed by its naming member; an explicit id may be the same
    key (a caller sending back the id an earlier sync answered)."""
    vault = Vault("k")
    keyed = household_key(vault.hash(ID_A))
    sync = RegistrySync.model_validate(
        {"households": [_household(ID_A), _household(ID_B, household_id=keyed)]}
    )
    assert duplicate_households(sync, vault) == [
        (("households", 1, "household_id"), f"{keyed} is also households.0")
    ]
    sync = RegistrySync.model_validate({"households": [_household(ID_A), _household(ID_B)]})
    assert duplicate_households(sync, vault) == []
