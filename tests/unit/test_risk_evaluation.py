"""rules §1 kinds, §2.3 rigid expenditure, §3 guarantees and consistency, §5.1 green channel."""

from __future__ import annotations

from datetime import date

import pytest

from services.risk.consistency import consistency_flags
from services.risk.evaluation import (
    HouseholdFacts,
    Policy,
    classify_kind,
    evaluate,
    green_channel_trigger,
    guarantee_risks,
    rigid_expenditure,
    within_range,
)
from services.risk.feeds import map_feed
from services.risk.thresholds import ThresholdEntry
from shared.events import Guarantees, Member

YUNNAN_2025 = ThresholdEntry("53", 2025, date(2025, 1, 1), "fixed", 8700, label="Yunnan 2025")
DEHUA_2024 = ThresholdEntry("350526", 2024, date(2024, 1, 1), "dibao_multiple", None, 815, 2)
POLICY = Policy()


def member(capacity: str = "full", *, employed: bool = False, record: bool = False) -> Member:
    return Member(
        person_id_hash="h" + capacity,
        person_id_masked="530102***********1",
        age=40,
        labour_capacity=capacity,  # type: ignore[arg-type]
        employed=employed,
        has_employment_record=record,
    )


@pytest.mark.parametrize(
    ("income", "threshold", "inside"),
    [
        (8699, YUNNAN_2025, True),
        (8700, YUNNAN_2025, False),  # "below" the threshold: equal is outside
        (19559, DEHUA_2024, True),
        (19560, DEHUA_2024, False),
        (None, YUNNAN_2025, None),
        (5000, None, None),
    ],
)
def test_rules_2_1_within_range(income: float | None, threshold: object, inside: bool) -> None:
    got, reason = within_range(income, threshold)  # type: ignore[arg-type]
    assert got is inside
    assert reason.rule == "rules §2.1"


@pytest.mark.parametrize(
    ("facts", "fires"),
    [
        # 40% of 20,000 = 8,000: 8,001 fires, 8,000 does not
        (HouseholdFacts(annual_income=20_000, medical_spending=8_001), 1),
        (HouseholdFacts(annual_income=20_000, medical_spending=8_000), 0),
        # per-capita x members when the household figure is missing: 5,000 x 4 = 20,000
        (HouseholdFacts(per_capita_income=5_000, members=(member(),) * 4,
                        medical_spending=9_000), 1),
        # medical + schooling above last year's income
        (HouseholdFacts(annual_income=100_000, previous_year_income=30_000,
                        medical_spending=10_000, schooling_spending=20_001), 1),
        (HouseholdFacts(annual_income=100_000, previous_year_income=30_000,
                        medical_spending=10_000, schooling_spending=20_000), 0),
        # no income known: a household at the threshold (8,700 a head), one member at least:
        # 40% of 8,700 = 3,480
        (HouseholdFacts(medical_spending=3_481), 1),
        (HouseholdFacts(medical_spending=3_480), 0),
        (HouseholdFacts(medical_spending=100), 0),  # a small claim is no risk
        # three members known: 40% of 26,100 = 10,440
        (HouseholdFacts(members=(member(),) * 3, medical_spending=10_440), 0),
        (HouseholdFacts(members=(member(),) * 3, medical_spending=10_441), 1),
    ],
)  # fmt: skip
def test_rules_2_3_rigid_expenditure(facts: HouseholdFacts, fires: int) -> None:
    reasons = rigid_expenditure(facts, share=0.40, threshold_yuan=8_700)
    assert len(reasons) == fires
    assert all(r.rule == "rules §2.3" for r in reasons)


def test_rules_2_3_no_income_and_no_threshold_any_spending_is_verified() -> None:
    """A region with no threshold configured: nothing to compare with, so a department's
    spending record is kept as a risk to verify rather than dropped."""
    [reason] = rigid_expenditure(HouseholdFacts(medical_spending=100), share=0.40)
    assert reason.threshold is None and "income not known" in reason.detail
    assert rigid_expenditure(HouseholdFacts(), share=0.40) == []


def test_rules_2_3_share_is_configurable() -> None:
    facts = HouseholdFacts(annual_income=20_000, medical_spending=7_000)
    assert rigid_expenditure(facts, share=0.40) == []
    assert rigid_expenditure(facts, share=0.30)[0].threshold == 6_000


