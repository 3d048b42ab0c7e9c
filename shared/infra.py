"""Local Kafka and PostgreSQL that the project fetches, starts and stops itself."""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    pass

REPO = Path(__file__).resolve().parents[1]
KAFKA_HOME = REPO / "deploy" / "local" / "kafka"
DEFAULT_STATE_DIR = REPO / ".holdline"
SERVICES = ("intake", "risk", "assistance", "notify")
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
KAFKA_MARKER = "kafka.Kafka"
KAFKA_READY = "Kafka Server started"
LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
"""

console = Console(highlight=False, markup=False)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


class InfraError(RuntimeError):
    """A component could not be fetched, started or stopped."""


class BadSetting(InfraError):
    """A setting (an environment variable or an option) that cannot be used: exit status 2."""


@dataclass(frozen=True)
class InfraSettings:
    """Where the local infrastructure keeps its state and which ports it listens on."""

    state_dir: Path = DEFAULT_STATE_DIR
    kafka_port: int = 19092
    pg_port: int = 55432

    @classmethod
    def from_env(cls) -> InfraSettings:
        """Defaults, overridden by HOLDLINE_STATE_DIR, HOLDLINE_KAFKA_PORT and HOLDLINE_PG_PORT."""
        env = os.environ
        return cls(
            state_dir=Path(env.get("HOLDLINE_STATE_DIR") or DEFAULT_STATE_DIR).resolve(),
            # the KRaft controller takes the port after the broker's
            kafka_port=_env_port("HOLDLINE_KAFKA_PORT", cls.kafka_port, top=65534),
            pg_port=_env_port("HOLDLINE_PG_PORT", cls.pg_port),
        )

    @property
    def controller_port(self) -> int:
        """The KRaft controller listens on the port after the broker's."""
        return self.kafka_port + 1

    @property
    def kafka_dir(self) -> Path:
        """Broker config, data and logs."""
        return self.state_dir / "kafka"


def _env_port(name: str, default: int, top: int = 65535) -> int:
    """The port in environment variable `name` (`default` when unset), or a BadSetting."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise BadSetting(f"{name}: {raw!r} is not a valid integer") from None
    if not 1 <= port <= top:
        raise BadSetting(f"{name}: {port} is not a port (1-{top})")
    return port


def kafka_port(settings: InfraSettings | None = None) -> int:
    """The broker's port, so its bootstrap address is 127.0.0.1:<port>."""
    return (settings or InfraSettings.from_env()).kafka_port


def pg_dsn(service: str, settings: InfraSettings | None = None) -> str:
    """The SQLAlchemy URL of one service's database on the local cluster."""
    port = (settings or InfraSettings.from_env()).pg_port
    return f"postgresql+asyncpg://holdline:holdline@127.0.0.1:{port}/holdline_{service}"


# --- processes ---------------------------------------------------------------------------------


def _alive(pid: int, marker: str) -> bool:
    """True when `pid` is a live process whose command line contains `marker`."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # a broker started by this very process would linger as zombie
    try:
        # the marker guards against a recycled pid; a zombie's cmdline is empty
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _read_pid(path: Path, marker: str) -> int | None:
    """The pid on the first line of `path` when that process is alive."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid > 0 and _alive(pid, marker) else None


