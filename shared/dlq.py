"""Dead-letter topics: list what `<topic>.dlq` holds, replay it to the original topic, or
discard what can never be processed.

A replay reads the DLQ with its own consumer group and commits after the idempotent producer
has every record on the broker, so a second replay sends nothing already sent. Should a replay
die between the send and the commit, the next one re-sends those records; the consumers dedupe
by event_id, so the effect still happens once.

Records replayed or discarded alone (`--offset`, `--event-id`) cannot all sit below one
committed offset: each gets a mark, a record appended to its own DLQ partition (header
`dlq_mark`: replayed or discarded; value: its offset, event id, reason and operator). The
replay group's offset then moves past every record handled from it on, and reading the DLQ
tells waiting, replayed and discarded records apart. A mark outlives the record it names (it
is younger on the same partition), and nothing but this module reads a DLQ.

Several consumer groups read one topic (risk-assistance and notify read assistance), and each
dead-letters its own copy of a message it fails: the DLQ then holds one record per group. They
are one message (`DeadMessage`: the same event id, or for bytes that are no event the same
original partition and offset), listed once with the groups that failed it, and a replay
re-publishes it once. That is enough for every group: the message goes back to the topic all
of them read, a group that handled it the first time finds its `processed_events` mark and
skips it, and one that failed it processes it. Re-publishing a copy per group would deliver it
to every group that many times and, were it still poison, dead-letter it that many times over.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from rich.console import Console

from shared.kafka import make_producer
from shared.settings import ServiceSettings

DLQ_SUFFIX = ".dlq"
T = TypeVar("T")


class DlqError(Exception):
    """A problem the operator can act on (unknown topic, broker unreachable)."""


MARK_HEADER = "dlq_mark"  # on the records `replay --offset/--event-id` and `discard` append


@dataclass(frozen=True)
class Mark:
    """What an operator did with one dead letter: a record appended to the same DLQ partition,
    naming it by offset (a whole `replay` marks by the replay group's offset instead)."""

    action: str  # replayed, discarded
    reason: str
    by: str
    timestamp_ms: int


@dataclass(frozen=True)
class DeadLetter:
    """One record of a DLQ with the error headers the consumer put on it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    replayed: bool  # before the replay group's committed offset, or replayed alone
    timestamp_ms: int = 0  # when it was dead-lettered (broker time)
    mark: Mark | None = None  # replayed or discarded alone

    @property
    def original_topic(self) -> str | None:
        """The topic the record was consumed from (header written by EventConsumer)."""
        return self.headers.get("original_topic")

    @property
    def discarded(self) -> bool:
        """Set aside by `discard`: never re-published."""
        return self.mark is not None and self.mark.action == "discarded"

    @property
    def handled(self) -> bool:
        """Replayed or discarded: a replay leaves it alone."""
        return self.replayed or self.discarded

    @property
    def position(self) -> str:
        """PARTITION:OFFSET, as `dlq list` shows it and `--offset` takes it."""
        return f"{self.partition}:{self.offset}"

    @property
    def household(self) -> str | None:
        """The record's key: the household whose event it is (or a feed shard)."""
        return self.key.decode("utf-8", "replace") if self.key is not None else None

    @property
    def event_type(self) -> str | None:
        """From the envelope, when the value is a JSON object that names one."""
        return _field(self.value, "event_type")

    @property
    def event_id(self) -> str | None:
        """From the envelope, when the value is a JSON object that names one."""
        return _field(self.value, "event_id")


def _field(value: bytes | None, name: str) -> str | None:
    try:
        body = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    found = body.get(name) if isinstance(body, dict) else None
    return found if isinstance(found, str) else None


@dataclass(frozen=True)
class DeadMessage:
    """One original message and its DLQ records, one per consumer group that failed it (a group
    that failed it again after a replay adds a record), oldest first."""

    letters: tuple[DeadLetter, ...]

    @property
    def first(self) -> DeadLetter:
        """The oldest record: its position names the message in `dlq list`."""
        return self.letters[0]

    @property
    def waiting(self) -> tuple[DeadLetter, ...]:
        """Its records neither replayed nor discarded."""
        return tuple(letter for letter in self.letters if not letter.handled)

    @property
    def handled(self) -> bool:
        """Replayed or discarded: a replay leaves it alone."""
        return not self.waiting

    @property
    def discarded(self) -> bool:
        """Set aside by `discard` (its latest record says so)."""
        return self.handled and self.letters[-1].discarded

    @property
    def consumers(self) -> tuple[str, ...]:
        """The consumer groups that dead-lettered it."""
        return tuple(sorted({letter.headers.get("consumer", "?") for letter in self.letters}))

    @property
    def original_topic(self) -> str | None:
        """The topic it was consumed from."""
        return self.first.original_topic

    @property
    def event_id(self) -> str | None:
        """From the envelope, when the value is one."""
        return self.first.event_id


def _identity(letter: DeadLetter) -> tuple[str, ...]:
    """What the records of one original message share: the event id of an envelope (the
    consumers dedupe by it), else the original partition and offset, else nothing (a record
    from before these headers is a message of its own)."""
    topic = letter.original_topic or ""
    if letter.event_id is not None:
        return ("event", topic, letter.event_id)
    partition = letter.headers.get("original_partition")
    offset = letter.headers.get("original_offset")
    if partition is not None and offset is not None:
        return ("at", topic, partition, offset)
    return ("record", str(letter.partition), str(letter.offset))


def dead_messages(letters: list[DeadLetter]) -> list[DeadMessage]:
    """The records grouped by original message, in the order of each one's oldest record."""
    groups: dict[tuple[str, ...], list[DeadLetter]] = {}
    for letter in letters:
        groups.setdefault(_identity(letter), []).append(letter)
    return [DeadMessage(tuple(group)) for group in groups.values()]


@dataclass(frozen=True)
class Selection:
    """The records `replay` or `discard` act on: by PARTITION:OFFSET or by event id; all
    records when empty (replay only)."""

    positions: frozenset[tuple[int, int]] = frozenset()
    event_ids: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.positions or self.event_ids)

    def matches(self, letter: DeadLetter) -> bool:
        """Whether the letter is one of those selected."""
        return (letter.partition, letter.offset) in self.positions or (
            letter.event_id is not None and letter.event_id in self.event_ids
        )

    def matches_message(self, message: DeadMessage) -> bool:
        """Whether any record of the message is selected: a message is handled whole."""
        return any(self.matches(letter) for letter in message.letters)

    @classmethod
    def parse(cls, offsets: list[str], event_ids: list[str]) -> Selection:
        """From the command line; a DlqError naming the option when one cannot be read."""
        positions = set()
        for given in offsets:
            partition, sep, offset = given.partition(":")
            if not (sep and partition.isdecimal() and offset.isdecimal()):
                raise DlqError(
                    f"--offset: {given!r} is not PARTITION:OFFSET as `dlq list` shows it (1:2)"
                )
            positions.add((int(partition), int(offset)))
        for event_id in event_ids:
            if not event_id.strip():
                raise DlqError("--event-id: empty")
        return cls(frozenset(positions), frozenset(e.strip() for e in event_ids))


