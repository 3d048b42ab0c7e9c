"""Feed batches: stream rows in, validate each, commit accepted events and errors in chunks."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn
from uuid import uuid4

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.intake.feeds import FeedFormat, FeedParser, LineSplitter, Parsed, facts_of
from services.intake.models import feed_batches, feed_errors
from services.intake.outbox import record_many
from services.intake.pii import Vault, household_key
from shared.clock import Clock
from shared.db import UnitOfWork, bulk_insert, utc
from shared.events import SCHEMA_VERSION
from shared.identity import mask_resident_id
from shared.kafka import shard_key
from shared.metrics import count_feed_rows


def shard_of(household_id: str, shards: int) -> int:
    """The slice stream a household's feed rows travel in (stable across batches and runs)."""
    return zlib.crc32(household_id.encode()) % shards


def slice_key(shard: int) -> str:
    """The Kafka key of a shard's slices: every feed's rows of a household share a partition,
    and the producers' partitioner spreads the shards evenly (shared.kafka.partition_for)."""
    return shard_key(shard)


class FeedTooLarge(Exception):
    """The upload passed the configured size limit; what came before it stays committed."""


class FeedEmpty(Exception):
    """The upload holds no line but blank ones (a CSV not even its header): nothing stored."""


class FeedConflict(Exception):
    """The Idempotency-Key's batch cannot take this upload (another is writing to it, or the
    upload's first lines differ from what the batch already holds); nothing was written."""


@dataclass(frozen=True)
class Resume:
    """An interrupted batch that a retry with its Idempotency-Key continues."""

    batch_id: str
    lines: int  # the lines it committed; the retry starts after them
    accepted: int
    rejected: int
    lines_sha256: str | None


@dataclass
class BatchCounts:
    """A batch's running totals and the rows waiting for the next commit."""

    batch_id: str
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    created: bool = False
    attempt_id: str = field(default_factory=lambda: str(uuid4()))
    resume: Resume | None = None
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
    shards: int = 48
    idempotency_key: str | None = None
    encoding: str = "utf-8"  # how each line is read (feeds.CHARSETS)


async def ingest_feed(
    *,
    ctx: FeedContext,
    chunks: AsyncIterator[bytes],
    resume: Resume | None = None,
    attempt_id: str | None = None,
) -> BatchCounts:
    """Validate a feed row by row; commit every `batch_rows` rows (events, errors, counts).

    Memory holds one chunk, one line and at most `batch_rows` pending rows, whatever the size
    of the upload (rules §8.3: a monthly feed can reach millions of rows). A resumed batch
    (`resume`, claimed by `attempt_id`) skips the lines it already committed.
    """
    parser = FeedParser(
        ctx.department, ctx.fmt, ctx.max_line_bytes, resume_after=resume.lines if resume else 0,
        encoding=ctx.encoding,
    )  # fmt: skip
    if resume is None:
        counts = BatchCounts(batch_id=str(uuid4()))
    else:
        assert attempt_id is not None
        counts = BatchCounts(
            batch_id=resume.batch_id, accepted=resume.accepted, rejected=resume.rejected,
            created=True, attempt_id=attempt_id, resume=resume,
        )  # fmt: skip
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
        if parser.empty:
            raise FeedEmpty(
                "body: empty: a CSV feed starts with its header line"
                if ctx.fmt == "csv"
                else "body: empty: the upload holds no line"
            )
    except FeedConflict as exc:
        await _refuse(ctx, counts, exc)
    except BaseException as exc:
        if counts.created or isinstance(exc, FeedTooLarge):
            # keep what was committed visible, and say why the batch stopped
            try:
                await _flush(ctx, counts, parser, status="aborted", detail=str(exc) or repr(exc))
            except FeedConflict as conflict:
                await _refuse(ctx, counts, conflict)
        raise
    counts.lines = parser.lines
    try:
        await _flush(ctx, counts, parser, status="complete")
    except FeedConflict as exc:
        await _refuse(ctx, counts, exc)
    return counts


async def _refuse(ctx: FeedContext, counts: BatchCounts, conflict: FeedConflict) -> NoReturn:
    """Raise `conflict`; a resumed batch refused goes back to aborted with what it had."""
    if counts.resume is not None:
        await _release(ctx, counts, str(conflict))
    raise conflict