def _terminate(pid: int, marker: str, timeout: float) -> None:
    """SIGTERM `pid`, then SIGKILL it when it is still alive after `timeout` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _alive(pid, marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _alive(pid, marker):
            return
    raise InfraError(f"process {pid} survived SIGKILL")


def _port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _run(cmd: Sequence[object], what: str, cwd: Path | None = None, stdin: str = "") -> str:
    """Run `cmd` and return its stdout; a failure becomes an InfraError with its last line."""
    args = [str(c) for c in cmd]
    try:
        done = subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True)
    except OSError as exc:
        raise InfraError(f"{what}: {exc}") from exc
    if done.returncode:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise InfraError(f"{what} failed (exit {done.returncode}): {last}")
    return done.stdout


def _which(tool: str, hint: str) -> str:
    """The path of `tool`, or an InfraError saying how to install it."""
    path = shutil.which(tool)
    if not path:
        raise InfraError(f"`{tool}` not found on PATH; {hint}")
    return path


# --- Kafka -------------------------------------------------------------------------------------


def _kafka_pid(s: InfraSettings) -> int | None:
    return _read_pid(s.kafka_dir / "kafka.pid", KAFKA_MARKER)


def kafka_pid(settings: InfraSettings | None = None) -> int | None:
    """The pid of the broker this project started, when it is alive."""
    return _kafka_pid(settings or InfraSettings.from_env())


def kafka_running(settings: InfraSettings | None = None) -> bool:
    """True when the broker this project started is alive and accepting connections."""
    s = settings or InfraSettings.from_env()
    return _kafka_pid(s) is not None and _port_open(s.kafka_port)


def _fetch_kafka() -> Path:
    """The broker's jars, fetched from Maven Central unless already there."""
    lib = KAFKA_HOME / "lib"
    if any(lib.glob("*.jar")):
        return lib
    mvn = _which("mvn", "install Maven (apt-get install maven)")
    console.print("kafka: fetching jars from Maven Central (first run only)")
    partial = KAFKA_HOME / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    pom, out = KAFKA_HOME / "pom.xml", f"-DoutputDirectory={partial}"
    goal = ["dependency:copy-dependencies", out, "-DincludeScope=runtime"]
    _run([mvn, "-q", "-B", "-f", pom, *goal], "kafka: fetching jars")
    shutil.rmtree(lib, ignore_errors=True)
    partial.rename(lib)  # only a complete fetch becomes lib/, so an interrupted one is not cached
    return lib


def _java_cmd(s: InfraSettings, main: str) -> list[str]:
    java = _which("java", "install a JDK 17+ (apt-get install default-jre-headless)")
    log4j = f"-Dlog4j2.configurationFile={s.kafka_dir / 'log4j2.properties'}"
    return [java, "-Xmx512m", "-cp", f"{KAFKA_HOME / 'lib'}/*", log4j, main]


def _configure_kafka(s: InfraSettings) -> None:
    """Write server.properties and the log4j2 config into the state dir."""
    (s.kafka_dir / "data").mkdir(parents=True, exist_ok=True)
    port, ctrl = s.kafka_port, s.controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": f"1@127.0.0.1:{ctrl}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": s.kafka_dir / "data",
        # a single broker: every internal topic has exactly one replica
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        "num.partitions": 4,
        "auto.create.topics.enable": "true",
    }
    text = "".join(f"{key}={value}\n" for key, value in props.items())
    (s.kafka_dir / "server.properties").write_text(text)
    (s.kafka_dir / "log4j2.properties").write_text(LOG4J.format(log=s.kafka_dir / "server.log"))


def _check_kafka_ports(s: InfraSettings) -> None:
    for port in (s.kafka_port, s.controller_port):
        if _port_open(port):
            raise InfraError(
                f"kafka: port {port} is already in use by another process (another checkout's"
                " broker? stop it with its `holdline infra down`, or set HOLDLINE_KAFKA_PORT)"
            )


def ensure_kafka(settings: InfraSettings | None = None) -> None:
    """Fetch, configure and format the broker when needed, then start it unless it is running."""
    s = settings or InfraSettings.from_env()
    if kafka_running(s):
        console.print(f"kafka: already running on 127.0.0.1:{s.kafka_port} (pid {_kafka_pid(s)})")
        return
    if _kafka_pid(s) is None:
        _check_kafka_ports(s)
    _fetch_kafka()
    _configure_kafka(s)
    if not (s.kafka_dir / "data" / "meta.properties").exists():
        console.print("kafka: formatting storage")
        tool = _java_cmd(s, "kafka.tools.StorageTool")
        cluster_id = _run([*tool, "random-uuid"], "kafka: random-uuid").split()[-1]
        config = s.kafka_dir / "server.properties"
        _run([*tool, "format", "-t", cluster_id, "-c", config], "kafka: formatting storage")
    start_kafka(s)


