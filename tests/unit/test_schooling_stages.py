"""One schooling-stage vocabulary (rules §1) from intake's inputs to assistance's plan (§6.6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import get_args
from uuid import uuid4

import pytest

from services.assistance.catalogue import load_catalogue
from services.assistance.planner import VOCATIONAL, build_plan
from services.intake.feeds import EducationRow, FeedParser
from services.intake.handlers import member_event
from services.intake.pii import Vault
from services.intake.schemas import CadreReportCreate, MemberIn
from shared.events import CadreReportSubmitted, Member, SchoolingStage, decode

STAGES = set(get_args(SchoolingStage))
STUDENT_ID = "530102200801010013"  # born 2008: a student's age
CAT = load_catalogue()


def test_intake_inputs_and_the_catalogue_share_the_vocabulary() -> None:
    assert "higher_vocational" in STAGES
    member_stages = set(get_args(get_args(MemberIn.model_fields["schooling_stage"].annotation)[0]))
    assert member_stages == STAGES
    assert set(get_args(EducationRow.model_fields["schooling_stage"].annotation)) == STAGES
    for spec in CAT.measures.values():
        assert spec.schooling_stages is None or spec.schooling_stages <= STAGES, spec.code
    # rules §6.6: the catalogue's Rain-and-Dew stages are the planner's
    assert CAT.measures["yulu_plan_subsidy"].schooling_stages == set(VOCATIONAL)


def test_a_cadre_report_takes_a_higher_vocational_student() -> None:
    report = CadreReportCreate.model_validate(
        {"village_code": "530102001001", "risk_types": ["schooling"],
         "members": [{"resident_id": STUDENT_ID, "schooling_stage": "higher_vocational"}]}
    )  # fmt: skip
    member = member_event(report.members[0], Vault("k"))
    assert member.schooling_stage == "higher_vocational"


def test_an_unknown_stage_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError) as caught:
        MemberIn.model_validate({"resident_id": STUDENT_ID, "schooling_stage": "university"})
    assert "schooling_stage" in str(caught.value) and "higher_vocational" in str(caught.value)


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_an_education_feed_takes_a_higher_vocational_student(fmt: str) -> None:
    parser = FeedParser("education", fmt, 4096)  # type: ignore[arg-type]
    if fmt == "csv":
        body = "resident_id,recorded_on,schooling_stage\n"
        body += f"{STUDENT_ID},2026-10-01,higher_vocational\n"
    else:
        row = {"resident_id": STUDENT_ID, "recorded_on": "2026-10-01",
               "schooling_stage": "higher_vocational"}  # fmt: skip
        body = json.dumps(row) + "\n"
    (parsed,) = list(parser.feed(body.encode()))
    assert parsed.problems == [] and parsed.row is not None


def _student(stage: str) -> Member:
    return Member(person_id_hash="h2", person_id_masked="5301***2", age=19,
                  labour_capacity="none", schooling_stage=stage)  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "measure"),
    [("vocational", "yulu_plan_subsidy"), ("higher_vocational", "yulu_plan_subsidy"),
     ("higher", "education_aid"), ("senior", "education_aid")],
)  # fmt: skip
def test_rules_6_6_rain_and_dew_for_secondary_and_higher_vocational_students_only(
    stage: str, measure: str
) -> None:
    worker = Member(person_id_hash="h1", person_id_masked="5301***1", age=45)
    plan = build_plan(catalogue=CAT, risk_types=["schooling"], members=[worker, _student(stage)])
    student_measures = [m.code for m in plan if m.person_id_hash == "h2"]
    assert student_measures == [measure]


@pytest.mark.parametrize("stage", ["vocational", "higher", "senior", "a stage not known yet"])
def test_an_event_with_an_old_or_unknown_stage_still_decodes(stage: str) -> None:
    member = {"person_id_hash": "h", "person_id_masked": "m", "age": 17, "schooling_stage": stage}
    envelope = {
        "event_id": str(uuid4()), "event_type": "CadreReportSubmitted", "schema_version": "1.3",
        "occurred_at": datetime(2026, 5, 1, tzinfo=UTC).isoformat(), "household_id": "hh-1",
        "source": "intake", "correlation_id": "s-1",
        "payload": {"submission_id": "s-1", "cadre_id": "c-1", "village_code": "530102001001",
                    "members": [member]},
    }  # fmt: skip
    payload = decode(json.dumps(envelope).encode()).payload
    assert isinstance(payload, CadreReportSubmitted)
    assert payload.members[0].schooling_stage == stage