def _waiting(messages: tuple[DeadMessage, ...]) -> tuple[DeadLetter, ...]:
    return tuple(letter for message in messages for letter in message.waiting)


def _all(messages: tuple[DeadMessage, ...]) -> tuple[DeadLetter, ...]:
    return tuple(letter for message in messages for letter in message.letters)


@dataclass(frozen=True)
class ReplayResult:
    """What one replay did (or, dry, would do)."""

    dlq: str
    sent: dict[str, int]  # original topic -> messages re-published (one copy each)
    dry_run: bool
    messages: tuple[DeadMessage, ...] = ()  # those re-published
    already_messages: tuple[DeadMessage, ...] = ()  # selected, but replayed or discarded before

    @property
    def letters(self) -> tuple[DeadLetter, ...]:
        """The records marked replayed: every waiting record of each message re-published."""
        return _waiting(self.messages)

    @property
    def already(self) -> tuple[DeadLetter, ...]:
        """The records of the messages selected but handled before."""
        return _all(self.already_messages)


@dataclass(frozen=True)
class DiscardResult:
    """What one discard did (or, dry, would do)."""

    dlq: str
    messages: tuple[DeadMessage, ...]
    already_messages: tuple[DeadMessage, ...]  # selected, but replayed or discarded before
    dry_run: bool

    @property
    def discarded(self) -> tuple[DeadLetter, ...]:
        """The records marked discarded: every waiting record of each message selected."""
        return _waiting(self.messages)

    @property
    def already(self) -> tuple[DeadLetter, ...]:
        """The records of the messages selected but handled before."""
        return _all(self.already_messages)


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
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], settings: ServiceSettings
) -> tuple[list[DeadLetter], dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Every dead letter up to the end offsets seen now, oldest first, with what was done with
    it; the end and the replay group's committed offset of each partition."""
    ends: dict[TopicPartition, int] = await _bounded(consumer.end_offsets(tps), settings)
    committed = {tp: await _bounded(consumer.committed(tp), settings) or 0 for tp in tps}
    for tp in tps:
        await _bounded(consumer.seek_to_beginning(tp), settings)
    found: list[ConsumerRecord[Any, Any]] = []
    pending = {tp for tp in tps if await _bounded(consumer.position(tp), settings) < ends[tp]}
    idle = 0
    while pending:
        batch = await _bounded(consumer.getmany(*pending, timeout_ms=500), settings)
        for tp, records in batch.items():
            found += [r for r in records if r.offset < ends[tp]]
        pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        idle = 0 if batch else idle + 1
        if idle * 0.5 > settings.kafka_request_timeout_ms / 1000:
            # the end offsets were read, yet nothing more arrives: do not spin forever
            raise DlqError(f"kafka: reading {sorted(tp.topic for tp in pending)[0]} stalled")
    marks: dict[tuple[int, int], Mark] = {}
    letters: list[ConsumerRecord[Any, Any]] = []
    for record in found:
        headers = dict(record.headers or ())
        if MARK_HEADER not in headers:
            letters.append(record)
            continue
        try:  # a mark names the record it is about; the latest one about a record stands
            body = orjson.loads(record.value)
            marks[(record.partition, int(body["offset"]))] = Mark(
                action=headers[MARK_HEADER].decode(), reason=str(body.get("reason", "")),
                by=str(body.get("by", "?")), timestamp_ms=record.timestamp,
            )  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    out = []
    for record in letters:
        mark = marks.get((record.partition, record.offset))
        before = record.offset < committed[TopicPartition(record.topic, record.partition)]
        replayed = (before and mark is None) or (mark is not None and mark.action == "replayed")
        out.append(_letter(record, replayed, mark))
    out.sort(key=lambda letter: (letter.timestamp_ms, letter.partition, letter.offset))
    return out, ends, committed


def _letter(record: ConsumerRecord[Any, Any], replayed: bool, mark: Mark | None) -> DeadLetter:
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers or ()}
    return DeadLetter(
        partition=record.partition, offset=record.offset, key=record.key, value=record.value,
        headers=headers, replayed=replayed, timestamp_ms=record.timestamp, mark=mark,
    )  # fmt: skip