def start_kafka(settings: InfraSettings | None = None) -> None:
    """Start the already fetched and formatted broker and wait until it serves; no-op if running."""
    s = settings or InfraSettings.from_env()
    if kafka_running(s):
        console.print(f"kafka: already running on 127.0.0.1:{s.kafka_port} (pid {_kafka_pid(s)})")
        return
    if _kafka_pid(s):
        console.print("kafka: broker process is not answering; restarting it")
        stop_kafka(s)
    if not (s.kafka_dir / "data" / "meta.properties").exists():
        raise InfraError(f"kafka: no formatted storage in {s.kafka_dir}; run `holdline infra up`")
    _check_kafka_ports(s)
    log, out_log = s.kafka_dir / "server.log", s.kafka_dir / "stdout.log"
    offset = log.stat().st_size if log.exists() else 0  # the readiness line must be from this start
    started = time.monotonic()
    cmd = [*_java_cmd(s, "kafka.Kafka"), str(s.kafka_dir / "server.properties")]
    with out_log.open("ab") as out:
        # a session of its own, so Ctrl-C in this terminal does not reach the broker
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    (s.kafka_dir / "kafka.pid").write_text(f"{proc.pid}\n")
    console.print(f"kafka: starting (pid {proc.pid})")
    while not (_port_open(s.kafka_port) and KAFKA_READY in _read_from(log, offset)):
        if proc.poll() is not None:
            (s.kafka_dir / "kafka.pid").unlink(missing_ok=True)
            raise InfraError(
                f"kafka: broker exited with code {proc.returncode} while starting; see {log}"
                f" and {out_log}"
            )
        if time.monotonic() - started > READY_TIMEOUT:
            stop_kafka(s)
            raise InfraError(f"kafka: not ready after {READY_TIMEOUT:.0f} s; see {log}")
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    console.print(f"kafka: ready on 127.0.0.1:{s.kafka_port} ({elapsed:.1f} s)")


def _read_from(path: Path, offset: int) -> str:
    """The text of `path` after byte `offset` ('' while the file does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def stop_kafka(settings: InfraSettings | None = None, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the broker this project started; True when one was running. Data is kept."""
    s = settings or InfraSettings.from_env()
    pid = _kafka_pid(s)
    if pid is not None:
        started = time.monotonic()
        _terminate(pid, KAFKA_MARKER, timeout)
        console.print(f"kafka: stopped pid {pid} ({time.monotonic() - started:.1f} s)")
    else:
        console.print("kafka: not running")
    (s.kafka_dir / "kafka.pid").unlink(missing_ok=True)
    return pid is not None


# --- PostgreSQL --------------------------------------------------------------------------------


def _as_root() -> bool:
    return os.geteuid() == 0


def _as_postgres(*cmd: object) -> list[object]:
    """`cmd` run as the `postgres` user when we are root, since postgres refuses to run as root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if _as_root() else list(cmd)


def _pg_dir(s: InfraSettings) -> Path:
    """The cluster's directory: <state>/pg, or /var/tmp/holdline-pg-<port> when that cannot work."""
    pg = s.state_dir / "pg"
    socket_path = pg / "run" / f".s.PGSQL.{s.pg_port}"
    # As root the cluster runs as `postgres`, which cannot reach a repo under e.g. /root (0700);
    # chmod-ing someone's home is not ours to do. Unix socket paths are limited to 107 bytes.
    # /var/tmp is reachable by everyone and survives reboots, so the cluster goes there instead.
    probe = [str(c) for c in _as_postgres("test", "-x", s.state_dir)]
    reachable = not _as_root() or subprocess.run(probe, capture_output=True).returncode == 0
    if reachable and len(str(socket_path)) <= 100:
        return pg
    return Path(f"/var/tmp/holdline-pg-{s.pg_port}")


def _version(bin_dir: str) -> tuple[int, ...]:
    return tuple(int(p) for p in Path(bin_dir).parent.name.split(".") if p.isdigit())


