"""Intake field checks (rules §9), PII protection and the app rate limit, without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.intake.fields import Amount, PastDate, Phone, RegionCode, ResidentId, china_today
from services.intake.handlers import member_event
from services.intake.pii import Vault, household_key
from services.intake.ratelimit import RateLimiter
from services.intake.schemas import CadreReportCreate, MemberIn
from shared.clock import FrozenClock
from shared.identity import check_character


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
def test_rules_9_4_every_twelve_digit_region_code_is_accepted(code: str) -> None:
    assert problem(region=code) is None


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