async def list_dead_letters(topic: str, settings: ServiceSettings) -> list[DeadLetter]:
    """Every record of the DLQ, oldest first; nothing is committed."""
    _, dlq = topic_names(topic, settings)
    consumer, tps = await _open(settings, dlq)
    try:
        letters, _, _ = await _read(consumer, tps, settings)
    finally:
        await consumer.stop()
    return letters


def _select(
    letters: list[DeadLetter], selection: Selection, dlq: str
) -> tuple[list[DeadMessage], list[DeadMessage]]:
    """(the selected messages still waiting, those selected that were handled before); a
    message is selected by any of its records. A selection naming a record the DLQ does not
    hold is an error, before anything is done."""
    messages = dead_messages(letters)
    if not selection:
        return [message for message in messages if not message.handled], []
    chosen = [message for message in messages if selection.matches_message(message)]
    positions = {(letter.partition, letter.offset) for letter in _all(tuple(chosen))}
    missing = [f"{p}:{o}" for p, o in sorted(selection.positions - positions)]
    if missing:
        raise DlqError(f"--offset: {dlq} holds no record at {', '.join(missing)}")
    ids = {letter.event_id for letter in _all(tuple(chosen))}
    unknown = sorted(selection.event_ids - ids)
    if unknown:
        raise DlqError(f"--event-id: {dlq} holds no event {', '.join(unknown)}")
    return [c for c in chosen if not c.handled], [c for c in chosen if c.handled]


def _mark_value(letter: DeadLetter, reason: str, by: str) -> bytes:
    body = {"offset": letter.offset, "event_id": letter.event_id, "reason": reason, "by": by}
    return orjson.dumps(body)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "?"