def _pg_bin(data: Path, install: bool = False) -> Path:
    """The server binaries: those matching an existing data dir, else the newest installed."""
    with contextlib.suppress(OSError):
        own = Path(f"/usr/lib/postgresql/{(data / 'PG_VERSION').read_text().strip()}/bin")
        if (own / "pg_ctl").exists():
            return own
    initdbs = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    found = sorted((os.path.dirname(p) for p in initdbs), key=_version)
    if found:
        return Path(found[-1])
    if on_path := shutil.which("initdb"):
        return Path(on_path).parent
    if not install or not _as_root():
        raise InfraError("postgres: no PostgreSQL server found; apt-get install postgresql")
    console.print("postgres: installing PostgreSQL with apt-get")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        if subprocess.run(cmd, env=env, capture_output=True).returncode:
            raise InfraError(f"postgres: `{' '.join(cmd)}` failed")
    return _pg_bin(data)


def _pg_pid(pg: Path) -> int | None:
    return _read_pid(pg / "data" / "postmaster.pid", "postgres")


def postgres_pid(settings: InfraSettings | None = None) -> int | None:
    """The pid of the postmaster of the cluster this project started, when it is alive."""
    return _pg_pid(_pg_dir(settings or InfraSettings.from_env()))


def postgres_running(settings: InfraSettings | None = None) -> bool:
    """True when the cluster this project started is alive and accepting connections."""
    s = settings or InfraSettings.from_env()
    return _pg_pid(_pg_dir(s)) is not None and _port_open(s.pg_port)


def _initdb(bin_dir: Path, pg: Path) -> None:
    console.print(f"postgres: creating cluster in {pg / 'data'}")
    cmd = [bin_dir / "initdb", "-D", pg / "data", "--auth=trust", "-U", "postgres", "-E", "UTF8"]
    try:
        _run(_as_postgres(*cmd, "--locale=C.UTF-8"), "postgres: initdb", cwd=pg)
    except InfraError:
        _run(_as_postgres(*cmd, "--locale=C"), "postgres: initdb", cwd=pg)


