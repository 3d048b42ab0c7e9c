"""The village public notice (公示, rules §4.4, §4.13), with protected details redacted."""

from __future__ import annotations

import re
from datetime import datetime

KIND_NAMES = {
    "unstable": "脱贫不稳定户 (unstable formerly-poor household)",
    "marginal": "边缘易致贫户 (marginal household)",
    "sudden": "突发严重困难户 (sudden severe hardship)",
}
# rules §4.13: health conditions are never shown, so health risk types are generalised
HEALTH_RISKS = frozenset({"illness", "disability"})
# rules §4.13: resident IDs (clear or masked, with their X), mobile numbers, bank accounts and
# card numbers: any run of 7 or more digits, also when written in groups ("138 1234 5678",
# "6222-0212-...") or partly masked with *, is removed whole
_NUMBERS = re.compile(r"\+?[\d*](?:[\s\-.]?[\d*]){6,}[Xx]?")
_HEALTH_WORDS = re.compile(
    r"(illness|disease|diagnos\w*|disab\w*|cancer|chronic|serious|hospital\w*|"
    r"疾病|重病|大病|慢性病|癌|残疾|住院|诊断|糖尿病|高血压|心脏病|尿毒症|白血病|肿瘤|透析|瘫痪|精神病|精神障碍|精神分裂症|分裂症)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Remove IDs, phone numbers, bank accounts and health words from free text."""
    return _HEALTH_WORDS.sub("[redacted]", _NUMBERS.sub("[redacted]", text))


def public_notice_text(
    *,
    village_code: str,
    names: list[str],
    kind: str | None,
    risk_types: list[str],
    posted_at: datetime,
    ends_at: datetime,
    purpose: str = "identification",
) -> str:
    """The notice as posted in the village: names and kind of risk only (rules §4.13)."""
    shown = sorted({r for r in risk_types if r not in HEALTH_RISKS})
    if len(shown) < len(set(risk_types)):
        shown.append("other")
    subject = "监测对象 (monitoring object)"
    if purpose == "elimination":
        subject = "风险消除 (risk elimination)"
    lines = [
        f"村级公示 village public notice {village_code}: {subject}",
        f"公示期 notice period: {posted_at:%Y-%m-%d} to {ends_at:%Y-%m-%d}",
        f"户主及成员 names: {', '.join(redact(n) for n in names) or '-'}",
        f"类别 kind: {KIND_NAMES.get(kind or '', 'to be decided')}",
        f"风险类型 kind of risk: {', '.join(shown) or 'other'}",
        "如有异议请在公示期内向村委会反映 (objections to the village committee within the period)",
    ]
    return "\n".join(lines)
