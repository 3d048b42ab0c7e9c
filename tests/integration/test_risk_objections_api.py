"""Objections to the public notice through the API, on PostgreSQL (rules §4.4, §4.13): the
village records each while the case stands at the appraisal, the case shows how many, its
history keeps them with phones and IDs masked, and the appraisal then says how they were
settled."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.test_risk_workflow_api import ELDER, WORKER, risk_platform

pytestmark = [pytest.mark.postgres]


async def test_rules_4_4_objections_are_recorded_and_settled_before_the_review(
    pg_url: str,
) -> None:
    async with risk_platform(pg_url) as platform:
        await platform.register("hh-o1", [WORKER, ELDER], income=5200)
        await platform.declare("hh-o1", ["illness"], medical_spending=3000)
        case_id = await platform.open_case_id("hh-o1")
        for role, action, body in (
            ("village", "start_home_verification", {}),
            ("village", "complete_home_verification", {"signed_form": True}),
            ("county", "complete_data_comparison", {}),
        ):
            assert (await platform.act(case_id, role, action, **body)).status_code == 200  # type: ignore[arg-type]

        early = await platform.act(case_id, "village", "record_objection", reason="x")
        assert early.status_code == 409 and early.json()["detail"].startswith("action:")
        posted = await platform.act(case_id, "village", "post_public_notice")
        assert "record_objection" in posted.json()["next_actions"]

        said = "村民李四（电话13800138000，身份证530102195003150018）反映其家有车"
        objected = await platform.act(case_id, "village", "record_objection", reason=said)
        assert objected.status_code == 200, objected.text
        detail = objected.json()
        assert detail["objections"] == 1 and detail["stage"] == "village_appraisal"
        note = detail["history"][-1]["note"]
        assert detail["history"][-1]["action"] == "record_objection"
        assert "13800138000" not in note and "530102195003150018" not in note and "有车" in note

        refused = await platform.act(case_id, "township", "record_objection", reason="x")
        assert refused.status_code == 403

        platform.clock.advance(timedelta(days=platform.settings.public_notice_days))
        unsaid = await platform.act(case_id, "village", "complete_village_appraisal")
        assert unsaid.status_code == 409 and unsaid.json()["detail"].startswith("note: 1 ")
        settled = await platform.act(
            case_id,
            "village",
            "complete_village_appraisal",
            note="经核实，车辆为亲属所有，异议不成立",
        )
        assert settled.status_code == 200, settled.text
        assert settled.json()["stage"] == "township_review"
        assert settled.json()["history"][-1]["note"].startswith("经核实")
