"""The chaos run: the whole platform under crashes, and proof that nothing was lost or doubled.

    .venv/bin/python bench/chaos.py                      # 100,000 signals (make chaos)
    .venv/bin/python bench/chaos.py --signals 1500 --receiver-down 5 --fault-gap 3

It starts its own Kafka and PostgreSQL (free ports, a temporary state directory; the shared
development ones are never touched), the four services as processes, and a webhook receiver
that fails half its calls. While the signals go in (declarations over the API, department feed
uploads, and a few poison messages written straight onto the signals topic) and officials work
the cases (the county places the cases of households whose feed records named no village; a
village takes a sample of declared households' cases through the home verification and the
public notice and, once every signal is sent, rejects them), it SIGKILLs and restarts the
broker and each service in turn, restarts PostgreSQL, and takes the receiver down for a while.
Then it waits until nothing is in flight and checks, from the services' own databases, the DLQ
topics and the receiver's call log: every accepted signal reached a case (lost = 0), no
duplicate cases (a signal after a rejection rightly opens a new one), each official's action
recorded once, one notification per (event, recipient, channel) and each delivered, assistance's
plans in their cases' villages and ended with a rejected case, intake showing the rejections,
and the DLQs hold exactly the poison. Exit status 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from bench.chaos_infra import SERVICES, Fleet, PrivateInfra, ReceiverProcess
from bench.chaos_load import Strikes, build_traffic, casework, drive
from bench.chaos_verify import Check, Verdict, verify, wait_quiescent

console = Console(highlight=False)
PREFIX = "holdline.chaos."


@dataclass
class ChaosConfig:
    """One run's size and fault timing."""

    signals: int = 100_000
    seed: int = 7
    receiver_down_seconds: float = 30.0
    fault_gap_seconds: float = 15.0  # between two faults
    # spread the traffic over at least this long; None: one round of faults, so that every
    # fault kind strikes while signals are still going in (see Chaos.round_seconds)
    min_drive_seconds: float | None = None
    drain_timeout_seconds: float = 1800.0
    rounds_after_drive: int = 1  # rounds of faults that end after all traffic and casework
    failure_rate: float = 0.5
    report: Path | None = None
    keep_dir: bool = False


# the faults' own time in a round: the broker's restart about 17 s, each service's or
# PostgreSQL's 2-4 s, with room for a slow machine
FAULTS_OWN_SECONDS = 60.0


@dataclass
class ChaosResult:
    """The verdict, the faults injected and the timings."""

    verdict: Verdict
    faults: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    workdir: str = ""

    @property
    def passed(self) -> bool:
        """True when every check holds."""
        return self.verdict.passed


def say(message: str) -> None:
    """A progress line."""
    console.print(f"[{time.strftime('%H:%M:%S')}] {message}", markup=False)


