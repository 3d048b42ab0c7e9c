"""rules §8: each department's feed facts mapped to risk types and household facts."""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID, uuid5

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table

from services.risk.feeds import map_feed
from services.risk.signal_batch import uuid5_text
from services.risk.signals import apply_signal, from_feed
from shared.auth import DEPARTMENTS
from shared.db import _copy_values


@pytest.mark.parametrize(
    ("department", "facts", "risks"),
    [
        # spending alone is judged by the evaluation (rules §2.3), not by its department
        ("medical_insurance", {"out_of_pocket": 12000}, []),
        ("medical_insurance", {"out_of_pocket": "0", "serious_illness_claim": "true"}, ["illness"]),
        ("medical_insurance", {"out_of_pocket": 0}, []),
        ("health", {"diagnosis_serious": True}, ["illness"]),
        ("health", {"diagnosis_chronic": 1}, ["illness"]),
        ("health", {}, []),
        ("education", {"dropout": True}, ["schooling"]),
        ("education", {"student_aid": True}, []),
        ("housing", {"house_rating": "C"}, ["housing_unsafe"]),
        ("housing", {"house_rating": "d"}, ["housing_unsafe"]),
        ("housing", {"house_rating": "B"}, []),
        ("water", {"supply_disrupted": True}, ["water_unsafe"]),
        ("water", {"quality_unsafe": "yes"}, ["water_unsafe"]),
        ("water", {}, []),
        ("human_resources", {"job_lost": True}, ["unstable_employment"]),
        ("human_resources", {"employed": True}, []),
        ("civil_affairs", {"dibao": True}, []),  # context only
        ("agriculture", {"project_failed": True, "loss_amount": 8000}, ["business_failure"]),
        ("public_security", {"death": True}, []),  # membership only
        ("disabled_persons_federation", {"disability_grade": 2}, ["disability"]),
        ("disabled_persons_federation", {"disability_grade": 9}, []),
        ("emergency_management", {"disaster_type": "flood", "loss_amount": 30000}, ["disaster"]),
        ("emergency_management", {"disaster_type": "accident", "loss_amount": 1}, ["accident"]),
        # the field names intake publishes (services/intake/feeds.py)
        ("medical_insurance", {"out_of_pocket_spending": 23800.5}, []),
        ("health", {"diagnosis": "x", "chronic": True, "serious": False}, ["illness"]),
        ("education", {"schooling_stage": "junior", "dropped_out": True}, ["schooling"]),
        ("water", {"supply_interrupted_days": 3, "water_quality_safe": True}, ["water_unsafe"]),
        ("water", {"supply_interrupted_days": 0, "water_quality_safe": False}, ["water_unsafe"]),
        ("water", {"supply_interrupted_days": 0, "water_quality_safe": True}, []),
        ("human_resources", {"employment_status": "unemployed"}, ["unstable_employment"]),
        (
            "agriculture",
            {"project": "tea", "failed": True, "loss_amount": 9000},
            ["business_failure"],
        ),
        ("agriculture", {"project": "tea", "failed": False}, []),
        ("disabled_persons_federation", {"disability_grade": 3, "change": "revoked"}, []),
        (
            "emergency_management",
            {"event": "disaster", "disaster_subtype": "drought"},
            ["disaster"],
        ),
        ("emergency_management", {"event": "accident", "loss_amount": 3000}, ["accident"]),
    ],
)
def test_rules_8_department_facts_to_risk_types(
    department: str, facts: dict[str, Any], risks: list[str]
) -> None:
    assert map_feed(department, facts).risk_types == risks


def test_rules_8_every_department_has_a_mapping() -> None:
    for department in DEPARTMENTS:
        mapped = map_feed(department, {})
        assert all("unknown department" not in r.detail for r in mapped.reasons), department


def test_rules_3_4_unknown_disaster_subtype_recorded_as_other() -> None:
    mapped = map_feed("emergency_management", {"disaster_type": "volcano", "loss_amount": 5})
    assert mapped.disaster_subtype == "other"


def test_rules_8_civil_affairs_sets_social_security_context() -> None:
    assert map_feed("civil_affairs", {"tekun": True}).social_security is True
    assert map_feed("civil_affairs", {"assistance_status": "dibao"}).social_security is True
    assert map_feed("civil_affairs", {"assistance_status": "none"}).social_security is False
    assert map_feed("public_security", {"change": "death"}).member_died
    assert map_feed("civil_affairs", {}).social_security is False


def test_rules_8_unreadable_amounts_are_zero_not_errors() -> None:
    assert map_feed("medical_insurance", {"out_of_pocket": "n/a"}).medical_spending == 0
    assert map_feed("medical_insurance", {"out_of_pocket": -5}).medical_spending == 0


def test_rules_8_housing_and_water_feed_the_guarantees() -> None:
    from datetime import date

    from services.risk.evaluation import HouseholdFacts
    from shared.events import FeedRecordReceived

    record = FeedRecordReceived(
        batch_id="b1",
        department="housing",
        line=1,
        person_id_hash="p1",
        person_id_masked="530102***********1",
        recorded_on=date(2026, 1, 1),
        facts={"house_rating": "D"},
    )
    facts = apply_signal(HouseholdFacts(), from_feed(record))
    assert facts.guarantees.house_rating == "D"


def test_a_feed_records_id_is_the_name_based_uuid_of_its_line_under_its_slice() -> None:
    """Records of a redelivered slice must get the same ids as before, whatever computes them."""
    rng = random.Random(7)
    for _ in range(2_000):
        slice_id = UUID(int=rng.getrandbits(128))
        line = str(rng.randint(1, 10_000_000))
        assert uuid5_text(slice_id, line) == str(uuid5(slice_id, line))


def test_copy_rows_take_the_columns_in_order_with_json_columns_as_text() -> None:
    metadata = MetaData()
    table = Table(
        "t", metadata, Column("id", String), Column("payload", JSON), Column("n", Integer)
    )
    row = {"n": 3, "payload": {"a": [1, "二"]}, "id": "x"}
    assert _copy_values(table, ["id", "payload", "n"])(row) == ("x", '{"a":[1,"二"]}', 3)
    assert _copy_values(table, ["n", "id"])(row) == (3, "x")
    assert _copy_values(table, ["payload"])(row) == ('{"a":[1,"二"]}',)
    assert _copy_values(table, ["id"])(row) == ("x",)


@pytest.mark.parametrize(
    ("stage", "compulsory"),
    [("primary", True), ("junior", True), ("senior", False), ("vocational", False),
     ("higher", False), ("preschool", False), (None, True)],
)  # fmt: skip
def test_rules_3_only_a_compulsory_school_dropout_fails_the_education_guarantee(
    stage: str | None, compulsory: bool
) -> None:
    """Compulsory education is ages 6-15 (primary and junior school); a dropout later on is a
    schooling risk to look at, not a failed guarantee that would block risk elimination. A
    record without its stage is taken as compulsory."""
    facts: dict[str, Any] = {"dropped_out": True}
    if stage is not None:
        facts["schooling_stage"] = stage
    mapped = map_feed("education", facts)
    assert mapped.risk_types == ["schooling"]
    assert (mapped.guarantees == {"compulsory_education_secure": False}) is compulsory
