"""Composition of one service process: database, migrations, producer, relay, consumers, ops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.clock import Clock, SystemClock
from shared.db import UnitOfWork, create_engine, messaging_tables, ping
from shared.housekeeping import run_housekeeping
from shared.inputs import BodyLimit, NulGuard
from shared.kafka import (
    BatchHandler,
    EventConsumer,
    Handler,
    OutboxRelay,
    ensure_topics,
    make_producer,
)
from shared.logs import configure_logging, correlation_id
from shared.migrations import upgrade
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)
TOPICS = ["signals", "cases", "assistance", "notifications"]


@dataclass
class ConsumerSpec:
    """A consumer group: its name, the short topic names it reads, and its handlers."""

    name: str
    topics: list[str]
    handlers: dict[str, Handler]
    # optional: takes consecutive handled events in one transaction (handlers stay the fallback)
    batch_handler: BatchHandler | None = None
    # False for a second group reading a topic another group of the service also reads: only
    # the main one dead-letters the messages nobody can read
    dead_letter_unreadable: bool = True


@dataclass
class Runtime:
    """Everything a service process holds open; handlers get only what they need from it."""

    settings: ServiceSettings
    metadata: MetaData
    service_dir: Path
    consumers: list[ConsumerSpec] = field(default_factory=list)
    clock: Clock = field(default_factory=SystemClock)
    background: list[Callable[[Runtime], Coroutine[Any, Any, None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        tables = self.metadata.tables
        if "outbox" in tables:
            self.outbox, self.processed = tables["outbox"], tables["processed_events"]
        else:
            self.outbox, self.processed = messaging_tables(self.metadata)
        self.engine = create_engine(self.settings.database_url)
        self.relay = OutboxRelay(
            engine=self.engine, outbox=self.outbox, clock=self.clock, settings=self.settings
        )
        self.producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._consumers: list[EventConsumer] = []
        self.stopped: dict[str, str] = {}  # background loops that ended on an error: name -> error

    def uow(self) -> UnitOfWork:
        """A new unit of work; committing events wakes the relay."""
        return UnitOfWork(
            self.engine,
            self.outbox,
            self.processed,
            self.clock,
            self.relay.wake,
            zone=self.settings.zone,
        )

    async def start(self) -> None:
        """Migrate, then connect to Kafka in the background so HTTP answers even without it."""
        await upgrade(self.settings.database_url, self.service_dir)
        self._tasks.append(asyncio.create_task(self._kafka_side(), name="kafka"))
        housekeeping = run_housekeeping(
            self.engine, self.outbox, self.processed, self.clock, self.settings
        )
        self._tasks.append(asyncio.create_task(housekeeping, name="housekeeping"))
        for job in self.background:
            self._tasks.append(asyncio.create_task(job(self), name=job.__name__))
        for task in self._tasks:
            task.add_done_callback(self._remember_stopped)

    def _remember_stopped(self, task: asyncio.Task[Any]) -> None:
        if report_stopped(task):
            self.stopped[task.get_name()] = repr(task.exception())
            metrics.BACKGROUND_STOPPED.labels(self.settings.service_name, task.get_name()).set(1)

    async def _kafka_side(self) -> None:
        delay = 0.5
        while True:
            producer = make_producer(self.settings)
            try:
                await ensure_topics(self.settings, [self.settings.topic(t) for t in TOPICS])
                await producer.start()
                # a consumer that subscribes before its new topics reach the metadata would not
                # see them until its next metadata refresh: wait until every topic is known
                for short in TOPICS:
                    await asyncio.wait_for(producer.partitions_for(self.settings.topic(short)), 30)
                break
            except Exception as exc:
                log.warning("kafka not reachable yet (%r); retrying in %.1fs", exc, delay)
                await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        self.producer = producer
        runs: list[Awaitable[Any]] = [self.relay.run(producer)]
        for spec in self.consumers:
            consumer = EventConsumer(
                name=spec.name,
                topics=[self.settings.topic(t) for t in spec.topics],
                handlers=spec.handlers,
                uow_factory=self.uow,
                producer=producer,
                settings=self.settings,
                batch_handler=spec.batch_handler,
                dead_letter_unreadable=spec.dead_letter_unreadable,
            )
            await consumer.start()
            self._consumers.append(consumer)
            runs.append(consumer.run())
        await asyncio.gather(*runs)

    async def stop(self) -> None:
        """Graceful stop: consumers finish their batch and commit, then everything closes."""
        for consumer in self._consumers:
            await consumer.stop()
        await asyncio.sleep(0.6)  # one poll interval: let the batch in hand finish
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for consumer in self._consumers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.close(), 10)
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), 10)
        await self.engine.dispose()

    async def readiness(self) -> dict[str, str]:
        """What /readyz reports: the database, Kafka and the background loops, each `ok` or the
        error."""
        checks: dict[str, str] = {}
        stopped = ", ".join(f"{name} ({error})" for name, error in sorted(self.stopped.items()))
        checks["background"] = f"error: stopped: {stopped}" if stopped else "ok"
        try:
            await asyncio.wait_for(ping(self.engine), 3)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {exc!r}"
        try:
            if self.producer is None:
                raise ConnectionError("not connected yet")
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 3)
            checks["kafka"] = "ok"
        except Exception as exc:
            checks["kafka"] = f"error: {exc!r}"
        return checks


# Metrics go out as Prometheus (`/metrics`), not OpenTelemetry. FastAPIs that speak OpenTelemetry
# themselves look up the global providers (os.environ included) on every request unless told
# not to: 3% of intake's CPU per declaration under load.
NO_OPENTELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def tune_gc(gen0_threshold: int) -> None:
    """The process's garbage collector, set for serving (called once, before the server starts).

    With Python's defaults (a young-generation collection every 700 net allocations, an older
    one every 10 of those) a busy service spends a tenth of its CPU collecting: intake at 1,300
    declarations/s ran about 165 collections a second, and the older ones walked the ~146,000
    objects that importing FastAPI, SQLAlchemy and pydantic leaves behind. Those live as long
    as the process, so they are frozen out of the collector's sight, and young objects are
    collected every `gen0_threshold` allocations (0 keeps Python's setting). Reference
    counting still frees everything without cycles at once; only garbage cycles wait for the
    next collection.
    """
    gc.collect()
    gc.freeze()
    if gen0_threshold > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)


def report_stopped(task: asyncio.Task[Any]) -> bool:
    """A background loop (consumers and relay, a dispatcher, a scheduler) runs until the service
    stops; one that ends on an error leaves the service half-working, so it is said loudly (and
    /healthz fails, so that an orchestrator restarts the process). True when it did."""
    failed = not task.cancelled() and task.exception() is not None
    if failed:
        log.critical(
            "background task %s stopped: %r; restart the service", task.get_name(),
            task.exception(), exc_info=task.exception(),
        )  # fmt: skip
    return failed


def create_service_app(
    runtime: Runtime,
    *,
    title: str,
    routers: list[Any],
    body_models: Sequence[type[BaseModel]] = (),
    body_limits: Mapping[str, int | None] | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan runs the runtime, with /healthz, /readyz and /metrics.

    `body_models`: models that routes read themselves (`shared.inputs.json_body`) rather than
    as declared parameters; their schemas are added to the OpenAPI components.
    `body_limits`: path prefix -> that route's body limit in bytes (None: the route bounds its
    own streamed body); every other route reads at most `max_body_bytes`."""
    configure_logging(runtime.settings.service_name, runtime.settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan, **NO_OPENTELEMETRY)
    app.state.runtime = runtime
    service = runtime.settings.service_name
    metrics.preinit_domain_events(service)
    metrics.preinit_consumers(runtime.consumers, runtime.settings.topic)

    app.add_middleware(
        BodyLimit, default=runtime.settings.max_body_bytes, limits=dict(body_limits or {})
    )
    app.add_middleware(NulGuard)  # these two inside MeasureMiddleware: their 4xx are counted
    app.add_middleware(MeasureMiddleware, service=service)

    for router in routers:  # first: the services' own routes are matched before the probes
        app.include_router(router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        # the liveness probe: a process whose consumer, relay or dispatcher loop has ended on an
        # error answers but no longer does its work, and only a restart brings the loop back
        if runtime.stopped:
            return JSONResponse(
                {"status": "failing", "service": service, "stopped": runtime.stopped},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "service": service})

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        checks = await runtime.readiness()
        needed = checks if runtime.settings.readiness_requires_kafka else {
            k: v for k, v in checks.items() if k != "kafka"
        }  # fmt: skip
        ready = all(v == "ok" for v in needed.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"])
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(_body_not_json(error) for error in errors):
            # FastAPI reads a body as JSON only when its Content-Type says JSON; any other
            # reaches the model as bytes, which no model takes: the type is the problem
            media = request.headers.get("content-type") or "none"
            return JSONResponse(
                {"detail": f"Content-Type: {media} is not application/json"}, status_code=415
            )
        document = exc.body if isinstance(exc.body, str) else None
        return JSONResponse(validation_problem(errors, document=document), status_code=422)

    for away in DATABASE_AWAY:
        app.add_exception_handler(away, _database_unavailable)

    _document(app, body_models)
    return app


# what a request meets while its database restarts, fails over or is out of connections
DATABASE_AWAY: tuple[type[Exception], ...] = (
    DBAPIError,  # only when SQLAlchemy saw the connection die (below); other errors stay 500s
    ConnectionError,  # refused or reset while connecting
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.TooManyConnectionsError,
    PoolTimeout,  # every pooled connection busy for the pool's whole timeout
)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After for a database that is away for a moment: the same request a
    moment later is the right thing to do (a submission's Idempotency-Key makes it safe even
    when the connection died during its commit)."""
    if isinstance(exc, DBAPIError) and not exc.connection_invalidated:
        raise exc  # a statement's own error: a 500, as before
    return JSONResponse(
        {"detail": "database: unavailable for a moment; retry (with the same Idempotency-Key)"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


UNSUPPORTED_MEDIA = {"description": "Content-Type: the body is not application/json"}


def _document(app: FastAPI, models: Sequence[type[BaseModel]]) -> None:
    """Add `models` (and the models they use) to the app's OpenAPI components, and the 415
    of every operation that takes a JSON body (the validation handler's)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            if models:
                _, defs = models_json_schema(
                    [(m, "validation") for m in models],
                    ref_template="#/components/schemas/{model}",
                )
                schemas = spec.setdefault("components", {}).setdefault("schemas", {})
                for name, schema in defs.get("$defs", {}).items():
                    schemas.setdefault(name, schema)
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    content = operation.get("requestBody", {}).get("content", {})
                    if "application/json" in content:
                        operation.setdefault("responses", {}).setdefault("415", UNSUPPORTED_MEDIA)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class MeasureMiddleware:
    """Correlation id, X-Correlation-ID header and HTTP metrics for every request.

    Plain ASGI: @app.middleware("http") costs a task, a task group and a response stream per
    request, a large share of a small request's CPU.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        # (method, route, status) -> its counter and histogram; routes are templates, so few
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its correlation id set, then count and time it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        response_id = Headers(scope=scope).get("x-correlation-id") or str(uuid.uuid4())
        status_code = 0

        async def send_measured(message: Message) -> None:
            nonlocal status_code
            if message["type"] != "http.response.start":
                await send(message)
                return
            status_code = message["status"]
            MutableHeaders(scope=message)["X-Correlation-ID"] = response_id
            # the server's access line is written outside the request's correlation, as it
            # always was with the response sent after the middleware returned
            outside = correlation_id.set(None)
            try:
                await send(message)
            finally:
                correlation_id.reset(outside)

        token = correlation_id.set(response_id)
        try:
            await self.app(scope, receive, send_measured)
        finally:
            correlation_id.reset(token)
        route = getattr(scope.get("route"), "path", "unmatched")
        key = (scope["method"], route, status_code)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds its key on every call
            method = scope["method"]
            children = self._children[key] = (
                metrics.HTTP_REQUESTS.labels(self.service, method, route, status_code),
                metrics.HTTP_SECONDS.labels(self.service, method, route),
            )
        children[0].inc()
        children[1].observe(time.perf_counter() - started)


def validation_problem(errors: Sequence[Any], *, document: str | None = None) -> dict[str, Any]:
    """The stable error shape: every problem names its field. `document`: the body FastAPI
    could not parse as JSON, to place its error by line and column."""
    problems = []
    for err in errors:
        if err.get("type") == "json_invalid":
            problems.append({"field": "body", "problem": _json_problem(err, document)})
            continue
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        problems.append({"field": ".".join(loc) or "body", "problem": message})
    return {"error": "validation_failed", "errors": problems}


def _json_problem(error: Mapping[str, Any], document: str | None) -> str:
    """A body that is not JSON, said as `shared.inputs.json_body` says it: FastAPI's error
    gives the decoder's message and the character offset (its loc), not the line and column."""
    reason = str((error.get("ctx") or {}).get("error") or "not valid JSON")
    loc = error.get("loc", ())
    offset = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    if offset is None or document is None:
        return f"Invalid JSON: {reason}"
    line = document.count("\n", 0, offset) + 1
    column = offset - document.rfind("\n", 0, offset)
    return f"Invalid JSON: {reason} at line {line} column {column}"


def _body_not_json(error: Mapping[str, Any]) -> bool:
    """Whether FastAPI handed the whole body to the model as bytes: it was not JSON by its
    Content-Type (none, or another type)."""
    return tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes)


async def runtime_of(request: Request) -> Runtime:
    """FastAPI dependency: the runtime of the app serving this request (async: no thread hop)."""
    runtime: Runtime = request.app.state.runtime
    return runtime