def service_env(infra: PrivateInfra, receiver_url: str) -> dict[str, str]:
    """The services' settings for this run."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDLINE_")}
    env |= {
        "HOLDLINE_KAFKA_BOOTSTRAP": infra.bootstrap,
        "HOLDLINE_TOPIC_PREFIX": PREFIX,
        "HOLDLINE_NOTIFY_WEBHOOK_URL": receiver_url,
        # a receiver failing half its calls needs more than the default 8 attempts to be sure;
        # a short cap keeps the retries of a long outage close together
        "HOLDLINE_NOTIFY_MAX_ATTEMPTS": "60",
        "HOLDLINE_NOTIFY_RETRY_BASE_SECONDS": "0.2",
        "HOLDLINE_NOTIFY_RETRY_MAX_SECONDS": "5",
        "HOLDLINE_NOTIFY_BREAKER_COOLDOWN_SECONDS": "5",
        # one client posts everything: the app's abuse limits would only slow it down
        "HOLDLINE_INTAKE_RATE_PER_IP": "100000000",
        "HOLDLINE_INTAKE_RATE_PER_PHONE": "100000000",
        "HOLDLINE_LOG_LEVEL": "WARNING",
    }
    for name in SERVICES:
        env[f"HOLDLINE_{name.upper()}_DATABASE_URL"] = infra.dsn(name)
    return env


class Chaos:
    """The faults, one after another, each recorded with its timing."""

    def __init__(
        self, infra: PrivateInfra, fleet: Fleet, receiver: ReceiverProcess, cfg: ChaosConfig
    ) -> None:
        self.infra, self.fleet, self.receiver, self.cfg = infra, fleet, receiver, cfg
        self.faults: list[dict[str, Any]] = []
        self.receiver_back: asyncio.Task[None] | None = None
        self.driving: asyncio.Task[Any] | None = None
        self.strikes = Strikes()  # the casework fires some actions into the faults

    async def _record(self, kind: str, action: Callable[[], Awaitable[None]]) -> None:
        started = time.monotonic()
        during_traffic = self.driving is not None and not self.driving.done()
        say(f"fault: {kind}" + (" (traffic still going in)" if during_traffic else ""))
        error = None
        self.strikes.announce(kind)  # the casework fires some actions into it
        try:
            await action()
        except Exception as exc:  # a component that does not come back is a finding, not a crash
            error = str(exc)[-2000:]
        took = round(time.monotonic() - started, 1)
        entry = {
            "fault": kind, "at": time.strftime("%H:%M:%S"), "seconds": took, "error": error,
            "during_traffic": during_traffic,
        }  # fmt: skip
        self.faults.append(entry)
        say(f"fault: {kind} " + (f"NOT recovered: {error}" if error else f"recovered in {took} s"))

    async def kafka(self) -> None:
        """SIGKILL the broker, leave it down a moment, start it again."""
        await asyncio.to_thread(self.infra.kill_kafka)
        await asyncio.sleep(3)
        await asyncio.to_thread(self.infra.start_kafka)

    def service(self, name: str) -> Callable[[], Awaitable[None]]:
        """SIGKILL one service mid-stream and start it again."""

        async def action() -> None:
            self.fleet.kill(name)
            await asyncio.sleep(1)
            self.fleet.start(name)
            await asyncio.to_thread(self.fleet.wait_ready, name)

        return action

    async def postgres(self) -> None:
        """Restart the cluster: every service loses every connection."""
        await asyncio.to_thread(self.infra.restart_postgres)

    async def receiver_down(self) -> None:
        """The webhook receiver disappears (connections refused) for a while."""
        self.receiver.kill()

        async def back() -> None:
            await asyncio.sleep(self.cfg.receiver_down_seconds)
            await asyncio.to_thread(self.receiver.start)
            say("fault: receiver is back")

        self.receiver_back = asyncio.create_task(back())

    def plan(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """Every fault kind once, in this order."""
        return [
            ("SIGKILL intake + restart", self.service("intake")),
            ("SIGKILL kafka + restart", self.kafka),
            (f"receiver down {self.cfg.receiver_down_seconds:.0f} s", self.receiver_down),
            ("SIGKILL risk + restart", self.service("risk")),
            ("restart postgresql", self.postgres),
            ("SIGKILL assistance + restart", self.service("assistance")),
            ("SIGKILL notify + restart", self.service("notify")),
        ]

    def round_seconds(self) -> float:
        """About how long one round of every fault kind takes."""
        return len(self.plan()) * self.cfg.fault_gap_seconds + FAULTS_OWN_SECONDS

    async def run(self, driving: asyncio.Task[Any], working: asyncio.Task[Any]) -> None:
        """Rounds of every fault while the traffic goes in and the officials work, until
        `rounds_after_drive` rounds have ended after both (the services still work through
        their backlog then)."""
        self.driving = driving
        after = 0
        while True:
            for kind, action in self.plan():
                await asyncio.sleep(self.cfg.fault_gap_seconds)
                await self._record(kind, action)
            over = driving.done() and working.done()
            after += over
            if over and after >= self.cfg.rounds_after_drive:
                break
        if self.receiver_back is not None:
            await self.receiver_back

    def struck_during_traffic(self) -> Check:
        """Every fault kind struck at least once while signals were still going in."""
        kinds = {f["fault"] for f in self.faults if f["during_traffic"]}
        every = len(self.plan())
        return Check(
            "fault kinds that struck while traffic went in", len(kinds), every, len(kinds) == every
        )


async def run_chaos(cfg: ChaosConfig) -> ChaosResult:
    """Start everything, drive and break it, drain, verify, tear everything down."""
    workdir = Path(tempfile.mkdtemp(prefix="holdline-chaos-"))
    logs = workdir / "logs"
    logs.mkdir()
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    infra = PrivateInfra(workdir / "state", say)
    fleet: Fleet | None = None
    receiver: ReceiverProcess | None = None
    try:
        say(f"workdir {workdir}; building {cfg.signals} signals")
        traffic = build_traffic(cfg.signals, cfg.seed)
        await asyncio.to_thread(infra.up)
        receiver = ReceiverProcess(logs, cfg.failure_rate, cfg.seed)
        receiver.start()
        fleet = Fleet(service_env(infra, receiver.url), logs)
        for name in SERVICES:
            fleet.start(name)
        for name in SERVICES:
            await asyncio.to_thread(fleet.wait_ready, name)
        timings["start"] = round(time.monotonic() - t0, 1)
        say(f"four services ready ({timings['start']} s); driving and breaking things")
        chaos = Chaos(infra, fleet, receiver, cfg)
        drive_seconds = cfg.min_drive_seconds
        if drive_seconds is None:
            drive_seconds = chaos.round_seconds()
        driving = asyncio.create_task(
            drive(
                traffic=traffic, intake_url=fleet.urls["intake"], bootstrap=infra.bootstrap,
                signals_topic=f"{PREFIX}signals.v1", min_seconds=drive_seconds, say=say,
            )
        )  # fmt: skip
        working = asyncio.create_task(
            casework(
                traffic=traffic, risk_url=fleet.urls["risk"], driving=driving,
                drive_seconds=drive_seconds, after_seconds=chaos.round_seconds(),
                strikes=chaos.strikes,
                timeout=cfg.drain_timeout_seconds, say=say,
            )
        )  # fmt: skip
        faults = asyncio.create_task(chaos.run(driving, working))
        sent = await driving
        timings["drive"] = round(time.monotonic() - t0 - timings["start"], 1)
        say(f"all traffic accepted ({timings['drive']} s); casework and faults go on")
        work = await working
        timings["casework"] = round(time.monotonic() - t0 - timings["start"], 1)
        await faults
        timings["chaos"] = round(time.monotonic() - t0 - timings["start"], 1)
        dsns = {name: infra.dsn(name) for name in SERVICES}
        say("draining: waiting until nothing is in flight")
        t1 = time.monotonic()
        quiet, state = await wait_quiescent(
            dsns, infra.bootstrap, PREFIX, timeout=cfg.drain_timeout_seconds, say=say
        )
        timings["drain"] = round(time.monotonic() - t1, 1)
        verdict = await verify(
            dsns=dsns, bootstrap=infra.bootstrap, prefix=PREFIX, traffic=traffic, sent=sent,
            work=work, calls_log=receiver.calls_log,
        )  # fmt: skip
        verdict.checks.insert(0, _quiet_check(quiet, timings["drain"]))
        unrecovered = [f["fault"] for f in chaos.faults if f["error"]]
        verdict.checks.insert(0, chaos.struck_during_traffic())
        verdict.checks.insert(
            0, Check("faults not recovered from", len(unrecovered), 0, not unrecovered)
        )
        if not quiet:
            verdict.evidence["still_in_flight"] = state
        timings["total"] = round(time.monotonic() - t0, 1)
        return ChaosResult(verdict, chaos.faults, timings, str(workdir))
    finally:
        if fleet is not None:
            fleet.stop()
        if receiver is not None:
            receiver.kill()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(infra.down)
        if not cfg.keep_dir:
            _keep_logs_only(workdir)


def _quiet_check(quiet: bool, seconds: float) -> Check:
    return Check(f"quiescent after the chaos ({seconds:.0f} s)", quiet, True, quiet)


def _keep_logs_only(workdir: Path) -> None:
    """The state directory is purged by `infra down --purge`; logs stay for a post-mortem."""
    shutil.rmtree(workdir / "state", ignore_errors=True)


def print_table(result: ChaosResult, signals: int) -> None:
    """The table the run exists for."""
    table = Table(title=f"Holdline chaos run: {signals:,} signals")
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_column("must be", justify="right")
    table.add_column("", justify="center")
    for check in result.verdict.checks:
        mark = "" if check.expected is None else ("ok" if check.ok else "FAIL")
        must = "" if check.expected is None else str(check.expected)
        table.add_row(check.what, str(check.value), must, mark)
    console.print(table)
    faults = ", ".join(f"{f['fault']} ({f['seconds']} s)" for f in result.faults)
    console.print(f"faults injected ({len(result.faults)}): {faults}", markup=False)
    console.print(f"timings (s): {result.seconds}; logs in {result.workdir}/logs", markup=False)
    for key, value in result.verdict.evidence.items():
        console.print(f"evidence {key}: {value}", markup=False)
    console.print(
        "PASS" if result.passed else "FAIL", style="bold green" if result.passed else "bold red"
    )


def write_report(result: ChaosResult, cfg: ChaosConfig, path: Path) -> None:
    """The run as JSON."""
    report = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "passed": result.passed,
        "checks": [asdict(c) for c in result.verdict.checks],
        "evidence": result.verdict.evidence,
        "faults": result.faults,
        "seconds": result.seconds,
        "workdir": result.workdir,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str, ensure_ascii=False))


async def _interruptible(run: Awaitable[ChaosResult]) -> ChaosResult:
    """SIGTERM or SIGINT cancel the run, so its clean-up (private infra down) still happens."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await run


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print the table, write the report."""
    # the driver's own Kafka clients complain loudly while the broker is down on purpose
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--signals", type=int, default=100_000, help="valid signals to send")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--report", type=Path, default=Path(".holdline/chaos-report.json"))
    parser.add_argument("--receiver-down", type=float, default=30.0, help="seconds")
    parser.add_argument("--fault-gap", type=float, default=15.0, help="seconds between faults")
    parser.add_argument(
        "--min-drive", type=float, default=None,
        help="spread the traffic over this many seconds (default: one round of faults)",
    )  # fmt: skip
    parser.add_argument("--drain-timeout", type=float, default=1800.0, help="seconds")
    parser.add_argument("--rounds-after-drive", type=int, default=1, help="fault rounds")
    args = parser.parse_args(argv)
    cfg = ChaosConfig(
        signals=args.signals, seed=args.seed, receiver_down_seconds=args.receiver_down,
        fault_gap_seconds=args.fault_gap, min_drive_seconds=args.min_drive,
        drain_timeout_seconds=args.drain_timeout, report=args.report,
        rounds_after_drive=args.rounds_after_drive,
    )  # fmt: skip
    result = asyncio.run(_interruptible(run_chaos(cfg)))
    print_table(result, cfg.signals)
    write_report(result, cfg, args.report)
    console.print(f"report: {args.report}", markup=False)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
