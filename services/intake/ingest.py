"""Feed batches: stream rows in, validate each, commit accepted events and errors in chunks."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4

import orjson
from sqlalchemy import func, insert, select, update

from services.intake.feeds import FeedFormat, FeedParser, Parsed, facts_of
from services.intake.models import feed_batches, feed_errors
from services.intake.outbox import record_many
from services.intake.pii import Vault, household_key
from shared.clock import Clock
from shared.db import UnitOfWork, bulk_insert, utc
from shared.events import SCHEMA_VERSION
from shared.identity import mask_resident_id
from shared.metrics import count_feed_rows


def shard_of(household_id: str, shards: int) -> int:
    """The slice stream a household's feed rows travel in (stable across batches and runs)."""
    return zlib.crc32(household_id.encode()) % shards


def slice_key(shard: int) -> str:
    """The Kafka key of a shard's slices: every feed's rows of a household share a partition."""
    return f"feed-shard-{shard:03d}"


class FeedTooLarge(Exception):
    """The upload passed the configured size limit; what came before it stays committed."""


@dataclass
class BatchCounts:
    """A batch's running totals and the rows waiting for the next commit."""

    batch_id: str
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    created: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    pending_accepted: int = 0
    pending_rejected: int = 0


@dataclass(frozen=True)
class FeedContext:
    """What a feed upload needs from the service, passed in by the router."""

    department: str
    fmt: FeedFormat
    uow_factory: Callable[[], UnitOfWork]
    vault: Vault
    clock: Clock
    topic: str
    batch_rows: int
    max_bytes: int
    max_line_bytes: int
    after_commit: Callable[[], None]
    slice_records: int = 500
    shards: int = 16


async def ingest_feed(*, ctx: FeedContext, chunks: AsyncIterator[bytes]) -> BatchCounts:
    """Validate a feed row by row; commit every `batch_rows` rows (events, errors, counts).

    Memory holds one chunk, one line and at most `batch_rows` pending rows, whatever the size
    of the upload (rules §8.3: a monthly feed can reach millions of rows).
    """
    parser = FeedParser(ctx.department, ctx.fmt, ctx.max_line_bytes)
    counts = BatchCounts(batch_id=str(uuid4()))
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > ctx.max_bytes:
                raise FeedTooLarge(
                    f"body: exceeds the feed limit of {ctx.max_bytes} bytes; batch "
                    f"{counts.batch_id} stopped there"
                )
            now = ctx.clock.now()
            for parsed in parser.feed(chunk):
                _take(ctx, counts, parsed, now)
                if len(counts.records) + len(counts.errors) >= ctx.batch_rows:
                    await _flush(ctx, counts, parser)
        for parsed in parser.finish():
            _take(ctx, counts, parsed, ctx.clock.now())
    except BaseException as exc:
        if counts.created or isinstance(exc, FeedTooLarge):
            # keep what was committed visible, and say why the batch stopped
            await _flush(ctx, counts, parser, status="aborted", detail=str(exc) or repr(exc))
        raise
    counts.lines = parser.lines
    await _flush(ctx, counts, parser, status="complete")
    return counts


def _take(ctx: FeedContext, counts: BatchCounts, parsed: Parsed, now: datetime) -> None:
    if parsed.row is None:
        ciphertext = (
            ctx.vault.encrypt(parsed.raw.decode("utf-8", "replace")) if parsed.raw else None
        )
        for n, (name, problem) in enumerate(parsed.problems):
            counts.errors.append(
                {"batch_id": counts.batch_id, "line": parsed.line, "field": _text(name, 200),
                 "problem": _text(problem, 500), "row_ciphertext": ciphertext if n == 0 else None}
            )  # fmt: skip
        counts.pending_rejected += 1
        return
    row = parsed.row
    id_hash = ctx.vault.hash(row.resident_id)
    counts.records.append(
        {"line": parsed.line, "household_id": row.household_id or household_key(id_hash),
         "person_id_hash": id_hash, "person_id_masked": mask_resident_id(row.resident_id),
         "village_code": row.village_code, "recorded_on": row.recorded_on,
         "facts": facts_of(row)}
    )  # fmt: skip
    counts.pending_accepted += 1


