"""Department feeds end to end: exact counts and line numbers, rejected export, CSV headers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from services.demo import free_port, resident_id
from services.intake.models import feed_batches
from shared.events import decode
from tests.conftest import new_database
from tests.integration.test_intake_api import ID_A, ID_B, running_intake, token
from tests.support import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
MEDICAL = {"X-API-Key": "dev-medical_insurance-key", "Content-Type": "application/x-ndjson"}


def feed_signals(county: str) -> float:
    labels = {"source": "intake", "event_type": "FeedRecordReceived", "county": county,
              "kind": "", "channel": "medical_insurance"}  # fmt: skip
    return REGISTRY.get_sample_value("holdline_domain_events_total", labels) or 0.0


def _row(**fields: object) -> str:
    return json.dumps(fields, ensure_ascii=False)


MIXED = "\n".join(
    [
        _row(resident_id=ID_A, recorded_on="2026-10-31", out_of_pocket_spending=23800.5),  # 1 ok
        _row(resident_id=ID_A[:-1] + "9", recorded_on="2026-10-31", out_of_pocket_spending=1),  # 2
        "",  # 3: blank lines are skipped, yet counted
        _row(resident_id=ID_B, recorded_on="2026-10-31", out_of_pocket_spending=-5, x=1),  # 4
        "{not json",  # 5
        _row(resident_id=ID_B, recorded_on="2026-11-01", out_of_pocket_spending=0,
             serious_illness_claim=True, village_code="530102001001"),  # 6 ok
        "[1, 2]",  # 7
        _row(resident_id=ID_B, recorded_on="2099-01-01", out_of_pocket_spending=3),  # 8
        _row(**{"\x00": 1}, resident_id=ID_A, recorded_on="2026-10-31",
             out_of_pocket_spending=1),  # 9: a NUL key must not break the database
    ]
)  # fmt: skip


async def test_mixed_feed_gives_exact_counts_lines_and_publishes_the_valid_rows(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """rules §8: valid rows are published even when others are rejected; errors name the line."""
    counted = {"": feed_signals(""), "530102": feed_signals("530102")}
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix, feed_batch_rows=2) as (
        http,
        _,
    ):  # a commit every two rows: the counts must add up across commits
        answer = await http.post("/v1/feeds/medical_insurance", content=MIXED, headers=MEDICAL)
        assert answer.status_code == 202, answer.text
        batch = answer.json()
        assert (batch["accepted"], batch["rejected"], batch["lines"]) == (2, 6, 9)
        report = (await http.get(batch["status_url"], headers=MEDICAL)).json()
        rejected = await http.get(f"{batch['status_url']}/rejected", headers=MEDICAL)
    assert report["status"] == "complete"
    errors = [(e["line"], e["field"]) for e in report["errors"]]
    assert errors == [
        (2, "resident_id"),
        (4, "out_of_pocket_spending"),
        (4, "x"),
        (5, "line"),
        (7, "line"),
        (8, "recorded_on"),
        (9, "\ufffd"),
    ]
    problems = {(e["line"], e["field"]): e["problem"] for e in report["errors"]}
    assert "check character" in problems[(2, "resident_id")]
    assert problems[(4, "x")] == "unknown field"
    assert "future" in problems[(8, "recorded_on")]
    lines = MIXED.split("\n")
    assert rejected.text.splitlines() == [lines[i - 1] for i in (2, 4, 5, 7, 8, 9)]
    # each commit (two rows here) sends its valid rows as one slice event
    records = await read_topic(kafka_bootstrap, f"{topic_prefix}signals.v1", expect=2)
    slices = [decode(r.value) for r in records]
    assert {e.event_type for e in slices} == {"FeedRecordsReceived"}
    rows = sorted((row for e in slices for row in e.payload.records), key=lambda r: r.line)
    assert [r.line for r in rows] == [1, 6]
    assert rows[0].facts == {
        "out_of_pocket_spending": 23800.5, "total_spending": None, "serious_illness_claim": False
    }  # fmt: skip
    assert all(e.payload.batch_id == batch["batch_id"] for e in slices)
    # each valid row is one department signal on the dashboards, by county (row 1 has none)
    assert feed_signals("") - counted[""] == 1
    assert feed_signals("530102") - counted["530102"] == 1
    assert all(ID_A not in r.value.decode() and ID_B not in r.value.decode() for r in records)


CSV = (
    "\ufeffresident_id,recorded_on,house_rating,village_code\r\n"
    f"{ID_A},2026-09-30,D,530102001001\r\n"
    f"{ID_B},2026-09-30,E,\r\n"
    f"{ID_B},2026-09-30\r\n"
    f'"{ID_B}",2026-09-30,C,"530102001002"\r\n'
)


async def test_csv_feed_and_header_checks(kafka_bootstrap: str, topic_prefix: str) -> None:
    headers = {"X-API-Key": "dev-housing-key", "Content-Type": "text/csv; charset=utf-8"}
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, _):
        answer = await http.post("/v1/feeds/housing", content=CSV.encode(), headers=headers)
        assert answer.status_code == 202, answer.text
        assert (answer.json()["accepted"], answer.json()["rejected"]) == (2, 2)
        report = (await http.get(answer.json()["status_url"], headers=token("county"))).json()
        assert [(e["line"], e["field"]) for e in report["errors"]] == [
            (3, "house_rating"), (4, "line")
        ]  # fmt: skip
        rejected = await http.get(f"{answer.json()['status_url']}/rejected", headers=headers)
        assert rejected.headers["content-type"].startswith("text/csv")
        assert rejected.text.splitlines()[0] == "resident_id,recorded_on,house_rating,village_code"
        assert len(rejected.text.splitlines()) == 3
        bad_header = "resident_id,recorded_on,colour\n"
        refused = await http.post("/v1/feeds/housing", content=bad_header, headers=headers)
        assert refused.status_code == 422
        assert refused.json()["errors"] == [
            {"field": "colour", "problem": "unknown field"},
            {"field": "house_rating", "problem": "required column is missing"},
        ]
        wrong_type = await http.post(
            "/v1/feeds/housing", content=CSV, headers=headers | {"Content-Type": "text/plain"}
        )
        assert wrong_type.status_code == 415
        assert wrong_type.json()["detail"].startswith("Content-Type:")
        too_long = "x" * 20_000 + "\n" + CSV.split("\r\n", 1)[1]
        long_answer = await http.post(
            "/v1/feeds/housing", content=too_long,
            headers=headers | {"Content-Type": "application/x-ndjson"},
        )  # fmt: skip
        assert long_answer.status_code == 202
        long_report = (await http.get(long_answer.json()["status_url"], headers=headers)).json()
        assert long_report["errors"][0] == {
            "line": 1, "field": "line", "problem": "is longer than 16384 bytes"
        }  # fmt: skip


async def test_cli_streams_a_file_and_prints_the_batch_report(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """`holdline feed load` against a real intake process; a bad file is a message, not a trace."""
    import random

    rng = random.Random(3)
    feed = tmp_path / "water.ndjson"
    rows = [
        _row(resident_id=resident_id(rng, "530102"), recorded_on="2026-10-01",
             supply_interrupted_days=n % 9, water_quality_safe=n % 4 != 0)
        for n in range(300)
    ] + [_row(resident_id="123", recorded_on="2026-10-01")]  # fmt: skip
    feed.write_text("\n".join(rows) + "\n")
    port = free_port()
    env = os.environ | {
        "HOLDLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HOLDLINE_TOPIC_PREFIX": topic_prefix,
        "HOLDLINE_INTAKE_PORT": str(port),
        "HOLDLINE_INTAKE_DATABASE_URL": await new_database(),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "intake"],
        env=env, stdout=(tmp_path / "intake.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-c", "from services.intake.cli import feed_app; feed_app()", "load"]
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                try:
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.3)
        done = subprocess.run(
            [*cli, str(feed), "--department", "water", "--url", url],
            capture_output=True, text=True, timeout=120, env=env | {"COLUMNS": "160"},
        )  # fmt: skip
        # received with one row rejected: exit status 3, not a clean 0
        assert done.returncode == 3, done.stdout + done.stderr
        assert "accepted" in done.stdout and "300" in done.stdout
        assert "/v1/feeds/water/batches/" in done.stdout and "/results" in done.stdout
        assert "301" in done.stdout and "resident_id" in done.stdout  # the error listing
        again = subprocess.run(  # the same command again: the key comes from the file
            [*cli, str(feed), "--department", "water", "--url", url],
            capture_output=True, text=True, timeout=120, env=env | {"COLUMNS": "160"},
        )  # fmt: skip
        assert again.returncode == 3, again.stdout + again.stderr
        assert "already received" in again.stdout
        uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        batches = [set(re.findall(uuid, out)) for out in (done.stdout, again.stdout)]
        assert len(batches[0]) == 1 and batches[0] == batches[1]
        wrong = subprocess.run(
            [*cli, str(feed), "--department", "housing", "--url", url, "--api-key",
             "dev-water-key"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert wrong.returncode == 1
        assert "403" in wrong.stderr and "Traceback" not in wrong.stderr
        missing = subprocess.run(
            [*cli, str(tmp_path / "nope.csv"), "--department", "water", "--url", url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert missing.returncode == 1 and "does not exist" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        server.terminate()
        server.wait(30)


async def test_an_upload_over_the_size_limit_stops_and_says_so(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A streamed body (no Content-Length) is cut at the limit; the batch shows it was aborted."""
    row = _row(resident_id=ID_A, recorded_on="2026-10-31", out_of_pocket_spending=1) + "\n"

    async def body() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield row.encode()

    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, feed_max_bytes=len(row) * 10, feed_batch_rows=4
    ) as (http, _):
        answer = await http.post("/v1/feeds/medical_insurance", content=body(), headers=MEDICAL)
        assert answer.status_code == 413, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith("body:")
        batch_id = detail.split("batch ")[1].split()[0]
        report = (await http.get(f"/v1/feeds/batches/{batch_id}", headers=MEDICAL)).json()
    assert report["status"] == "aborted"
    assert report["accepted"] == 10 and "limit" in report["detail"]


