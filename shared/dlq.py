"""Dead-letter topics: list what `<topic>.dlq` holds and replay it to the original topic.

A replay reads the DLQ with its own consumer group and commits after the idempotent producer
has every record on the broker, so a second replay sends nothing already sent. Should a replay
die between the send and the commit, the next one re-sends those records; the consumers dedupe
by event_id, so the effect still happens once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from rich.console import Console

from shared.kafka import make_producer
from shared.settings import ServiceSettings

DLQ_SUFFIX = ".dlq"
T = TypeVar("T")


class DlqError(Exception):
    """A problem the operator can act on (unknown topic, broker unreachable)."""


@dataclass(frozen=True)
class DeadLetter:
    """One record of a DLQ with the error headers the consumer put on it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    replayed: bool  # before the replay group's committed offset
    timestamp_ms: int = 0  # when it was dead-lettered (broker time)

    @property
    def original_topic(self) -> str | None:
        """The topic the record was consumed from (header written by EventConsumer)."""
        return self.headers.get("original_topic")


@dataclass(frozen=True)
class ReplayResult:
    """What one replay did (or, dry, would do)."""

    dlq: str
    sent: dict[str, int]  # original topic -> records re-published
    dry_run: bool


def topic_names(topic: str, settings: ServiceSettings) -> tuple[str, str]:
    """(original topic, DLQ) for `holdline.signals.v1`, its `.dlq` name or a short `signals`."""
    base = topic.removesuffix(DLQ_SUFFIX)
    if "." not in base:
        base = settings.topic(base)
    return base, base + DLQ_SUFFIX


def replay_group(settings: ServiceSettings) -> str:
    """The consumer group whose offsets on a DLQ mark what was replayed."""
    return f"{settings.topic_prefix}dlq-replay"


async def _bounded(what: Awaitable[T], settings: ServiceSettings) -> T:
    """A Kafka call that fails with a clear message instead of hanging or tracing back."""
    try:
        return await asyncio.wait_for(what, settings.kafka_request_timeout_ms / 1000)
    except (KafkaError, TimeoutError, OSError) as exc:
        raise DlqError(
            f"kafka: cannot reach the broker at {settings.kafka_bootstrap} ({exc!r})"
        ) from None


async def _open(
    settings: ServiceSettings, dlq: str
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=replay_group(settings),
        client_id="holdline-dlq",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    try:
        await _bounded(consumer.start(), settings)
        # the whole cluster's metadata: the consumer's own only covers what it assigned
        cluster = await _bounded(consumer._client.fetch_all_metadata(), settings)
    except DlqError:
        await consumer.stop()
        raise
    partitions = cluster.partitions_for_topic(dlq)
    if not partitions:
        await consumer.stop()
        raise DlqError(f"topic: {dlq} does not exist on {settings.kafka_bootstrap}")
    tps = [TopicPartition(dlq, p) for p in sorted(partitions)]
    consumer.assign(tps)
    return consumer, tps


async def _read(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    settings: ServiceSettings,
    *,
    from_committed: bool,
) -> tuple[list[tuple[ConsumerRecord[Any, Any], bool]], dict[TopicPartition, int]]:
    """Records up to the end offsets seen now, each with whether it was replayed already."""
    ends: dict[TopicPartition, int] = await _bounded(consumer.end_offsets(tps), settings)
    committed = {tp: await _bounded(consumer.committed(tp), settings) or 0 for tp in tps}
    for tp in tps:
        if from_committed:
            consumer.seek(tp, committed[tp])
        else:
            await _bounded(consumer.seek_to_beginning(tp), settings)
    found: list[tuple[ConsumerRecord[Any, Any], bool]] = []
    pending = {tp for tp in tps if await _bounded(consumer.position(tp), settings) < ends[tp]}
    idle = 0
    while pending:
        batch = await _bounded(consumer.getmany(*pending, timeout_ms=500), settings)
        for tp, records in batch.items():
            found += [(r, r.offset < committed[tp]) for r in records if r.offset < ends[tp]]
        pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        idle = 0 if batch else idle + 1
        if idle * 0.5 > settings.kafka_request_timeout_ms / 1000:
            # the end offsets were read, yet nothing more arrives: do not spin forever
            raise DlqError(f"kafka: reading {sorted(tp.topic for tp in pending)[0]} stalled")
    found.sort(key=lambda pair: (pair[0].partition, pair[0].offset))
    return found, ends


def _letter(record: ConsumerRecord[Any, Any], replayed: bool) -> DeadLetter:
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers or ()}
    return DeadLetter(
        partition=record.partition, offset=record.offset, key=record.key, value=record.value,
        headers=headers, replayed=replayed, timestamp_ms=record.timestamp,
    )  # fmt: skip


