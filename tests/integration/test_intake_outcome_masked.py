"""A rejection's reason reaches the farmer's app without a phone number or a resident ID in
clear (rules §9): an official may type them into the reason, as notify's alerts mask them."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from services.intake.models import submissions
from shared.events import CaseRejected
from shared.identity import check_character
from tests.integration.test_intake_api import APP, running_intake
from tests.integration.test_intake_outcome import VILLAGE, case_event, handle, opened, submit

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
RESIDENT = "53010219700101555" + check_character("53010219700101555")
TYPED = f"收入超过监测标准，电话13800138000，身份证{RESIDENT}"
MASKED = "收入超过监测标准，电话138****8000，身份证530102***********" + RESIDENT[-1]


def rejected(case_id: str) -> CaseRejected:
    return CaseRejected(
        case_id=case_id, village_code=VILLAGE, step="township_review", reason=TYPED,
        actor="township-1",
    )  # fmt: skip


async def test_the_app_reads_the_reason_with_phone_and_id_masked(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        accepted = await submit(http)
        sid, home = accepted["submission_id"], accepted["household_id"]
        await handle(
            app, case_event(opened("case-m", sid), home), case_event(rejected("case-m"), home)
        )
        read = (await http.get(accepted["status_url"], headers=APP)).json()
        async with app.state.runtime.engine.connect() as conn:
            stored = (
                await conn.execute(
                    select(submissions.c.outcome_reason).where(submissions.c.id == sid)
                )
            ).scalar_one()
            # a reason stored in clear before this masking is masked as it is read
            await conn.execute(
                update(submissions).where(submissions.c.id == sid).values(outcome_reason=TYPED)
            )
            await conn.commit()
        again = (await http.get(accepted["status_url"], headers=APP)).json()
    assert read["outcome"] == "rejected" and read["outcome_reason"] == MASKED
    assert stored == MASKED
    assert again["outcome_reason"] == MASKED
    for text in (read["outcome_reason"], stored, again["outcome_reason"]):
        assert "13800138000" not in text and RESIDENT not in text
