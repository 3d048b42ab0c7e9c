"""rules §4.13: a public notice never shows IDs, phones, bank accounts or health conditions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.risk.notice import public_notice_text, redact


@pytest.mark.parametrize(
    "secret",
    [
        "53010219800101123X",  # resident ID
        "530102***********3",  # masked resident ID
        "13812345678",  # phone
        "138****5678",  # masked phone
        "6222021234567890123",  # bank card
        "chronic illness",
        "尿毒症住院",
        "残疾二级",
        "138-1234-5678",  # phone written in groups
        "138 1234 5678",
        "+86 13812345678",
        "6222 0212 3456 7890 123",  # card number in groups
        "11010519491231002X",  # the check character goes with the ID
        "糖尿病",
        "精神分裂症",
    ],
)
def test_rules_4_13_redact_removes_protected_details(secret: str) -> None:
    text = redact(f"王秀英 {secret} 户")
    assert secret not in text
    assert not any(c.isdigit() for c in text), f"a digit of {secret} is left: {text}"
    assert "王秀英" in text


def test_rules_4_13_notice_shows_names_and_kind_but_no_health_risk() -> None:
    text = public_notice_text(
        village_code="530102001001",
        names=["王秀英", "李四 13812345678"],
        kind="marginal",
        risk_types=["illness", "housing_unsafe"],
        posted_at=datetime(2026, 3, 4, tzinfo=UTC),
        ends_at=datetime(2026, 3, 9, tzinfo=UTC),
    )
    assert "王秀英" in text and "李四" in text
    assert "边缘易致贫户" in text
    assert "housing_unsafe" in text
    assert "illness" not in text
    assert "13812345678" not in text
    assert "2026-03-04 to 2026-03-09" in text