@pytest.mark.parametrize(
    ("guarantees", "risk"),
    [
        (Guarantees(food_clothing_secure=False), "other"),
        (Guarantees(compulsory_education_secure=False), "schooling"),
        (Guarantees(medical_insured=False), "illness"),
        (Guarantees(medical_affordable=False), "illness"),
        (Guarantees(house_rating="C"), "housing_unsafe"),
        (Guarantees(house_rating="D"), "housing_unsafe"),
        (Guarantees(drinking_water_safe=False), "water_unsafe"),
    ],
)
def test_rules_3_guarantee_failure_is_a_risk(guarantees: Guarantees, risk: str) -> None:
    assert [r for r, _ in guarantee_risks(guarantees)] == [risk]


@pytest.mark.parametrize(
    "guarantees",
    [Guarantees(), Guarantees(house_rating="A"), Guarantees(house_rating="B"),
     Guarantees(food_clothing_secure=True, drinking_water_safe=True)],
)  # fmt: skip
def test_rules_3_met_or_unchecked_guarantees_are_no_risk(guarantees: Guarantees) -> None:
    assert guarantee_risks(guarantees) == []


@pytest.mark.parametrize(
    ("members", "risk", "rule"),
    [
        # rules §3.1: 2 of 4 able (50% > 25%) flags; 1 of 4 (25%) does not
        ((member("full"), member("partial"), member("none"), member("none")),
         "lack_of_labour", "rules §3.1"),
        ((member("full"), member("none"), member("none"), member("none")), "lack_of_labour", None),
        # rules §3.2: nobody able, or nobody with an employment record
        ((member("none"), member("none")), "unstable_employment", "rules §3.2"),
        ((member("full"), member("none")), "unstable_employment", "rules §3.2"),
        ((member("full", record=True), member("none")), "unstable_employment", None),
    ],
)  # fmt: skip
def test_rules_3_1_and_3_2_consistency(
    members: tuple[Member, ...], risk: str, rule: str | None
) -> None:
    flags = consistency_flags(HouseholdFacts(members=members), [risk])
    assert [f.rule for f in flags] == ([rule] if rule else [])


@pytest.mark.parametrize(("spent", "flagged"), [(0, True), (0.01, False), (5000, False)])
def test_rules_3_3_illness_needs_out_of_pocket_spending(spent: float, flagged: bool) -> None:
    flags = consistency_flags(HouseholdFacts(medical_spending=spent), ["illness"])
    assert (["rules §3.3"] if flagged else []) == [f.rule for f in flags]


def test_rules_3_4_disaster_without_subtype_is_flagged_as_other() -> None:
    assert [f.rule for f in consistency_flags(HouseholdFacts(), ["disaster"])] == ["rules §3.4"]
    assert consistency_flags(HouseholdFacts(disaster_subtype="flood"), ["disaster"]) == []


def test_rules_3_5_a_flagged_signal_is_kept() -> None:
    result = evaluate(
        facts=HouseholdFacts(),
        declared_risk_types=["illness"],
        threshold=YUNNAN_2025,
        policy=POLICY,
    )
    assert result.risk_types == ["illness"]
    assert [f.rule for f in result.flags] == ["rules §3.3"]


@pytest.mark.parametrize(
    ("baseline", "in_range", "rigid", "shock", "kind"),
    [
        ("formerly_poor", True, False, False, "unstable"),
        ("ordinary", True, False, False, "marginal"),
        (None, True, False, False, "marginal"),
        ("formerly_poor", False, True, False, "sudden"),
        ("ordinary", False, False, True, "sudden"),
        ("ordinary", False, False, False, None),
        ("formerly_poor", None, False, False, "unstable"),
    ],
)
def test_rules_1_kinds(
    baseline: str | None, in_range: bool | None, rigid: bool, shock: bool, kind: str | None
) -> None:
    got, reason = classify_kind(
        baseline=baseline, in_range=in_range, rigid=rigid, shock=shock, has_risk=True
    )
    assert got == kind
    assert reason.rule.startswith("rules §1")


def test_rules_1_no_risk_no_kind() -> None:
    kind, _ = classify_kind(
        baseline="ordinary", in_range=True, rigid=False, shock=False, has_risk=False
    )
    assert kind is None


