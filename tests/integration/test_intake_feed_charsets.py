"""Feeds in GBK and GB18030 as county data teams export them, and their yes/no cells (rules §8)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from services.intake.models import feed_batches
from tests.conftest import new_database
from tests.integration.test_feed_idempotency import drained, published_lines
from tests.integration.test_intake_api import ID_A, ID_B, running_intake

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
HEALTH = {"X-API-Key": "dev-health-key"}
HEADER = "resident_id,village_code,recorded_on,diagnosis,chronic,serious\r\n"


def health_rows(count: int) -> list[str]:
    """`count` CSV lines in Chinese; every fourth one with an unreadable yes/no cell."""
    out = []
    for n in range(1, count + 1):
        serious = "也许" if n % 4 == 0 else ("是" if n % 2 else "否")
        person = ID_A if n % 2 else ID_B
        out.append(f"{person},530102001001,2026-10-31,糖尿病第{n}例,否,{serious}\r\n")
    return out


async def test_a_gbk_csv_is_read_in_its_charset(kafka_bootstrap: str, topic_prefix: str) -> None:
    """The review's upload: Content-Type `text/csv; charset=gbk` with Chinese rows."""
    body = (HEADER + "".join(health_rows(4))).encode("gbk")
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        for charset in ("gbk", "GB2312", '"gb18030"'):
            headers = HEALTH | {"Content-Type": f"text/csv; charset={charset}"}
            answer = await http.post("/v1/feeds/health", content=body, headers=headers)
            assert answer.status_code == 202, answer.text
            counts = answer.json()
            assert (counts["lines"], counts["accepted"], counts["rejected"]) == (5, 3, 1)
        report = (await http.get(counts["status_url"], headers=HEALTH)).json()
        assert [(e["line"], e["field"]) for e in report["errors"]] == [(5, "serious")]
        rejected = await http.get(f"{counts['status_url']}/rejected", headers=HEALTH)
        # the rejected lines come back as text, in UTF-8 (the export's declared charset)
        assert rejected.headers["content-type"] == "text/csv; charset=utf-8"
        assert rejected.text.splitlines() == [HEADER.strip(), health_rows(4)[3].strip()]
        undeclared = await http.post(
            "/v1/feeds/health", content=body, headers=HEALTH | {"Content-Type": "text/csv"}
        )  # UTF-8 when nothing is declared: GBK bytes are not UTF-8, as before
        assert undeclared.json()["rejected"] == 4
        await drained(app)


@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "big5"])
async def test_a_charset_intake_does_not_read_is_refused_naming_it(
    kafka_bootstrap: str, topic_prefix: str, charset: str
) -> None:
    body = (HEADER + "".join(health_rows(1))).encode("utf-8")
    async with running_intake(kafka=kafka_bootstrap, prefix=topic_prefix) as (http, app):
        headers = HEALTH | {"Content-Type": f"text/csv; charset={charset}", "Idempotency-Key": "k"}
        answer = await http.post("/v1/feeds/health", content=body, headers=headers)
        assert answer.status_code == 415, answer.text
        assert answer.json()["detail"].startswith(f"Content-Type: charset={charset} is not one")
        async with app.state.runtime.uow() as uow:
            batches = await uow.execute(select(func.count()).select_from(feed_batches))
            assert batches.scalar_one() == 0


async def test_an_interrupted_gbk_upload_resumes_and_replays(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Line numbers, the committed lines and the digest are those of the GBK bytes as sent."""
    lines = [HEADER.encode("gbk"), *(line.encode("gbk") for line in health_rows(20))]
    headers = HEALTH | {"Content-Type": "text/csv; charset=gbk", "Idempotency-Key": "health-gbk"}
    database = await new_database()

    async def stream() -> AsyncIterator[bytes]:
        for line in lines:
            yield line[:5]  # cut inside the characters, as a network may
            yield line[5:]

    limit = sum(len(x) for x in lines[:9])
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database, feed_batch_rows=4,
        feed_max_bytes=limit,
    ) as (http, app):  # fmt: skip
        cut = await http.post("/v1/feeds/health", content=stream(), headers=headers)
        assert cut.status_code == 413, cut.text
        batch_id = cut.json()["detail"].split("batch ")[1].split()[0]
        aborted = (await http.get(f"/v1/feeds/batches/{batch_id}", headers=HEALTH)).json()
        await drained(app)
    assert (aborted["status"], aborted["lines"]) == ("aborted", 9)
    async with running_intake(
        kafka=kafka_bootstrap, prefix=topic_prefix, database_url=database, feed_batch_rows=4
    ) as (http, app):
        resumed = await http.post("/v1/feeds/health", content=stream(), headers=headers)
        assert resumed.status_code == 202, resumed.text
        replayed = await http.post("/v1/feeds/health", content=b"".join(lines), headers=headers)
        assert replayed.status_code == 200, replayed.text
        report = (await http.get(f"/v1/feeds/batches/{batch_id}", headers=HEALTH)).json()
        await drained(app)
    answer = resumed.json()
    assert answer["batch_id"] == batch_id and answer["resumed_after_line"] == 9
    assert (answer["lines"], answer["accepted"], answer["rejected"]) == (21, 15, 5)
    assert replayed.json()["batch_id"] == batch_id
    assert [e["line"] for e in report["errors"]] == [5, 9, 13, 17, 21]
    published = await published_lines(kafka_bootstrap, topic_prefix, 2, batch_id)
    assert sorted(published) == [n for n in range(2, 22) if (n - 1) % 4]
    assert set(published.values()) == {1}, "no line is published twice"
