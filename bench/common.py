"""What every benchmark shares: the Result row, processes, databases and a light HTTP client."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shared import infra  # noqa: E402
from tests.support import wait_ready  # noqa: E402

APP_KEY = "holdline-dev-app-key"  # the development app key every service accepts


@dataclass
class Result:
    """One row of the results table: a figure beside its baseline from the same run.

    `ratio` is oriented so that the target reads naturally: figure/baseline for throughput
    (higher is better), figure/baseline for latency too (lower is better); `target` says which.
    """

    name: str
    figure: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def failed(cls, name: str, error: str) -> Result:
        """A benchmark that could not produce its figure."""
        return cls(name=name, figure=None, unit="", met=False, notes=f"FAILED: {error}")


def judge(ratio: float | None, target: str) -> bool | None:
    """Whether `ratio` meets a target written as '>= 0.5' or '<= 3'."""
    if ratio is None or not target:
        return None
    op, _, bound = target.partition(" ")
    value = float(bound.rstrip("x"))
    return ratio >= value if op == ">=" else ratio <= value


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; nan when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# ---------------------------------------------------------------- processes and machine facts


def rss_kb(pid: int) -> int:
    """Resident set size of a process, from /proc (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (the state is [0]); [] once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds a process has used so far, from /proc; with `reaped`, also
    what its children that have ended used (the kernel adds theirs when they are waited for)."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) and int(fields[1]) == pid:
            found.append(int(entry))
    return found


class CpuUse:
    """CPU seconds each part of the platform spends over a run, from /proc: each service's
    processes, PostgreSQL (the postmaster, its live backends and those that ended meanwhile),
    the Kafka broker and this benchmark process (its load generators and receivers).

    `per(n)` divides what was spent since the start by n, in microseconds: the CPU a record
    or a declaration cost the machine, and what two busy cores could then do at most."""

    def __init__(self, services: dict[str, list[int]]) -> None:
        self.services = services
        self.postgres = infra.postgres_pid()
        self.kafka = infra.kafka_pid()
        self.start = self.read()

    def read(self) -> dict[str, float]:
        spent = {name: sum(map(cpu_seconds, pids)) for name, pids in self.services.items()}
        if self.postgres is not None:
            spent["postgresql"] = cpu_seconds(self.postgres, reaped=True) + sum(
                map(cpu_seconds, children_of(self.postgres))
            )
        if self.kafka is not None:
            spent["kafka"] = cpu_seconds(self.kafka)
        spent["benchmark"] = time.process_time()
        return spent

    def per(self, count: int) -> dict[str, float]:
        """Microseconds of CPU per item since the start, by part, and their sum as `all`."""
        now = self.read()
        us = {part: round((now[part] - self.start[part]) * 1e6 / count, 1) for part in now}
        us["all"] = round(sum(us.values()), 1)
        return us


def cpu_ceiling(us_per_item: float) -> float:
    """Items/s that every core of this machine, fully busy, could do at this CPU per item."""
    return (os.cpu_count() or 1) * 1e6 / us_per_item


def cpu_note(us: dict[str, float], unit: str) -> str:
    """`us` (from CpuUse.per) for a table's notes: the largest parts, the sum, the ceiling."""
    parts = sorted((p for p in us if p != "all"), key=lambda p: -us[p])
    shown = ", ".join(f"{p} {us[p]:,.0f}" for p in parts if us[p] >= 1)
    return (
        f"CPU a {unit} (us): {shown}; all {us['all']:,.0f}, so {os.cpu_count()} busy cores "
        f"allow at most {cpu_ceiling(us['all']):,.0f} {unit}s/s"
    )


def kafka_version() -> str:
    """The broker version, from the jar `holdline infra up` runs."""
    jars = sorted((infra.KAFKA_HOME / "lib").glob("kafka-server-[0-9]*.jar"))
    return jars[0].stem.removeprefix("kafka-server-") if jars else "unknown"


def git_revision() -> str:
    """The checked-out commit, read from .git without running git."""
    git = REPO / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return "unknown"


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: cores, load, versions, revision."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kafka": kafka_version(),
        "platform": platform.platform(),
        "git_revision": git_revision(),
    }


