"""A village code that names no place is refused at every way in (rules §9.2, §9.4): a
placeholder region (999999) or a province part that is no province-level division would open a
case in a village no county holds, out of every official's reach while its deadline runs."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.test_intake_api import (
    APP,
    ID_A,
    ID_B,
    cadre_report,
    declaration,
    registry_household,
    running_intake,
    token,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
MEDICAL = {"X-API-Key": "dev-medical_insurance-key", "Content-Type": "application/x-ndjson"}
# (code, words of the problem): the placeholder region of rules §9.2, provinces 83 and 00
NOWHERE = [
    ("999999001001", "placeholder"),
    ("123456001001", "placeholder"),
    ("830102001001", "province 83"),
    ("001234001001", "province 00"),
]


def _refused(answer: httpx.Response, field: str, words: str) -> None:
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    assert words in errors[0]["problem"] and "rules §9" in errors[0]["problem"]


async def test_a_code_that_names_no_place_is_refused_everywhere(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    admin = token("admin", "")
    limits = {"rate_per_phone": 100}
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix, **limits) as (http, _):
        for code, words in NOWHERE:
            answer = await http.post(
                "/v1/declarations", json=declaration(village_code=code), headers=APP
            )
            _refused(answer, "village_code", words)
            # an admin covers every code: the refusal is the code's, not the jurisdiction's
            answer = await http.post(
                "/v1/cadre-reports", json=cadre_report(village_code=code), headers=admin
            )
            _refused(answer, "village_code", words)
            sync = {"households": [registry_household(ID_A, 5000, village=code)]}
            answer = await http.post("/v1/registry", json=sync, headers=admin)
            _refused(answer, "households.0.village_code", words)
        # a real village still goes through, on each way in
        answer = await http.post("/v1/declarations", json=declaration(), headers=APP)
        assert answer.status_code == 202, answer.text


async def test_a_feed_row_naming_no_place_is_rejected_alone(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    rows = [
        json.dumps({"resident_id": ID_A, "recorded_on": "2026-10-31",
                    "out_of_pocket_spending": 1, "village_code": code})
        for code, _ in NOWHERE
    ] + [
        json.dumps({"resident_id": ID_B, "recorded_on": "2026-10-31",
                    "out_of_pocket_spending": 1, "village_code": "530102001001"})
    ]  # fmt: skip
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, _):
        answer = await http.post(
            "/v1/feeds/medical_insurance", content="\n".join(rows), headers=MEDICAL
        )
        assert (answer.json()["accepted"], answer.json()["rejected"]) == (1, 4), answer.text
        report = (await http.get(answer.json()["status_url"], headers=MEDICAL)).json()
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (1, "village_code"), (2, "village_code"), (3, "village_code"), (4, "village_code")
    ]  # fmt: skip
    for error, (_, words) in zip(report["errors"], NOWHERE, strict=True):
        assert words in error["problem"], error