async def test_a_nul_in_a_batch_id_is_refused_as_input(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """PostgreSQL text cannot hold NUL: the path is refused with a 422 naming it, never a 500."""
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, _):
        for path in ("/v1/feeds/batches/a%00b", "/v1/feeds/batches/a%00b/rejected"):
            answer = await http.get(path, headers=MEDICAL)
            assert answer.status_code == 422, answer.text
            assert "NUL" in answer.text


HEALTH = {"X-API-Key": "dev-health-key", "Content-Type": "text/csv"}
MULTILINE = (
    "resident_id,recorded_on,diagnosis,village_code\r\n"
    f'{ID_A},2026-10-01,"acute leukemia\r\nrelapse, second admission",530102001001\r\n'  # 2-3
    f'{ID_B},2099-10-01,"two\nlines, one record",\r\n'  # 4-5: rejected whole, by its first line
    f"{ID_B},2026-10-02,flu,５３０１０２００１００１\r\n"  # 6: fullwidth digits
    f"{ID_B},2026-10-03,cold,\r\n"  # 7
)


async def test_a_csv_value_with_newlines_arrives_whole(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A quoted CSV value may hold newlines (csv module semantics): the row is accepted with the
    whole value, never cut at the newline, and errors name the line the record starts on."""
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, _):

        async def chunks() -> AsyncIterator[bytes]:
            data = MULTILINE.encode()
            for start in range(0, len(data), 13):  # records cut across chunks
                yield data[start : start + 13]

        answer = await http.post("/v1/feeds/health", content=chunks(), headers=HEALTH)
        assert answer.status_code == 202, answer.text
        batch = answer.json()
        assert (batch["accepted"], batch["rejected"], batch["lines"]) == (2, 2, 7)
        report = (await http.get(batch["status_url"], headers=HEALTH)).json()
        rejected = await http.get(f"{batch['status_url']}/rejected", headers=HEALTH)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (4, "recorded_on"), (6, "village_code")
    ]  # fmt: skip
    assert "12-digit" in report["errors"][1]["problem"]
    sent = MULTILINE.split("\r\n")
    assert rejected.text == "\n".join([sent[0], sent[3], sent[4], ""])
    records = await read_topic(kafka_bootstrap, f"{topic_prefix}signals.v1", expect=1)
    rows = sorted((row for r in records for row in decode(r.value).payload.records),
                  key=lambda row: row.line)  # fmt: skip
    assert [(r.line, r.facts["diagnosis"]) for r in rows] == [
        (2, "acute leukemia\r\nrelapse, second admission"), (7, "cold")
    ]  # fmt: skip


async def test_fullwidth_digits_are_not_a_region_code_in_a_json_feed(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    rows = [
        _row(resident_id=ID_A, recorded_on="2026-10-31", out_of_pocket_spending=1,
             village_code="５３０１０２００１００１"),
        _row(resident_id=ID_A, recorded_on="2026-10-31", out_of_pocket_spending=1,
             village_code="٥٣٠١٠٢٠٠١٠٠١"),
        _row(resident_id=ID_A, recorded_on="2026-10-31", out_of_pocket_spending=1,
             village_code="530102001001"),
    ]  # fmt: skip
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, _):
        answer = await http.post(
            "/v1/feeds/medical_insurance", content="\n".join(rows), headers=MEDICAL
        )
        assert (answer.json()["accepted"], answer.json()["rejected"]) == (1, 2), answer.text
        report = (await http.get(answer.json()["status_url"], headers=MEDICAL)).json()
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (1, "village_code"), (2, "village_code")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("media", "body", "detail"),
    [
        ("application/x-ndjson", b"", "body: empty: the upload holds no line"),
        ("application/x-ndjson", b"\n \r\n\n", "body: empty: the upload holds no line"),
        ("text/csv", b"", "body: empty: a CSV feed starts with its header line"),
        ("text/csv", b"\r\n", "body: empty: a CSV feed starts with its header line"),
    ],
)
async def test_an_empty_upload_is_refused_and_leaves_no_batch(
    kafka_bootstrap: str, topic_prefix: str, media: str, body: bytes, detail: str
) -> None:
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        headers = {"X-API-Key": "dev-housing-key", "Content-Type": media}
        for key in (None, "empty-1"):
            sent = headers | ({"Idempotency-Key": key} if key else {})
            answer = await http.post("/v1/feeds/housing", content=body, headers=sent)
            assert answer.status_code == 422, answer.text
            assert answer.json() == {"detail": detail}
        async with app.state.runtime.uow() as uow:
            stored = (await uow.execute(select(func.count()).select_from(feed_batches))).scalar()
        assert stored == 0
        # a file with a header and no rows says so: it is a complete, empty batch
        header = b"resident_id,recorded_on,house_rating\n"
        answer = await http.post("/v1/feeds/housing", content=header, headers=headers | {
            "Content-Type": "text/csv"})  # fmt: skip
        assert answer.status_code == 202 and answer.json()["lines"] == 1, answer.text