class Process:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            argv, env=env, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    async def wait_http(self, url: str, timeout: float = 90) -> None:
        """Wait until GET `url` answers 200 (or fail with the log's tail)."""
        async with httpx.AsyncClient(timeout=3) as http:
            await wait_ready(http, url, self.log, self.proc, timeout)

    def stop(self) -> None:
        """Stop it and wait."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def pg_dsn() -> str:
    """The PostgreSQL server `holdline infra up` runs, as an asyncpg DSN without a database."""
    return f"postgresql://holdline:holdline@127.0.0.1:{infra.InfraSettings.from_env().pg_port}"


async def unreachable() -> list[str]:
    """What the benchmarks need and cannot reach (the broker and the PostgreSQL server that
    `holdline infra up` runs), one line each naming the address and the error; empty when
    both answer."""
    problems = []
    port = infra.kafka_port()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        writer.close()
    except (OSError, TimeoutError) as exc:
        problems.append(f"Kafka is not reachable at 127.0.0.1:{port} ({type(exc).__name__})")
    try:
        conn = await asyncpg.connect(f"{pg_dsn()}/postgres", timeout=5)
        await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        address = pg_dsn().rsplit("@", 1)[1]
        problems.append(f"PostgreSQL is not reachable at {address} ({type(exc).__name__})")
    return problems


async def new_database() -> str:
    """A fresh, empty database; returns its SQLAlchemy URL."""
    name = f"holdline_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(f"{pg_dsn()}/postgres", timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{pg_dsn().removeprefix('postgresql://')}/{name}"


async def drop_database(url: str) -> None:
    """Drop a database made by new_database(); a failure is reported, never raised, so that a
    benchmark's figures outlive its clean-up.

    This role's sessions are ended first, then a plain DROP stops an autovacuum worker by
    itself. DROP ... WITH (FORCE) would have to signal that worker, which an ordinary role may
    not do, and after a large feed the big tables are often being vacuumed."""
    name = url.rsplit("/", 1)[1]
    try:
        conn = await asyncpg.connect(f"{pg_dsn()}/postgres", timeout=5)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid() AND usename = current_user",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"warning: database {name} left behind: {exc!r}", file=sys.stderr, flush=True)


async def delete_topics(bootstrap: str, prefixes: Iterable[str]) -> None:
    """Delete the topics whose names start with any of `prefixes`; a failure is reported,
    never raised. Every test and benchmark names its topics afresh, and a broker left with the
    partitions of many runs (about 12,000) ran out of its 512 MB heap."""
    wanted = tuple(prefixes)
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        await admin.start()
        try:
            names = [t for t in await admin.list_topics() if t.startswith(wanted)]
            for start in range(0, len(names), 100):  # a bounded request each
                await admin.delete_topics(names[start : start + 100])
        finally:
            await admin.close()
    except (OSError, KafkaError) as exc:
        print(f"warning: topics {wanted} left behind: {exc!r}", file=sys.stderr, flush=True)


async def connect(url: str) -> asyncpg.Connection:
    """An asyncpg connection to a database made by new_database() (or a service's)."""
    return await asyncpg.connect(f"{pg_dsn()}/{url.rsplit('/', 1)[1]}", timeout=5)


async def fetch_value(url: str, query: str) -> Any:
    """One value from a database made by new_database()."""
    conn = await connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


# ---------------------------------------------------------------- a light HTTP/1.1 client


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams.

    The load generator must not be the bottleneck on a 2-core machine; a full client library
    costs several times more CPU per request than the server under test spends on a bare
    endpoint, so requests are written and answers parsed by hand.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._closing = False  # the server said `Connection: close`

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def post(self, path: str, body: bytes, headers: bytes = b"") -> tuple[int, bytes]:
        """POST a JSON body; returns the status and the answer's body. A kept-alive connection
        the server closed meanwhile (uvicorn drops idle ones after 5 s) is reopened once."""
        reused = self._reader is not None
        try:
            return await self._post(path, body, headers)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
        return await self._post(path, body, headers)

    async def _post(self, path: str, body: bytes, headers: bytes) -> tuple[int, bytes]:
        reader, writer = await self._open()
        writer.write(
            b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n%s"
            % (path.encode(), self.host.encode(), self.port, len(body), headers, body)
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"connection" and value.strip().lower() == b"close":
                self._closing = True
        answer = await reader.readexactly(length) if length else b""
        if self._closing:
            self.close()
        return status, answer

    def close(self) -> None:
        """Drop the connection (the next post opens a new one)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        self._closing = False


@dataclass
class LoadOutcome:
    """What a closed-loop run measured."""

    sent: int
    statuses: dict[int, int]
    latencies: list[float]  # seconds, of the answers with the expected status
    elapsed: float
    client_cpu: float  # CPU seconds the generator (this process) used meanwhile
    server_cpu: float  # CPU seconds the server process used meanwhile

    def rate(self) -> float:
        """Expected answers per second."""
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def saturate(
    *,
    port: int,
    path: str,
    bodies: Iterator[bytes],
    headers: bytes,
    expect: int,
    concurrency: int,
    seconds: float,
    server_pid: int,
) -> LoadOutcome:
    """Closed loop: `concurrency` connections each send the next body as soon as the last
    answer came back, for `seconds`; every request carries a distinct body."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    sent = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def worker() -> None:
        nonlocal sent
        conn = Connection("127.0.0.1", port)
        try:
            while loop.time() < deadline:
                body = next(bodies, None)
                if body is None:
                    return
                sent += 1
                started = time.perf_counter()
                try:
                    status, _ = await conn.post(path, body, headers)
                except (asyncio.IncompleteReadError, ConnectionError):
                    status = 0
                statuses[status] = statuses.get(status, 0) + 1
                if status == expect:
                    latencies.append(time.perf_counter() - started)
        finally:
            conn.close()

    cpu0, server0, wall0 = time.process_time(), cpu_seconds(server_pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - wall0
    return LoadOutcome(
        sent=sent,
        statuses=statuses,
        latencies=latencies,
        elapsed=elapsed,
        client_cpu=time.process_time() - cpu0,
        server_cpu=cpu_seconds(server_pid) - server0,
    )


def dumps(body: dict[str, Any]) -> bytes:
    """Compact JSON bytes, as an app would send them."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
