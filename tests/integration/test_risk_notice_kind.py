"""The kind the village appraises (rules §1, §4.4, §4.13): once the home verification records
the household's income, the case's kind and its public notice are those identification will
decide, not the provisional reading of the case's opening; and a rejection where no role may
reject is refused for the stage (rules §4.7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from services.risk import handlers
from shared.events import DeclarationSubmitted
from tests.integration.test_risk_workflow_api import VILLAGE, Platform, risk_platform

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def risk(pg_url: str) -> AsyncIterator[Platform]:
    async with risk_platform(pg_url) as built:
        yield built


async def _declared(risk: Platform, household: str, medical: float) -> str:
    """An illness declaration with no income known: the case opens on the provisional kind."""
    await risk.signal(
        handlers.on_declaration,
        DeclarationSubmitted(
            submission_id=f"s-{household}", declarant_name="张三",
            declarant_id_masked="530102***********1", village_code=VILLAGE,
            risk_types=["illness"], medical_spending=medical,
        ),
        household,
    )  # fmt: skip
    return await risk.open_case_id(household)


async def _verified(risk: Platform, case_id: str, **income: float) -> None:
    for role, action, body in (
        ("village", "start_home_verification", {}),
        ("village", "complete_home_verification", {"signed_form": True, **income}),
        ("county", "complete_data_comparison", {}),
        ("village", "post_public_notice", {}),
    ):
        answer = await risk.act(case_id, role, action, **body)  # type: ignore[arg-type]
        assert answer.status_code == 200, answer.text


async def test_rules_1_the_notice_shows_the_kind_the_verified_income_decides(
    risk: Platform,
) -> None:
    """The reviewer's household: 30,000 yuan of medical spending, then 20,000 per head and
    60,000 a year verified at home. Above the 8,700 threshold, with medical spending above 40%
    of the income (rules §2.3): sudden, on the case and its notice before the appraisal, and
    at identification."""
    case_id = await _declared(risk, "hh-a3", 30000)
    url = f"/v1/cases/{case_id}"
    opened = (await risk.http.get(url, headers=risk.auth("village"))).json()
    assert opened["kind"] == "marginal"  # income unknown: provisional (rules §1)

    await _verified(risk, case_id, per_capita_income=20000, annual_income=60000)
    case = (await risk.http.get(url, headers=risk.auth("village"))).json()
    assert case["kind"] == "sudden"
    rules = [r["rule"] for r in case["reasons"]]
    assert "rules §1 sudden" in rules and "rules §1 marginal" not in rules  # no stale reading
    assert [r["value"] for r in case["reasons"] if r["rule"] == "rules §2.1"] == [20000]
    assert "rules §2.3" in rules
    notice = await risk.http.get(f"{url}/public-notice", headers=risk.auth("village"))
    assert "突发严重困难户" in notice.json()["text"] and "边缘易致贫户" not in notice.json()["text"]

    risk.clock.advance(timedelta(days=risk.settings.public_notice_days))
    for role, action in (
        ("village", "complete_village_appraisal"),
        ("township", "approve_township_review"),
        ("county", "approve_county"),
    ):
        answer = await risk.act(case_id, role, action)  # type: ignore[arg-type]
        assert answer.status_code == 200, answer.text
    assert answer.json()["kind"] == "sudden" and answer.json()["status"] == "identified"
    [identified] = await risk.events("HouseholdIdentified")
    assert identified.payload.kind == "sudden"
    identified_rules = [r.rule for r in identified.payload.reasons]
    assert identified_rules.count("rules §1 sudden") == 1
    assert "rules §1 marginal" not in identified_rules


async def test_rules_1_identification_still_reads_the_facts_at_the_end(risk: Platform) -> None:
    """The kind read at the home verification is not final: income corrected at the county's
    approval decides the identified kind (here back inside the range: marginal)."""
    case_id = await _declared(risk, "hh-a3b", 30000)
    await _verified(risk, case_id, per_capita_income=20000, annual_income=60000)
    risk.clock.advance(timedelta(days=risk.settings.public_notice_days))
    assert (await risk.act(case_id, "village", "complete_village_appraisal")).status_code == 200
    assert (await risk.act(case_id, "township", "approve_township_review")).status_code == 200
    approved = await risk.act(
        case_id, "county", "approve_county", per_capita_income=5000, annual_income=15000
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["kind"] == "marginal"
    [identified] = await risk.events("HouseholdIdentified")
    assert identified.payload.kind == "marginal"


async def test_rules_1_verified_income_above_the_range_without_hardship_fits_no_kind(
    risk: Platform,
) -> None:
    """Small medical spending and an income above the range: no kind the notice could name
    (it says to be decided), and the county is told to reject rather than identify."""
    case_id = await _declared(risk, "hh-a3c", 3000)
    await _verified(risk, case_id, per_capita_income=20000, annual_income=60000)
    case = (await risk.http.get(f"/v1/cases/{case_id}", headers=risk.auth("village"))).json()
    assert case["kind"] is None
    notice = await risk.http.get(f"/v1/cases/{case_id}/public-notice", headers=risk.auth("village"))
    assert "to be decided" in notice.json()["text"]


@pytest.mark.parametrize("role", ["village", "township", "county"])
async def test_rules_4_7_no_rejection_at_risk_discovered_for_any_role(
    risk: Platform, role: str
) -> None:
    case_id = await _declared(risk, "hh-a1", 3000)
    answer = await risk.act(case_id, role, "reject", reason="x")  # type: ignore[arg-type]
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("action: a case cannot be rejected at risk_discovered")
    assert "needs" not in detail
