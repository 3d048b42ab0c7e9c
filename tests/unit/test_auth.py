"""Tokens and jurisdictions: who may act where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from shared.auth import MAX_SUBJECT, AuthError, Official, mint_token, read_token
from shared.clock import FrozenClock

SECRET = "unit-test-signing-secret-of-32-bytes!"


def _clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 5, 1, 9, tzinfo=UTC))


def test_token_round_trip() -> None:
    clock = _clock()
    token = mint_token(
        subject="c-1", role="township", jurisdiction="530102001", secret=SECRET, clock=clock
    )
    assert read_token(token, secret=SECRET, clock=clock) == Official("c-1", "township", "530102001")


def test_expired_forged_and_malformed_tokens_are_refused() -> None:
    clock = _clock()
    token = mint_token(
        subject="c-1",
        role="village",
        jurisdiction="530102001001",
        secret=SECRET,
        clock=clock,
        ttl=timedelta(minutes=5),
    )
    clock.advance(timedelta(minutes=6))
    with pytest.raises(AuthError, match="expired"):
        read_token(token, secret=SECRET, clock=clock)
    with pytest.raises(AuthError, match="invalid"):
        read_token(token, secret="another-signing-secret-of-32-bytes!!", clock=_clock())
    with pytest.raises(AuthError):
        read_token("not-a-token", secret=SECRET, clock=clock)


def test_unknown_role_and_non_numeric_jurisdiction_cannot_be_minted() -> None:
    with pytest.raises(AuthError):
        mint_token(subject="x", role="mayor", jurisdiction="53", secret=SECRET, clock=_clock())  # type: ignore[arg-type]
    with pytest.raises(AuthError):
        mint_token(subject="x", role="county", jurisdiction="yunnan", secret=SECRET, clock=_clock())


@pytest.mark.parametrize(
    ("official", "region", "covered"),
    [
        (Official("a", "county", "530102"), "530102001001", True),
        (Official("a", "county", "530102"), "530103001001", False),
        (Official("a", "village", "530102001001"), "530102001002", False),
        (Official("a", "admin", ""), "110105001001", True),
    ],
)
def test_jurisdiction_is_a_region_prefix(official: Official, region: str, covered: bool) -> None:
    assert official.covers(region) is covered


def test_role_levels() -> None:
    township = Official("a", "township", "530102001")
    assert township.at_least("village") and township.at_least("township")
    assert not township.at_least("county")


@pytest.mark.parametrize("subject", ["", "   ", "s" * (MAX_SUBJECT + 1), "c-\x001"])
def test_a_subject_no_actor_column_can_record_is_neither_minted_nor_read(subject: str) -> None:
    """The subject is recorded as the actor (String(100) columns): a longer one made a 500
    in PostgreSQL after the request had been authorised."""
    with pytest.raises(AuthError, match="subject"):
        mint_token(subject=subject, role="county", jurisdiction="530102", secret=SECRET,
                   clock=_clock())  # fmt: skip
    clock = _clock()
    claims = {"sub": subject, "role": "county", "jurisdiction": "530102",
              "exp": int(clock.now().timestamp()) + 60}  # fmt: skip
    forged_elsewhere = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="subject"):
        read_token(forged_elsewhere, secret=SECRET, clock=clock)


def test_a_subject_of_the_longest_recordable_length_is_accepted() -> None:
    clock = _clock()
    subject = "s" * MAX_SUBJECT
    token = mint_token(
        subject=subject, role="county", jurisdiction="530102", secret=SECRET, clock=clock
    )
    assert read_token(token, secret=SECRET, clock=clock).subject == subject


@pytest.mark.parametrize(
    "jurisdiction", ["５３０１０２", "٥٣٠١٠٢", "530102\n", "", "5301020010011"]
)
def test_a_jurisdiction_is_a_prefix_of_ascii_digits(jurisdiction: str) -> None:
    """A token for fullwidth digits would cover no stored region code (rules §9.4)."""
    with pytest.raises(AuthError, match="jurisdiction"):
        mint_token(
            subject="c-1", role="county", jurisdiction=jurisdiction, secret=SECRET, clock=_clock()
        )