async def _finish(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    settings: ServiceSettings,
    *,
    dlq: str,
    letters: list[DeadLetter],
    done: list[DeadLetter],
    marked: bool,
    action: str,
    reason: str,
    ends: dict[TopicPartition, int],
    committed: dict[TopicPartition, int],
) -> None:
    """Mark `done` replayed or discarded on the DLQ (unless a whole replay: the replay group's
    offset says it), then move that offset past every record handled from it on."""
    by = _operator()
    try:
        futures = [
            await producer.send(
                dlq,
                _mark_value(letter, reason, by),
                key=letter.key,
                partition=letter.partition,
                headers=[(MARK_HEADER, action.encode())],
            )
            for letter in (done if marked else [])
        ]
        await asyncio.gather(*futures)
    except KafkaError as exc:
        raise DlqError(f"kafka: marking records {action} on {dlq} failed ({exc!r})") from None
    handled = {(letter.partition, letter.offset) for letter in done}
    waiting: dict[int, int] = {}
    for letter in letters:
        if not letter.handled and (letter.partition, letter.offset) not in handled:
            waiting[letter.partition] = min(waiting.get(letter.partition, letter.offset),
                                            letter.offset)  # fmt: skip
    moved = {
        tp: waiting.get(tp.partition, ends[tp])
        for tp in ends
        if waiting.get(tp.partition, ends[tp]) > committed[tp]
    }
    if moved:
        await _bounded(consumer.commit(moved), settings)


async def replay(
    topic: str,
    settings: ServiceSettings,
    *,
    dry_run: bool = False,
    selection: Selection | None = None,
) -> ReplayResult:
    """Re-publish the messages not replayed or discarded yet (or only those selected) to their
    original topics, each once however many consumer groups dead-lettered it, then mark all
    their records replayed."""
    base, dlq = topic_names(topic, settings)
    selection = selection or Selection()
    consumer, tps = await _open(settings, dlq)
    sent: dict[str, int] = {}
    try:
        letters, ends, committed = await _read(consumer, tps, settings)
        chosen, already = _select(letters, selection, dlq)
        # one copy per message: every group reads the topic, and those that handled it dedupe
        copies = [message.waiting[0] for message in chosen]
        for letter in copies:
            target = letter.original_topic or base
            sent[target] = sent.get(target, 0) + 1
        result = ReplayResult(
            dlq=dlq, sent=sent, dry_run=dry_run, messages=tuple(chosen),
            already_messages=tuple(already),
        )  # fmt: skip
        if dry_run or not chosen:
            return result
        producer = make_producer(settings)
        await _bounded(producer.start(), settings)
        try:
            try:
                futures = [
                    await producer.send(
                        letter.original_topic or base,
                        letter.value,
                        key=letter.key,
                        headers=[("replayed_from", f"{dlq}:{letter.position}".encode())],
                    )
                    for letter in copies
                ]
                await asyncio.gather(*futures)
            except KafkaError as exc:
                raise DlqError(f"kafka: re-publishing from {dlq} failed ({exc!r})") from None
            # only now: a replay that failed above leaves the records waiting
            await _finish(
                consumer, producer, settings, dlq=dlq, letters=letters,
                done=list(result.letters), marked=bool(selection), action="replayed", reason="",
                ends=ends, committed=committed,
            )  # fmt: skip
        finally:
            await producer.stop()
    finally:
        await consumer.stop()
    return result


async def discard(
    topic: str,
    settings: ServiceSettings,
    *,
    selection: Selection,
    reason: str,
    dry_run: bool = False,
) -> DiscardResult:
    """Set the selected messages aside for good: all their records marked discarded with the
    reason, never re-published (a later replay passes over them)."""
    _, dlq = topic_names(topic, settings)
    if not selection:
        raise DlqError("discard: select the records with --offset or --event-id")
    if not reason.strip():
        raise DlqError("--reason: say why the records are discarded")
    consumer, tps = await _open(settings, dlq)
    try:
        letters, ends, committed = await _read(consumer, tps, settings)
        chosen, already = _select(letters, selection, dlq)
        result = DiscardResult(
            dlq=dlq, messages=tuple(chosen), already_messages=tuple(already), dry_run=dry_run
        )
        if dry_run or not chosen:
            return result
        producer = make_producer(settings)
        await _bounded(producer.start(), settings)
        try:
            await _finish(
                consumer, producer, settings, dlq=dlq, letters=letters,
                done=list(result.discarded), marked=True, action="discarded",
                reason=reason.strip(), ends=ends, committed=committed,
            )  # fmt: skip
        finally:
            await producer.stop()
    finally:
        await consumer.stop()
    return result


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


OffsetOpt = Annotated[
    list[str] | None,
    typer.Option("--offset", help="PARTITION:OFFSET as `dlq list` shows it; repeat for more"),
]
EventIdOpt = Annotated[
    list[str] | None, typer.Option("--event-id", help="the event's event_id; repeat for more")
]


def _state(letter: DeadLetter) -> str:
    if letter.mark is not None:
        at = _when(letter.mark.timestamp_ms)
        reason = f": {letter.mark.reason}" if letter.mark.reason else ""
        return f"{letter.mark.action} {at} by {letter.mark.by}{reason}"
    return "replayed" if letter.replayed else "waiting"