async def list_dead_letters(topic: str, settings: ServiceSettings) -> list[DeadLetter]:
    """Every record of the DLQ, oldest first; nothing is committed."""
    _, dlq = topic_names(topic, settings)
    consumer, tps = await _open(settings, dlq)
    try:
        found, _ = await _read(consumer, tps, settings, from_committed=False)
    finally:
        await consumer.stop()
    letters = [_letter(record, replayed) for record, replayed in found]
    return sorted(letters, key=lambda letter: (letter.timestamp_ms, letter.partition))


async def replay(topic: str, settings: ServiceSettings, *, dry_run: bool = False) -> ReplayResult:
    """Re-publish the DLQ records not replayed yet to their original topics, then commit."""
    base, dlq = topic_names(topic, settings)
    consumer, tps = await _open(settings, dlq)
    sent: dict[str, int] = {}
    try:
        found, ends = await _read(consumer, tps, settings, from_committed=True)
        letters = [_letter(record, replayed) for record, replayed in found]
        for letter in letters:
            target = letter.original_topic or base
            sent[target] = sent.get(target, 0) + 1
        if dry_run or not letters:
            return ReplayResult(dlq=dlq, sent=sent, dry_run=dry_run)
        producer = make_producer(settings)
        await _bounded(producer.start(), settings)
        try:
            futures = [
                await producer.send(
                    letter.original_topic or base,
                    letter.value,
                    key=letter.key,
                    headers=[
                        ("replayed_from", f"{dlq}:{letter.partition}:{letter.offset}".encode())
                    ],
                )
                for letter in letters
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise DlqError(f"kafka: re-publishing from {dlq} failed ({exc!r})") from None
        finally:
            await producer.stop()
        # only now: a replay that failed above leaves the offsets where they were
        await _bounded(consumer.commit({tp: ends[tp] for tp in tps}), settings)
    finally:
        await consumer.stop()
    return ReplayResult(dlq=dlq, sent=sent, dry_run=False)


dlq_app = typer.Typer(no_args_is_help=True)
_out = Console()
_err = Console(stderr=True, soft_wrap=True)  # an error line is never broken inside a path


def _run(work: Coroutine[Any, Any, T]) -> T:
    # the client logs each failed connection; the one-line error below says it all
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(work)
    except DlqError as exc:
        _err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


TopicArg = Annotated[
    str, typer.Argument(help="topic (holdline.signals.v1), its DLQ (....dlq) or a short name")
]


@dlq_app.command("list")
def list_command(
    topic: TopicArg,
    limit: Annotated[int, typer.Option(min=1, help="show at most this many, newest")] = 50,
) -> None:
    """How many records a DLQ holds, and the error headers of each."""
    settings = ServiceSettings()
    letters = _run(list_dead_letters(topic, settings))
    _, dlq = topic_names(topic, settings)
    waiting = sum(not letter.replayed for letter in letters)
    _out.print(f"{dlq}: {len(letters)} records, {waiting} not replayed yet")
    if not letters:
        return
    for letter in letters[-limit:]:
        h = letter.headers
        at = datetime.fromtimestamp(letter.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        _out.print(
            f"{letter.partition}:{letter.offset}  {at}  from {letter.original_topic or '?'}"
            f"  consumer={h.get('consumer', '?')}  attempts={h.get('attempts', '?')}"
            f"  replayed={'yes' if letter.replayed else 'no'}\n"
            f"    {h.get('error_type', '?')}: {h.get('error', '')[:300]}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@dlq_app.command("replay")
def replay_command(
    topic: TopicArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, send nothing")] = False,
) -> None:
    """Re-publish the records not replayed yet to their original topics (once)."""
    result = _run(replay(topic, ServiceSettings(), dry_run=dry_run))
    verb = "would re-publish" if result.dry_run else "re-published"
    total = sum(result.sent.values())
    _out.print(f"{result.dlq}: {verb} {total} records")
    for target, n in sorted(result.sent.items()):
        _out.print(f"  {n} -> {target}")
