"""The chaos run's own processes: a private Kafka and PostgreSQL, the four services, a receiver.

Nothing here touches the shared development broker or cluster: the private pair listens on free
ports and keeps its state in a temporary directory, and `close()` purges it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from services.demo import free_port
from shared.infra import InfraSettings, pg_dsn

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "risk", "assistance", "notify")
Say = Callable[[str], None]


class ChaosError(RuntimeError):
    """The chaos run could not set something up."""


def _free_pair() -> int:
    """A free port whose successor is free too (the KRaft controller takes port + 1)."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and not _listening(port + 1):
            return port
    raise ChaosError("no two consecutive free ports for the private Kafka")


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PrivateInfra:
    """Kafka and PostgreSQL of this run only, driven through `holdline infra` as a subprocess."""

    def __init__(self, state_dir: Path, say: Say) -> None:
        self.settings = InfraSettings(state_dir.resolve(), _free_pair(), free_port())
        self.say = say
        self.env = os.environ | {
            "HOLDLINE_KAFKA_PORT": str(self.settings.kafka_port),
            "HOLDLINE_PG_PORT": str(self.settings.pg_port),
            "HOLDLINE_STATE_DIR": str(self.settings.state_dir),
        }

    @property
    def bootstrap(self) -> str:
        """The private broker's address."""
        return f"127.0.0.1:{self.settings.kafka_port}"

    def dsn(self, service: str) -> str:
        """A service's SQLAlchemy URL on the private cluster."""
        return pg_dsn(service, self.settings)

    def _infra(self, *args: str) -> None:
        cmd = [sys.executable, "-m", "services.cli", "infra", *args]
        done = subprocess.run(cmd, env=self.env, cwd=REPO, capture_output=True, text=True)
        if done.returncode:
            raise ChaosError(f"holdline infra {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def up(self) -> None:
        """Start both (the broker jars are the cached ones of deploy/local/kafka/lib)."""
        self._infra("up")
        self.say(f"private kafka {self.bootstrap}, postgres 127.0.0.1:{self.settings.pg_port}")

    def down(self) -> None:
        """Stop both and delete their data."""
        self._infra("down", "--purge")

    def kafka_pid(self) -> int:
        """The broker's pid, from the pid file `infra up` wrote."""
        return int((self.settings.kafka_dir / "kafka.pid").read_text().split()[0])

    def kill_kafka(self) -> None:
        """SIGKILL the broker, as a crash would."""
        pid = self.kafka_pid()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_kafka(self) -> None:
        """Start the (killed) broker again on the same data."""
        self._infra("up", "--no-postgres")

    def restart_postgres(self) -> None:
        """pg_ctl stop (fast: every session is cut) and start again."""
        self._infra("down", "--no-kafka")
        self._infra("up", "--no-kafka")


def _process_alive(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())  # a zombie's is empty
    except OSError:
        return False


class Fleet:
    """The four services as processes with fixed ports, each killable and restartable."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.ports = {name: free_port() for name in SERVICES}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.env = dict(env)
        for name, port in self.ports.items():
            self.env[f"HOLDLINE_{name.upper()}_PORT"] = str(port)
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        """Start one service (its log is appended to, so restarts keep the history)."""
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", name],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self, name: str) -> None:
        """SIGKILL one service: no graceful shutdown, no offset commit, no cleanup."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def wait_ready(self, name: str, timeout: float = 120) -> None:
        """Until /readyz answers 200 (database and Kafka reachable)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise ChaosError(f"{name} exited:\n{self.tail(name)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.urls[name]}/readyz", timeout=3).status_code == 200:
                    return
            time.sleep(0.3)
        raise ChaosError(f"{name} not ready after {timeout:.0f} s:\n{self.tail(name)}")

    def tail(self, name: str, size: int = 3000) -> str:
        """The end of a service's log."""
        return (self.logs / f"{name}.log").read_text(errors="replace")[-size:]

    def stop(self) -> None:
        """SIGTERM all, SIGKILL what is still running after 20 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class ReceiverProcess:
    """bench/notify_receiver.py failing a share of calls; going down means being killed."""

    def __init__(self, logs: Path, failure_rate: float, seed: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.calls_log = logs / "receiver_calls.ndjson"
        self.failure_rate = failure_rate
        self.seed = seed
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Listen on the same port as before, appending to the same call log."""
        script = Path(__file__).with_name("notify_receiver.py")
        self.starts += 1
        args = [str(self.port), str(self.failure_rate), str(self.seed + self.starts)]
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args, str(self.calls_log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if b"ready" not in line:
            raise ChaosError(f"receiver did not start: {line!r}")

    def kill(self) -> None:
        """Down: connections are refused until start() again."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