def _message_state(message: DeadMessage) -> str:
    """Waiting while any of its records waits, else what was done last."""
    return "waiting" if not message.handled else _state(message.letters[-1])


def _when(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _name(letter: DeadLetter) -> str:
    """Whose record it is: household key, event type and id (? when the value is undecodable)."""
    return (
        f"key={letter.household or '?'}  {letter.event_type or '?'}"
        f"  event_id={letter.event_id or '?'}"
    )


def _print(line: str) -> None:
    _out.print(line, markup=False, highlight=False, soft_wrap=True)


@dlq_app.command("list")
def list_command(
    topic: TopicArg,
    limit: Annotated[int, typer.Option(min=1, help="show at most this many, newest")] = 50,
) -> None:
    """How many messages a DLQ holds; whose each is (key, event type, event id), which consumer
    groups failed it (a record each, with its error headers) and whether it waits, was
    replayed or was discarded."""
    settings = ServiceSettings()
    letters = _run(list_dead_letters(topic, settings))
    messages = dead_messages(letters)
    _, dlq = topic_names(topic, settings)
    waiting = sum(not message.handled for message in messages)
    discarded = sum(message.discarded for message in messages)
    _print(
        f"{dlq}: {len(messages)} messages ({len(letters)} records), {waiting} waiting"
        f" (not replayed yet), {discarded} discarded"
    )
    for message in messages[-limit:]:
        first = message.first
        _print(
            f"{first.position}  {_when(first.timestamp_ms)}  {_name(first)}\n"
            f"    from {message.original_topic or '?'}  failed in"
            f" {', '.join(message.consumers)}  {_message_state(message)}"
        )
        for letter in message.letters:
            h = letter.headers
            _print(
                f"    {letter.position}  consumer={h.get('consumer', '?')}"
                f"  attempts={h.get('attempts', '?')}  {_state(letter)}\n"
                f"      {h.get('error_type', '?')}: {h.get('error', '')[:300]}"
            )


def _counted(verb: str, messages: tuple[DeadMessage, ...], letters: int) -> str:
    return f"{verb} {len(messages)} messages ({letters} records)"


def _already(messages: tuple[DeadMessage, ...]) -> None:
    for message in messages:
        _print(f"  {message.first.position}  {_name(message.first)}: already"
               f" {_message_state(message)}")  # fmt: skip


@dlq_app.command("replay")
def replay_command(
    topic: TopicArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, send nothing")] = False,
    offset: OffsetOpt = None,
    event_id: EventIdOpt = None,
) -> None:
    """Re-publish the messages not replayed or discarded yet (or only those selected) to their
    original topics, each once however many consumer groups failed it."""
    settings = ServiceSettings()
    result = _run(_with_selection(offset, event_id, lambda selection: replay(
        topic, settings, dry_run=dry_run, selection=selection
    )))  # fmt: skip
    verb = "would re-publish" if result.dry_run else "re-published"
    _print(f"{result.dlq}: {_counted(verb, result.messages, len(result.letters))}")
    for target, n in sorted(result.sent.items()):
        _print(f"  {n} -> {target}")
    if offset or event_id:
        for message in result.messages:
            _print(f"  {message.first.position}  {_name(message.first)}")
    _already(result.already_messages)


@dlq_app.command("discard")
def discard_command(
    topic: TopicArg,
    reason: Annotated[str, typer.Option("--reason", help="why: recorded with each record")],
    offset: OffsetOpt = None,
    event_id: EventIdOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show, mark nothing")] = False,
) -> None:
    """Set selected messages aside for good: all their records marked discarded with the
    reason, never re-published by a later replay (once)."""
    settings = ServiceSettings()
    result = _run(_with_selection(offset, event_id, lambda selection: discard(
        topic, settings, selection=selection, reason=reason, dry_run=dry_run
    )))  # fmt: skip
    verb = "would discard" if result.dry_run else "discarded"
    _print(f"{result.dlq}: {_counted(verb, result.messages, len(result.discarded))}")
    for message in result.messages:
        _print(f"  {message.first.position}  {_name(message.first)}")
    _already(result.already_messages)


async def _with_selection(
    offsets: list[str] | None,
    event_ids: list[str] | None,
    act: Callable[[Selection], Awaitable[T]],
) -> T:
    """Parse the selection inside _run, so that a bad one is the same one-line error."""
    return await act(Selection.parse(offsets or [], event_ids or []))