@pytest.mark.parametrize(
    ("facts", "risks", "fires"),
    [
        (HouseholdFacts(loss_amount=10_001), ["disaster"], True),
        (HouseholdFacts(loss_amount=10_000), ["disaster"], False),
        (HouseholdFacts(medical_spending=12_000), ["illness"], True),
        # min(10,000, annual income 6,000): 6,001 is enough
        (HouseholdFacts(annual_income=6_000, loss_amount=6_001), ["accident"], True),
        (HouseholdFacts(annual_income=6_000, loss_amount=6_000), ["accident"], False),
        # not a green-channel risk type
        (HouseholdFacts(loss_amount=50_000), ["business_failure"], False),
        # a verified cadre report of seriously difficult living
        (HouseholdFacts(basic_living_seriously_difficult=True, facts_verified=True),
         ["accident"], True),
        (HouseholdFacts(basic_living_seriously_difficult=True, facts_verified=False),
         ["accident"], False),
    ],
)  # fmt: skip
def test_rules_5_1_green_channel_trigger(
    facts: HouseholdFacts, risks: list[str], fires: bool
) -> None:
    fired, reason = green_channel_trigger(facts, risks, POLICY)
    assert fired is fires
    assert (reason is not None and reason.rule == "rules §5.1") is fires


def test_rules_5_1_trigger_settings_are_configurable() -> None:
    policy = Policy(
        green_channel_risk_types=frozenset({"disaster"}), green_channel_loss_threshold=500
    )
    assert green_channel_trigger(HouseholdFacts(loss_amount=600), ["disaster"], policy)[0]
    assert not green_channel_trigger(HouseholdFacts(medical_spending=600), ["illness"], policy)[0]


def test_rules_5_2_green_evaluation_requests_provisional_help() -> None:
    result = evaluate(
        facts=HouseholdFacts(medical_spending=30_000, loss_amount=20_000, disaster_subtype="flood"),
        declared_risk_types=["illness", "disaster"],
        threshold=YUNNAN_2025,
        policy=POLICY,
    )
    assert result.green_channel
    assert result.provisional_measures == ["medical_aid", "temporary_assistance"]


def test_rules_1_sudden_above_the_range_with_rigid_expenditure() -> None:
    """rules §1, §2.3: income above Yunnan's 8,700 but medical spending 45% of income."""
    result = evaluate(
        facts=HouseholdFacts(
            baseline_status="ordinary",
            per_capita_income=10_000,
            annual_income=40_000,
            medical_spending=18_000,
        ),
        declared_risk_types=["illness"],
        threshold=YUNNAN_2025,
        policy=POLICY,
    )
    assert result.in_range is False
    assert result.rigid_expenditure
    assert result.kind == "sudden"
    rules = [r.rule for r in result.reasons]
    assert "rules §2.1" in rules and "rules §2.3" in rules and "rules §1 sudden" in rules


def test_rules_3_unknown_risk_codes_are_dropped_and_guarantees_add_theirs() -> None:
    result = evaluate(
        facts=HouseholdFacts(guarantees=Guarantees(house_rating="D")),
        declared_risk_types=["not-a-risk"],
        threshold=YUNNAN_2025,
        policy=POLICY,
    )
    assert result.risk_types == ["housing_unsafe"]


@pytest.mark.parametrize(("spent", "risks"), [(100, []), (3_000, []), (13_000, ["illness"])])
def test_rules_2_3_a_medical_record_about_an_unknown_household_is_judged_by_its_amount(
    spent: float, risks: list[str]
) -> None:
    """A department's out-of-pocket record about a household whose income is not known: a
    small claim opens no case; spending that would be rigid for a household at the Yunnan
    line is illness to verify."""
    mapped = map_feed("medical_insurance", {"out_of_pocket_spending": spent})
    got = evaluate(
        facts=HouseholdFacts(medical_spending=mapped.medical_spending),
        declared_risk_types=mapped.risk_types,
        threshold=YUNNAN_2025,
        policy=POLICY,
        rigid_risk_types=mapped.if_rigid,
    )
    assert got.risk_types == risks


def test_rules_2_3_a_medical_record_is_illness_beside_another_risk_when_rigid() -> None:
    """A household with a dangerous house whose medical spending is now rigid: the medical
    record's illness joins housing, and with it the green channel's bar can be met (rules
    §5.1); a declaration of another risk adds no illness of its own."""
    facts = HouseholdFacts(
        annual_income=20_000, medical_spending=25_000, guarantees=Guarantees(house_rating="D")
    )
    common = {"facts": facts, "threshold": YUNNAN_2025, "policy": POLICY}
    got = evaluate(declared_risk_types=[], rigid_risk_types=["illness"], **common)  # type: ignore[arg-type]
    assert got.risk_types == ["housing_unsafe", "illness"] and got.green_channel
    declared = evaluate(declared_risk_types=["accident"], **common)  # type: ignore[arg-type]
    assert declared.risk_types == ["accident", "housing_unsafe"]
