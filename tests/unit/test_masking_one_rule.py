"""rules §4.13, §9: one masking for the platform (shared.logs.redact). Notify's messages and
intake's log lines and outcome reasons mask every shape either used to: an 18-character
resident ID, one cut before its check character, one between letters; a mobile number alone,
between letters, or with the +86 / 86 country code."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.intake import redact as intake_redact
from services.notify import templates
from shared.logs import redact

# (text, what must not survive, what the mask leaves)
SHAPES = [
    # notify's former patterns: 18 characters with X, a phone with the country code
    ("身份证11010119900307123X。", "11010119900307123X", "110101***********X"),
    ("电话+8613812345678", "13812345678", "+86****5678"),
    ("电话+86 13812345678", "13812345678", "+86****5678"),
    ("电话86-13812345678", "13812345678", "86-****5678"),
    ("电话8613812345678", "13812345678", "861****5678"),
    # the logs' former patterns: an ID without its check character, IDs and phones among letters
    ("id 53010219500315001 end", "53010219500315001", "530102**********1"),
    ("id=a530102195003150018b", "530102195003150018", "530102***********8"),
    ("tel13800138000ext", "13800138000", "138****8000"),
    ("phone 13800138000", "13800138000", "138****8000"),
]


@pytest.mark.parametrize(("text", "secret", "masked"), SHAPES)
def test_the_shared_mask_covers_every_shape_either_covered(
    text: str, secret: str, masked: str
) -> None:
    assert secret not in redact(text) and masked in redact(text)
    # intake's name for it is the same function
    assert intake_redact.redact(text) == redact(text)


@pytest.mark.parametrize(("text", "secret", "masked"), SHAPES)
def test_a_message_masks_every_shape_in_a_name_or_a_reason(
    text: str, secret: str, masked: str
) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    for language in templates.TEMPLATES:
        rejected = templates.render(
            "rejected", language=language, zone=zone, household="hh-1", reason=text[-24:]
        )
        assert secret not in rejected, rejected
        named = templates.render(
            "case_opened", language=language, zone=zone, household="hh-1",
            deadline=datetime(2026, 3, 17, tzinfo=UTC), names={"hh-1": text},
        )  # fmt: skip
        assert secret not in named, named


def test_numbers_that_are_not_ids_or_phones_stay() -> None:
    line = "amount 123456789012 household hh-0123456789abcdef0123 date 2026-03-17"
    assert redact(line) == line


@pytest.mark.parametrize(
    "own",
    [
        "hh-6c13812345678bb70ee0",  # a household key whose hash holds a phone's shape
        "hh-11010119900307123a0e",  # ... or an ID's
        "7d3f1381-2345-6789-0123-a13812345678",  # a UUID (event, case, notification)
    ],
)
def test_the_platforms_own_ids_are_never_garbled(own: str) -> None:
    """Digits inside a household key or a UUID are a hash's or chance's, not a person's: the
    id is shown whole in a line, a message or a webhook body, while a real phone beside it is
    still masked."""
    line = f"household {own} phone 13800138000"
    assert redact(line) == f"household {own} phone 138****8000"
    assert redact(f"tel13800138000-{own}") == f"tel138****8000-{own}"
