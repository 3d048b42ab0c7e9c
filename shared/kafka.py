"""Kafka layer: idempotent producer, outbox relay, consumer that commits after the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from functools import cached_property
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord
from sqlalchemy import Table, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import metrics
from shared.clock import Clock
from shared.db import UnitOfWork, driver_of, utc
from shared.events import Envelope, EnvelopeError, decode, known_type
from shared.logs import correlation_id
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


SHARD_KEY_PREFIX = "feed-shard-"
_SHARD_PREFIX = SHARD_KEY_PREFIX.encode()
_MURMUR2 = DefaultPartitioner()


def shard_key(shard: int) -> str:
    """The key of shard `shard`'s stream of feed slices (see partition_for)."""
    return f"{SHARD_KEY_PREFIX}{shard:03d}"


def partition_for(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """The producers' partitioner: a shard key goes to partition shard mod count, any other
    key where the Java client would put it (murmur2).

    Hashed, the 16 shard keys fell 4/6/2/4 on 4 partitions: of two risk replicas one had 63%
    of a feed to evaluate while the other sat idle. By number, shards spread evenly whenever
    their count is a multiple of the partitions' (intake's feed_shards). Either way a shard
    keeps its partition for as long as the partition count stays the same."""
    if key is not None and key.startswith(_SHARD_PREFIX):
        digits = key[len(_SHARD_PREFIX) :]
        if digits.isdigit():
            ordered = sorted(all_partitions)
            return ordered[int(digits) % len(ordered)]
    return int(_MURMUR2(key, all_partitions, available))


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """An idempotent producer (acks=all): a retried send never duplicates on the broker."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        partitioner=partition_for,
        enable_idempotence=True,
        acks="all",
        # no lingering: the relay enqueues a whole pass before it waits, so a pass is one
        # batch a partition anyway, and every hop of an alert was 5 ms slower with it
        linger_ms=0,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        client_id=f"holdline-{settings.service_name}",
    )


def pass_spacing(*, took: float, full: bool, interval: float, factor: float, most: float) -> float:
    """How long after a relay pass ends the next may start (seconds).

    At least `interval`, and `factor` times as long as the pass took, up to `most`. A pass of a
    few rows takes 2-3 ms on an idle machine and 10-25 ms when the cores are busy, so under load
    the passes space themselves out and each carries more rows, which costs the relay, the
    database and the broker less a row; on an idle machine the spacing stays `interval`
    (bench/README.md, 2026-12-07). A full pass (a backlog being drained) is followed after
    `interval` alone: its batch is as large as it gets already."""
    if full:
        return interval
    return max(interval, min(factor * took, most))


class OutboxRelay:
    """Publishes committed outbox rows in id order and marks them published.

    One relay per service publishes at a time (a PostgreSQL advisory lock), so a household's
    events keep their order even with several replicas.

    An outbox with a bulk lane (`messaging_tables(bulk_lane=True)`): when a pass meets rows of
    bulk work (a department feed's evaluation writes thousands at once), the unpublished rows
    not of bulk work go first, each unless its household (the key) has an earlier bulk row
    still unpublished; the rest follow in id order. Every household's events keep their order;
    a farmer's declaration handled during a feed does not wait for the feed's events.
    """

    def __init__(
        self, *, engine: AsyncEngine, outbox: Table, clock: Clock, settings: ServiceSettings
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._clock = clock
        self._settings = settings
        self._wake = asyncio.Event()
        self._bulk_lane = "bulk" in outbox.c

    def wake(self) -> None:
        """Ask for a pass now (called after a commit that recorded events)."""
        self._wake.set()

    async def run(self, producer: AIOKafkaProducer) -> None:
        """Relay until cancelled.

        Passes run on the connection that holds the lock, so the lock is held while rows are
        published. A failed pass closes that connection (its session ends, and the lock with
        it) and the relay starts again on a new one, waiting for the lock before it publishes:
        after a database restart it never publishes beside a replica that took the lock
        meanwhile. The relay's connection is never handed back to the pool, where it would keep
        the lock from the next relay. Holding it also spares each pass a pool checkout and its
        liveness ping."""
        watch = asyncio.create_task(self._watch_backlog(), name="outbox-backlog")
        try:
            while True:
                try:
                    await self._session(producer)
                except Exception as exc:  # the database or the broker is away: start again
                    log.warning("outbox relay pass failed (%r); starting again", exc)
                    await asyncio.sleep(1)
        finally:
            watch.cancel()

    async def _session(self, producer: AIOKafkaProducer) -> None:
        """Take a connection and the lock on it, and relay on it until a pass fails; then close
        the connection (not back to the pool), which ends its session and releases the lock."""
        conn = await self._engine.connect()
        try:
            await self._set_up(conn)
            await self._relay(producer, conn)
        finally:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _relay(self, producer: AIOKafkaProducer, conn: AsyncConnection) -> None:
        """Passes on the relay's connection until one fails. A pass starts no sooner than
        `pass_spacing` after the previous one ended: under a steady stream of commits each pass
        takes what they committed meanwhile, where passes of one or two rows each cost the
        relay, the database and the broker their fixed part again. After a quiet spell the
        first pass starts at once."""
        loop = asyncio.get_running_loop()
        settings = self._settings
        ended, spacing = -math.inf, 0.0
        while True:
            wait = ended + spacing - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            # cleared before the pass reads the outbox: a commit made while the pass runs (its
            # sends wait for the broker) sets it again, and the next pass starts at once
            self._wake.clear()
            started = loop.time()
            sent = await self.publish_pending(producer, conn)
            ended = loop.time()
            spacing = pass_spacing(
                took=ended - started,
                full=sent >= settings.outbox_batch_size,
                interval=settings.outbox_pass_interval_seconds,
                factor=settings.outbox_pass_spacing_factor,
                most=settings.outbox_pass_interval_max_seconds,
            )
            if sent < settings.outbox_batch_size:
                try:
                    await asyncio.wait_for(self._wake.wait(), settings.outbox_poll_seconds)
                except TimeoutError:
                    pass

    async def _watch_backlog(self) -> None:
        """Set the backlog gauges every few seconds, apart from the passes: a pass can wait
        out a broker outage in its sends, and that is when the oldest row's age must grow."""
        t, service = self._outbox, self._settings.service_name
        query = select(func.count(), func.min(t.c.created_at)).where(t.c.published_at.is_(None))
        while True:
            try:
                async with self._engine.connect() as conn:
                    remaining, oldest = (await conn.execute(query)).one()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the gauges keep their last value
                log.debug("outbox backlog not measured: %r", exc)
            else:
                metrics.OUTBOX_BACKLOG.labels(service).set(remaining)
                age = (self._clock.now() - utc(oldest)).total_seconds() if oldest else 0.0
                metrics.OUTBOX_OLDEST_SECONDS.labels(service).set(max(age, 0.0))
            await asyncio.sleep(self._settings.outbox_metrics_seconds)

    async def _set_up(self, conn: Any) -> None:
        """Plan the relay's statements afresh on every execution, then wait for the lock.

        The relay's two statements are prepared once for the session's life, and after a few
        executions PostgreSQL would keep a generic plan made for the outbox as it was then: made
        while the table was nearly empty (a fresh database, or just after the purge), marking
        rows became a sequential scan of the whole outbox on every pass once it had grown
        (3 to 7 ms a mark with 6,000 rows in the end-to-end benchmark, bench/README.md). A plan
        made per execution costs tens of microseconds and follows the table's size."""
        if conn.dialect.name != "postgresql":
            return
        await conn.execute(text("SET plan_cache_mode = force_custom_plan"))
        while not (await conn.execute(text("SELECT pg_try_advisory_lock(7201)"))).scalar():
            await asyncio.sleep(1)
        await conn.commit()

    async def publish_pending(
        self, producer: AIOKafkaProducer, conn: AsyncConnection | None = None
    ) -> int:
        """One pass: publish up to a batch of rows; returns how many were published. On the
        given connection (the relay's own), or on one from the pool."""
        if conn is None:
            async with self._engine.connect() as own:
                return await self.publish_pending(producer, own)
        if conn.dialect.name == "postgresql":
            driver = await driver_of(conn)
            rows = await self._pending_on_driver(driver)
        else:
            rows = await self._pending(conn, self._settings.outbox_batch_size)
        if not rows:
            return 0
        # rows are (id, topic, key, value[, bulk]): asyncpg records or SQLAlchemy rows
        if self._bulk_lane and any(row[4] for row in rows):
            if conn.dialect.name == "postgresql":
                direct = list(await driver.fetch(self._direct_sql, len(rows)))
            else:
                direct = await self._pending(conn, len(rows), direct=True)
            taken = {row[0] for row in direct}
            rows = direct + [row for row in rows if row[0] not in taken]
        # Enqueue in order, then wait: the idempotent producer keeps retrying the same
        # sequence numbers through a broker outage, so nothing is sent twice or reordered.
        futures = [await producer.send(row[1], row[3], key=row[2].encode()) for row in rows]
        # shielded: a relay cancelled mid-pass leaves the sends to the producer's flush
        await asyncio.shield(asyncio.gather(*futures))
        ids = [row[0] for row in rows]
        if conn.dialect.name == "postgresql":
            await driver.execute(self._mark_sql, ids, self._clock.now())
        else:
            await self._mark(conn, ids)
        for topic, count in Counter(row[1] for row in rows).items():
            metrics.EVENTS_PUBLISHED.labels(topic).inc(count)
        return len(rows)

    async def _pending_on_driver(self, driver: asyncpg.Connection) -> list[Any]:
        """The next unpublished rows, read straight on asyncpg outside any transaction (each
        statement commits on its own): two statements a pass instead of two transactions of
        SQLAlchemy's (bench/README.md); no snapshot is held while the sends wait."""
        return list(await driver.fetch(self._pending_sql, self._settings.outbox_batch_size))

    @cached_property
    def _column_names(self) -> tuple[str, ...]:
        """What a pass reads of a row: (id, topic, key, value[, bulk])."""
        return ("id", "topic", "key", "value") + (("bulk",) if self._bulk_lane else ())

    @cached_property
    def _columns(self) -> str:
        return ", ".join(self._column_names)

    @cached_property
    def _pending_sql(self) -> str:
        return (
            f'SELECT {self._columns} FROM "{self._outbox.name}"'
            # in the order of ix_outbox_unpublished (published_at, id), which is id order
            # here, so the index hands the rows over sorted whatever the statistics say;
            # ORDER BY id alone let the planner walk the primary key through every published
            # row when they claimed most rows were unpublished
            " WHERE published_at IS NULL ORDER BY published_at, id LIMIT $1"
        )

    @cached_property
    def _direct_sql(self) -> str:
        name = self._outbox.name
        return (
            # ix_outbox_unpublished_direct in id order; ix_outbox_unpublished_bulk for the check
            f'SELECT {self._columns} FROM "{name}" AS o'
            " WHERE published_at IS NULL AND NOT bulk AND NOT EXISTS ("
            f' SELECT 1 FROM "{name}" AS b WHERE b.published_at IS NULL AND b.bulk'
            " AND b.key = o.key AND b.id < o.id)"
            " ORDER BY id LIMIT $1"
        )

    @cached_property
    def _mark_sql(self) -> str:
        return f'UPDATE "{self._outbox.name}" SET published_at = $2 WHERE id = ANY($1::bigint[])'

    async def _pending(self, conn: AsyncConnection, limit: int, direct: bool = False) -> list[Any]:
        t = self._outbox
        query = select(*(t.c[c] for c in self._column_names)).where(t.c.published_at.is_(None))
        if direct:  # as _direct_sql
            b = t.alias("b")
            earlier_bulk = exists().where(
                b.c.published_at.is_(None), b.c.bulk, b.c.key == t.c.key, b.c.id < t.c.id
            )
            query = query.where(~t.c.bulk, ~earlier_bulk)
        try:
            rows = (await conn.execute(query.order_by(t.c.id).limit(limit))).all()
            await conn.commit()  # no snapshot held while the sends wait (a broker outage, say)
        except BaseException:
            await _roll_back(conn)
            raise
        return list(rows)

    async def _mark(self, conn: AsyncConnection, ids: list[int]) -> None:
        t = self._outbox
        try:
            await conn.execute(
                update(t).where(t.c.id.in_(ids)).values(published_at=self._clock.now())
            )
            await conn.commit()
        except BaseException:
            await _roll_back(conn)
            raise


async def _roll_back(conn: AsyncConnection) -> None:
    if conn.in_transaction():
        with contextlib.suppress(Exception):
            await conn.rollback()


class Handler(Protocol):
    """A use case reacting to one event inside a unit of work."""

    def __call__(self, *, uow: UnitOfWork, event: Envelope[Any]) -> Awaitable[None]: ...


class BatchHandler(Protocol):
    """A use case taking many events (of the consumer's handled types) in one unit of work."""

    def __call__(self, *, uow: UnitOfWork, events: list[Envelope[Any]]) -> Awaitable[None]: ...


def in_one_transaction(
    handlers: dict[str, Handler],
    *,
    bulk_types: Collection[str] = (),
    bulk: BatchHandler | None = None,
) -> BatchHandler:
    """A batch handler that runs each event's own handler in turn, all in the run's single
    transaction: one BEGIN, one dedup statement and one COMMIT per run instead of per event.
    Consecutive events of `bulk_types` go to `bulk` together instead. Later events see what
    earlier ones wrote; a failure sends the run down the per-event path."""

    async def handle(*, uow: UnitOfWork, events: list[Envelope[Any]]) -> None:
        together: list[Envelope[Any]] = []
        for event in events:
            if bulk is not None and event.event_type in bulk_types:
                together.append(event)
                continue
            if together and bulk is not None:
                await bulk(uow=uow, events=together)
                together = []
            token = correlation_id.set(event.correlation_id)
            try:
                await handlers[event.event_type](uow=uow, event=event)
            finally:
                correlation_id.reset(token)
        if together and bulk is not None:
            await bulk(uow=uow, events=together)

    return handle


class EventConsumer:
    """Consumes topics with auto-commit off: DB commit first, then the Kafka offset.

    A redelivered event is a no-op (processed-events table); a message that cannot be decoded
    goes straight to `<topic>.dlq`; one whose handler keeps failing goes there after bounded
    retries. Either way the partition moves on.
    """

    def __init__(
        self,
        *,
        name: str,
        topics: list[str],
        handlers: dict[str, Handler],
        uow_factory: Callable[[], UnitOfWork],
        producer: AIOKafkaProducer,
        settings: ServiceSettings,
        batch_handler: BatchHandler | None = None,
        dead_letter_unreadable: bool = True,
    ) -> None:
        self.name = name
        # optional: consecutive handled events of a partition go to it in one transaction
        self._batch_handler = batch_handler
        # False for a second group on a topic: what no consumer can read (not JSON, an unknown
        # type or version) is dead-lettered once, by the topic's main group
        self._dead_letter_unreadable = dead_letter_unreadable
        self._topics = topics
        self._handlers = handlers
        self._uow_factory = uow_factory
        self._producer = producer
        self._settings = settings
        self._pending: dict[TopicPartition, int] = {}
        self._stopping = False
        self.kafka = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            # the topic prefix names the deployment: stacks sharing a broker never share a group
            group_id=f"{settings.topic_prefix}{name}",
            client_id=f"holdline-{name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.consumer_batch_size,
            # notice new topics and partitions within seconds, not the default five minutes
            metadata_max_age_ms=30_000,
        )

    async def start(self) -> None:
        """Join the group."""
        await self.kafka.start()
        self.kafka.subscribe(self._topics, listener=_CommitOnRevoke(self))

    async def run(self) -> None:
        """Poll, process and commit until stop() is called."""
        loop = asyncio.get_running_loop()
        interval = self._settings.consumer_commit_seconds
        commit_at = loop.time() + interval
        while not self._stopping:
            try:
                await self.poll_once()
                # an OffsetCommit after every poll cost the broker a write and the loop a round
                # trip per batch; what a crash replays meanwhile is deduplicated
                if loop.time() >= commit_at:
                    await self.commit_pending()
                    commit_at = loop.time() + interval
            except KafkaError as exc:
                # offsets stay pending and are committed on the next pass; redelivery is a no-op
                log.warning("%s: kafka error %r; carrying on", self.name, exc)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        """Finish the batch in hand, commit its offsets, leave the group."""
        self._stopping = True

    async def close(self) -> None:
        """Commit what was processed and leave the group."""
        try:
            await self.commit_pending()
        finally:
            await self.kafka.stop()

    async def poll_once(self, timeout_ms: int = 500) -> int:
        """Fetch one batch and process it; offsets are only remembered, not committed."""
        batch = await self.kafka.getmany(
            timeout_ms=timeout_ms, max_records=self._settings.consumer_batch_size
        )
        count = 0
        if self._batch_handler is not None and batch:
            # the poll's records of every partition together, each partition's in order: one
            # transaction for the poll's run instead of one per partition it touched
            try:
                await self._process_batch([r for records in batch.values() for r in records])
            except BaseException:
                first = next(iter(batch))
                self._rewind(batch, first, batch[first][0].offset)  # all of it, marks dedupe
                raise
            for tp, records in batch.items():
                self._pending[tp] = records[-1].offset + 1
                count += len(records)
        else:
            for tp, records in batch.items():
                next_offset = records[0].offset
                try:
                    for record in records:
                        await self._process(record)
                        next_offset = record.offset + 1
                        self._pending[tp] = next_offset
                        count += 1
                except BaseException:
                    self._rewind(batch, tp, next_offset)
                    raise
        for tp in batch:
            highwater = self.kafka.highwater(tp)
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(
                    max(highwater - self._pending[tp], 0)
                )
        return count

    def _rewind(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
        failed: TopicPartition,
        offset: int,
    ) -> None:
        """Seek back to the first unprocessed record of the failed partition and of every
        partition after it: getmany() already moved past the whole batch, so without this a
        later commit would skip those records (e.g. a DLQ send failing while Kafka is down)."""
        reached = False
        for tp, records in batch.items():
            reached = reached or tp == failed
            if reached:
                with contextlib.suppress(Exception):  # the partition may be revoked meanwhile
                    self.kafka.seek(tp, offset if tp == failed else records[0].offset)

    async def _process_batch(self, records: list[ConsumerRecord[Any, Any]]) -> None:
        """Runs of handled events go to the batch handler in one transaction, in order; the
        undecodable (and a run whose batch fails) take the per-event path with retries and the
        DLQ; events of types this consumer does not handle are counted and skipped."""
        run: list[tuple[ConsumerRecord[Any, Any], Envelope[Any]]] = []
        units = 0
        for record in records:
            event_type = known_type(record.value)
            if event_type is not None and event_type not in self._handlers:
                # an event this consumer has no interest in does not break the run
                metrics.EVENTS_CONSUMED.labels(self.name, event_type, "ignored").inc()
                continue
            try:
                envelope: Envelope[Any] | None = decode(record.value)
            except EnvelopeError:
                envelope = None
            if envelope is not None:
                weight = envelope.payload.units()
                if run and units + weight > self._settings.consumer_batch_units:
                    await self._flush_run(run)
                    run, units = [], 0
                run.append((record, envelope))
                units += weight
                continue
            await self._flush_run(run)
            run, units = [], 0
            await self._process(record)
        await self._flush_run(run)

    async def _flush_run(self, run: list[tuple[ConsumerRecord[Any, Any], Envelope[Any]]]) -> None:
        if not run:
            return
        assert self._batch_handler is not None
        started = time.perf_counter()
        try:
            async with self._uow_factory() as uow:
                fresh = await uow.first_deliveries(self.name, [str(e.event_id) for _, e in run])
                events: list[Envelope[Any]] = []
                for _, envelope in run:  # the same event twice in one run counts once
                    if str(envelope.event_id) in fresh:
                        fresh.discard(str(envelope.event_id))
                        events.append(envelope)
                if events:
                    await self._batch_handler(uow=uow, events=events)
        except Exception as exc:
            log.warning("%s: batch of %d failed (%r); one by one", self.name, len(run), exc)
            for record, _ in run:
                await self._process(record)
            return
        handled = {id(e) for e in events}
        for _, envelope in run:
            outcome = "processed" if id(envelope) in handled else "duplicate"
            metrics.EVENTS_CONSUMED.labels(self.name, envelope.event_type, outcome).inc()
        metrics.EVENT_PROCESSING_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    async def commit_pending(self, partitions: set[TopicPartition] | None = None) -> None:
        """Commit offsets of everything processed (and committed to the database) so far."""
        offsets = {
            tp: off for tp, off in self._pending.items() if partitions is None or tp in partitions
        }
        if offsets:
            await self.kafka.commit(offsets)
            for tp in offsets:
                self._pending.pop(tp, None)

    async def _process(self, record: ConsumerRecord[Any, Any]) -> None:
        started = time.perf_counter()
        event_type = known_type(record.value)
        if event_type is not None and event_type not in self._handlers:
            # a known event this service has no interest in: not worth validating
            metrics.EVENTS_CONSUMED.labels(self.name, event_type, "ignored").inc()
            return
        try:
            envelope = decode(record.value)
        except EnvelopeError as exc:
            if event_type is None and not self._dead_letter_unreadable:
                metrics.EVENTS_CONSUMED.labels(self.name, "undecodable", "ignored").inc()
                return
            await self._dead_letter(record, exc, attempts=0)
            metrics.EVENTS_CONSUMED.labels(self.name, "undecodable", "dead_lettered").inc()
            return
        handler = self._handlers.get(envelope.event_type)
        if handler is None:
            # a known event this service has no interest in
            metrics.EVENTS_CONSUMED.labels(self.name, envelope.event_type, "ignored").inc()
            return
        token = correlation_id.set(envelope.correlation_id)
        try:
            outcome = await self._handle_with_retries(record, envelope, handler)
        finally:
            correlation_id.reset(token)
        metrics.EVENTS_CONSUMED.labels(self.name, envelope.event_type, outcome).inc()
        metrics.EVENT_PROCESSING_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    async def _handle_with_retries(
        self, record: ConsumerRecord[Any, Any], envelope: Envelope[Any], handler: Handler
    ) -> str:
        attempts = self._settings.consumer_max_retries
        attempt = outage = 0
        while True:
            try:
                async with self._uow_factory() as uow:
                    if not await uow.first_delivery(self.name, str(envelope.event_id)):
                        return "duplicate"
                    await handler(uow=uow, event=envelope)
                return "processed"
            except Exception as exc:
                if not await self._database_answers():
                    # the database is down (a restart, a failover): not the event's fault, so
                    # the attempt does not count and nothing goes to the DLQ; wait for it
                    outage += 1
                    log.warning(
                        "%s: database unavailable on %s (%r); waiting", self.name,
                        envelope.event_type, exc,
                    )  # fmt: skip
                    await asyncio.sleep(min(0.2 * 2 ** min(outage, 5), 5.0))
                    continue
                attempt += 1
                log.warning(
                    "%s failed on %s (attempt %d/%d): %r",
                    self.name,
                    envelope.event_type,
                    attempt,
                    attempts,
                    exc,
                )
                if attempt == attempts:
                    await self._dead_letter(record, exc, attempts=attempts)
                    return "dead_lettered"
                await asyncio.sleep(
                    self._settings.consumer_retry_backoff_seconds * 2 ** (attempt - 1)
                )

    async def _database_answers(self) -> bool:
        """Whether the database takes a trivial query right now."""
        try:
            async with self._uow_factory() as uow:
                await uow.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], exc: BaseException, *, attempts: int
    ) -> None:
        headers = [
            ("error_type", type(exc).__name__.encode()),
            ("error", str(exc)[:2000].encode()),
            ("consumer", self.name.encode()),
            ("original_topic", record.topic.encode()),
            ("original_partition", str(record.partition).encode()),
            ("original_offset", str(record.offset).encode()),
            ("attempts", str(attempts).encode()),
        ]
        await self._producer.send_and_wait(
            f"{record.topic}.dlq", record.value, key=record.key, headers=headers
        )
        metrics.EVENTS_DEAD_LETTERED.labels(self.name, record.topic).inc()
        log.error(
            "%s sent offset %d of %s to the DLQ: %s", self.name, record.offset, record.topic, exc
        )


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Commit processed offsets before partitions move to another member."""

    def __init__(self, consumer: EventConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._consumer.commit_pending(set(revoked))
        # the lag of a partition now read by another replica is that replica's to report;
        # a stale value left here would keep the lag alert firing
        for tp in revoked:
            try:
                metrics.CONSUMER_LAG.remove(self._consumer.name, tp.topic, str(tp.partition))
            except KeyError:
                pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None


async def ensure_topics(settings: ServiceSettings, names: list[str], partitions: int = 4) -> None:
    """Create the topics (and their DLQs) if missing; an existing topic is left as it is."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [n for name in names for n in (name, f"{name}.dlq") if n not in existing]
        if wanted:
            await admin.create_topics([NewTopic(n, partitions, 1) for n in wanted])
    finally:
        await admin.close()