def slice_rows(
    ctx: FeedContext, batch_id: str, records: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Outbox rows of the pending records: one event per shard and up to `slice_records` rows.

    The rows were validated one by one already; the slice envelope is serialised directly
    (the same JSON as `Envelope[FeedRecordsReceived]`, tested) instead of being validated a
    second time, which cost as much as parsing the row.
    """
    by_shard: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_shard.setdefault(shard_of(record["household_id"], ctx.shards), []).append(record)
    rows = []
    for shard in sorted(by_shard):
        pending = by_shard[shard]
        for start in range(0, len(pending), ctx.slice_records):
            event_id = str(uuid4())
            envelope = {
                "event_id": event_id, "event_type": "FeedRecordsReceived",
                "schema_version": SCHEMA_VERSION, "occurred_at": now,
                "household_id": slice_key(shard), "source": f"intake.feed.{ctx.department}",
                "correlation_id": batch_id,
                "payload": {"batch_id": batch_id, "department": ctx.department, "shard": shard,
                            "records": pending[start : start + ctx.slice_records]},
            }  # fmt: skip
            rows.append(
                {"event_id": event_id, "topic": ctx.topic, "key": slice_key(shard),
                 "value": orjson.dumps(envelope), "created_at": now}
            )  # fmt: skip
    return rows


def _text(value: str, limit: int) -> str:
    """A field name or message as PostgreSQL text can hold it (a key may be anything, even NUL)."""
    return value.replace("\x00", "\ufffd")[:limit]


async def _flush(
    ctx: FeedContext,
    counts: BatchCounts,
    parser: FeedParser,
    status: str = "receiving",
    detail: str | None = None,
) -> None:
    """One transaction: the pending events and errors, and the batch's new totals."""
    now = ctx.clock.now()
    counts.accepted += counts.pending_accepted
    counts.rejected += counts.pending_rejected
    totals = {
        "lines": parser.lines,
        "accepted": counts.accepted,
        "rejected": counts.rejected,
        "status": status,
        "detail": detail,
        "csv_header": parser.header_line,
        "completed_at": None if status == "receiving" else now,
    }
    async with ctx.uow_factory() as uow:
        if counts.created:
            await uow.execute(
                update(feed_batches).where(feed_batches.c.id == counts.batch_id).values(**totals)
            )
        else:
            await uow.execute(
                insert(feed_batches).values(
                    id=counts.batch_id,
                    department=ctx.department,
                    content_type=ctx.fmt,
                    received_at=now,
                    **totals,
                )
            )
        if counts.errors:
            await bulk_insert(uow, feed_errors, counts.errors)
        await record_many(uow, slice_rows(ctx, counts.batch_id, counts.records, now))
    counts.created = True
    if counts.records:
        count_feed_rows(ctx.department, (r["village_code"] for r in counts.records))
        ctx.after_commit()
    counts.records, counts.errors = [], []
    counts.pending_accepted = counts.pending_rejected = 0


async def batch_report(
    *, uow: UnitOfWork, batch_id: str, offset: int, limit: int
) -> dict[str, Any] | None:
    """A batch's totals and one page of its per-row errors, in line order."""
    batch = (await uow.execute(select(feed_batches).where(feed_batches.c.id == batch_id))).first()
    if batch is None:
        return None
    errors = (
        await uow.execute(
            select(feed_errors.c.line, feed_errors.c.field, feed_errors.c.problem)
            .where(feed_errors.c.batch_id == batch_id)
            .order_by(feed_errors.c.line, feed_errors.c.id)
            .offset(offset)
            .limit(limit)
        )
    ).all()
    total = (
        await uow.execute(
            select(func.count()).select_from(feed_errors).where(feed_errors.c.batch_id == batch_id)
        )
    ).scalar_one()
    return {
        "batch_id": batch.id,
        "department": batch.department,
        "content_type": batch.content_type,
        "status": batch.status,
        "detail": batch.detail,
        "lines": batch.lines,
        "accepted": batch.accepted,
        "rejected": batch.rejected,
        "received_at": utc(batch.received_at),
        "completed_at": utc(batch.completed_at) if batch.completed_at else None,
        "error_count": total,
        "errors": [dict(e._mapping) for e in errors],
        "next_offset": offset + len(errors) if offset + len(errors) < total else None,
    }


async def rejected_lines(
    *, uow_factory: Callable[[], UnitOfWork], vault: Vault, batch_id: str, page: int
) -> AsyncIterator[bytes]:
    """The rejected lines as the department sent them (CSV header first), page by page."""
    async with uow_factory() as uow:
        header = (
            await uow.execute(
                select(feed_batches.c.csv_header).where(feed_batches.c.id == batch_id)
            )
        ).scalar()
    if header:
        yield header.encode() + b"\n"
    after = -1
    while True:
        async with uow_factory() as uow:
            rows = (
                await uow.execute(
                    select(feed_errors.c.line, feed_errors.c.row_ciphertext)
                    .where(
                        feed_errors.c.batch_id == batch_id,
                        feed_errors.c.row_ciphertext.is_not(None),
                        feed_errors.c.line > after,
                    )
                    .order_by(feed_errors.c.line)
                    .limit(page)
                )
            ).all()
        for row in rows:
            yield vault.decrypt(row.row_ciphertext).encode() + b"\n"
        if len(rows) < page:
            return
        after = rows[-1].line