def ensure_postgres(settings: InfraSettings | None = None) -> None:
    """Create the private cluster when needed, start it unless running, add role and databases."""
    s = settings or InfraSettings.from_env()
    s.state_dir.mkdir(parents=True, exist_ok=True)
    pg = _pg_dir(s)
    data, run = pg / "data", pg / "run"
    pid = _pg_pid(pg)
    if pid is not None:
        console.print(f"postgres: already running on 127.0.0.1:{s.pg_port} (pid {pid})")
        bin_dir = _pg_bin(data)
    else:
        if _port_open(s.pg_port):
            raise InfraError(
                f"postgres: port {s.pg_port} is already in use by another process (another"
                " checkout's server? stop it with its `holdline infra down`, or set"
                " HOLDLINE_PG_PORT)"
            )
        bin_dir = _pg_bin(data, install=True)
        for d in (pg, data, run):
            d.mkdir(parents=True, exist_ok=True)
            if _as_root():
                shutil.chown(d, "postgres", "postgres")
        if not any(data.iterdir()):
            _initdb(bin_dir, pg)
        started = time.monotonic()
        # fsync=off: this cluster only ever holds local development and test data
        opts = (
            f"-p {s.pg_port} -k {shlex.quote(str(run))} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c max_connections=200"
        )
        log = pg / "server.log"
        pg_ctl = [bin_dir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "90", "-o", opts]
        _run(_as_postgres(*pg_ctl, "start"), f"postgres: start (see {log})", cwd=pg)
        elapsed = time.monotonic() - started
        console.print(f"postgres: ready on 127.0.0.1:{s.pg_port} ({elapsed:.1f} s)")
    names = ", ".join(f"'holdline_{service}'" for service in SERVICES)
    sql = f"""
SELECT 'CREATE ROLE holdline LOGIN CREATEDB PASSWORD ''holdline'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'holdline') \\gexec
SELECT format('CREATE DATABASE %I OWNER holdline', name) FROM unnest(ARRAY[{names}]) AS name
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = name) \\gexec
"""
    psql = [bin_dir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"]
    where = ["-h", run, "-p", s.pg_port, "-U", "postgres"]
    _run(_as_postgres(*psql, *where), "postgres: role and databases", cwd=pg, stdin=sql)


def stop_postgres(settings: InfraSettings | None = None) -> bool:
    """Stop the cluster this project started (fast shutdown); True when it was running."""
    s = settings or InfraSettings.from_env()
    pg = _pg_dir(s)
    pid = _pg_pid(pg)
    if pid is None:
        console.print("postgres: not running")
        return False
    started = time.monotonic()
    pg_ctl = _pg_bin(pg / "data") / "pg_ctl"
    _run(
        _as_postgres(pg_ctl, "-D", pg / "data", "-m", "fast", "-w", "stop"),
        "postgres: stop",
        cwd=pg,
    )
    console.print(f"postgres: stopped pid {pid} ({time.monotonic() - started:.1f} s)")
    return True


# --- CLI ---------------------------------------------------------------------------------------

infra_app = typer.Typer(
    help="Local Kafka and PostgreSQL for development and tests.", no_args_is_help=True
)
KafkaFlag = Annotated[bool, typer.Option("--kafka/--no-kafka", help="Include Kafka.")]
PgFlag = Annotated[bool, typer.Option("--postgres/--no-postgres", help="Include PostgreSQL.")]
KafkaPort = Annotated[
    int,
    typer.Option(
        envvar="HOLDLINE_KAFKA_PORT",
        min=1,
        max=65534,
        help="Broker port; the controller uses +1.",
    ),
]
PgPort = Annotated[
    int, typer.Option(envvar="HOLDLINE_PG_PORT", min=1, max=65535, help="PostgreSQL port.")
]
StateDir = Annotated[
    Path, typer.Option(envvar="HOLDLINE_STATE_DIR", help="Configs, data, logs and pid files.")
]


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn an infrastructure failure into one red line and exit status 1 (every command that
    starts Kafka or PostgreSQL: `infra`, `demo`)."""
    try:
        yield
    except BadSetting as exc:
        err.print(str(exc), style="red")
        raise typer.Exit(2) from None
    except (InfraError, OSError) as exc:
        err.print(str(exc), style="red")
        raise typer.Exit(1) from None


@infra_app.command()
def up(
    kafka: KafkaFlag = True,
    postgres: PgFlag = True,
    kafka_port: KafkaPort = 19092,
    pg_port: PgPort = 55432,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Fetch and start Kafka and PostgreSQL, waiting until they serve; running ones are kept."""
    s = InfraSettings(state_dir.resolve(), kafka_port, pg_port)
    with cli_errors():
        if kafka:
            ensure_kafka(s)
        if postgres:
            ensure_postgres(s)


@infra_app.command()
def down(
    kafka: KafkaFlag = True,
    postgres: PgFlag = True,
    kafka_port: KafkaPort = 19092,
    pg_port: PgPort = 55432,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the data.")] = False,
) -> None:
    """Stop what `up` started; data is kept unless --purge."""
    s = InfraSettings(state_dir.resolve(), kafka_port, pg_port)
    with cli_errors():
        if kafka:
            stop_kafka(s)
            if purge:
                shutil.rmtree(s.kafka_dir, ignore_errors=True)
                console.print(f"kafka: deleted {s.kafka_dir}")
        if postgres:
            stop_postgres(s)
            if purge:
                shutil.rmtree(_pg_dir(s), ignore_errors=True)
                console.print(f"postgres: deleted {_pg_dir(s)}")


@infra_app.command()
def status(
    kafka_port: KafkaPort = 19092,
    pg_port: PgPort = 55432,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Show whether each component runs, on which port and pid, and how to connect to it."""
    s = InfraSettings(state_dir.resolve(), kafka_port, pg_port)
    with cli_errors():
        pid = _kafka_pid(s)
        state = "running" if kafka_running(s) else "not running"
        console.print(f"kafka: {state}, port {s.kafka_port}, pid {pid or '-'}, dir {s.kafka_dir}")
        console.print(f"  bootstrap 127.0.0.1:{s.kafka_port}")
        pg = _pg_dir(s)
        pid = _pg_pid(pg)
        state = "running" if postgres_running(s) else "not running"
        console.print(f"postgres: {state}, port {s.pg_port}, pid {pid or '-'}, dir {pg}")
        for service in SERVICES:
            console.print(f"  {pg_dsn(service, s)}")