def _take(ctx: FeedContext, counts: BatchCounts, parsed: Parsed, now: datetime) -> None:
    if parsed.row is None:
        ciphertext = (
            ctx.vault.encrypt(parsed.raw.decode(ctx.encoding, "replace")) if parsed.raw else None
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
    resume = counts.resume
    totals: dict[str, Any] = {
        "status": status,
        "detail": detail,
        "completed_at": None if status == "receiving" else now,
        "updated_at": now,
    }
    # a resumed upload that stopped again before its new lines leaves the counts as they were
    if resume is None or parser.lines >= resume.lines or status == "complete":
        if resume is not None and parser.prefix_digest != resume.lines_sha256:
            raise FeedConflict(
                f"body: lines 1-{resume.lines} differ from those batch {resume.batch_id} "
                "received under this Idempotency-Key; send the same file, or use a new key"
            )
        counts.accepted += counts.pending_accepted
        counts.rejected += counts.pending_rejected
        totals |= {
            "lines": parser.lines, "accepted": counts.accepted, "rejected": counts.rejected,
            "csv_header": parser.header_line, "lines_sha256": parser.digest(),
        }  # fmt: skip
    async with ctx.uow_factory() as uow:
        if counts.created:
            # only the attempt that holds the batch writes to it
            written = await uow.execute(
                update(feed_batches)
                .where(
                    feed_batches.c.id == counts.batch_id,
                    feed_batches.c.attempt_id == counts.attempt_id,
                )
                .values(**totals)
            )
            if written.rowcount != 1:
                raise FeedConflict(
                    f"Idempotency-Key: batch {counts.batch_id} was taken over by another upload"
                )
        else:
            try:
                await uow.execute(
                    insert(feed_batches).values(
                        id=counts.batch_id,
                        department=ctx.department,
                        content_type=ctx.fmt,
                        received_at=now,
                        idempotency_key=ctx.idempotency_key,
                        attempt_id=counts.attempt_id,
                        **totals,
                    )
                )
            except IntegrityError:
                # another upload with the same key got its first rows in first
                raise FeedConflict(
                    "Idempotency-Key: another upload with this key is being received"
                ) from None
        if counts.errors:
            await bulk_insert(uow, feed_errors, counts.errors)
        await record_many(uow, slice_rows(ctx, counts.batch_id, counts.records, now))
    counts.created = True
    if counts.records:
        count_feed_rows(ctx.department, (r["village_code"] for r in counts.records))
        ctx.after_commit()
    counts.records, counts.errors = [], []
    counts.pending_accepted = counts.pending_rejected = 0


async def _release(ctx: FeedContext, counts: BatchCounts, detail: str) -> None:
    """A resumed upload refused: the batch goes back to aborted, with what it had."""
    async with ctx.uow_factory() as uow:
        await uow.execute(
            update(feed_batches)
            .where(
                feed_batches.c.id == counts.batch_id,
                feed_batches.c.attempt_id == counts.attempt_id,
            )
            .values(status="aborted", detail=detail, completed_at=ctx.clock.now())
        )


@dataclass(frozen=True)
class Retry:
    """What an upload with an already used Idempotency-Key does with the key's batch."""

    action: Literal["replay", "busy", "resume"]
    batch: Any
    resume: Resume | None = None
    attempt_id: str | None = None


async def claim_retry(*, ctx: FeedContext, key: str, stale_after: timedelta) -> Retry | None:
    """The batch of (department, key), if any: a complete one is replayed; one still receiving
    (a commit less than `stale_after` ago) is busy; an aborted or stalled one is claimed for
    this upload, which resumes it after its committed lines."""
    async with ctx.uow_factory() as uow:
        batch = (
            await uow.execute(
                select(feed_batches).where(
                    feed_batches.c.department == ctx.department,
                    feed_batches.c.idempotency_key == key,
                )
            )
        ).first()
        if batch is None:
            return None
        if batch.status == "complete":
            return Retry("replay", batch)
        now = ctx.clock.now()
        last = utc(batch.updated_at or batch.received_at)
        if batch.status == "receiving" and now - last < stale_after:
            return Retry("busy", batch)
        attempt_id = str(uuid4())
        claimed = await uow.execute(
            update(feed_batches)
            .where(
                feed_batches.c.id == batch.id,
                feed_batches.c.attempt_id == batch.attempt_id,
                feed_batches.c.status == batch.status,
            )
            .values(attempt_id=attempt_id, status="receiving", detail=None, updated_at=now)
        )
        if claimed.rowcount != 1:
            return Retry("busy", batch)
    resume = Resume(
        batch_id=batch.id, lines=batch.lines, accepted=batch.accepted,
        rejected=batch.rejected, lines_sha256=batch.lines_sha256,
    )  # fmt: skip
    return Retry("resume", batch, resume, attempt_id)


async def upload_digest(*, ctx: FeedContext, chunks: AsyncIterator[bytes]) -> str:
    """Read a whole upload (within the size limit) for its line digest, parsing nothing."""
    splitter = LineSplitter(ctx.max_line_bytes)
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > ctx.max_bytes:
            raise FeedTooLarge(f"body: exceeds the feed limit of {ctx.max_bytes} bytes")
        for _ in splitter.feed(chunk):
            pass
    for _ in splitter.finish():
        pass
    return splitter.digest()


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
