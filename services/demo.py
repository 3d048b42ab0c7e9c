"""`holdline demo`: the platform's main job on a small demo data set, start to finish."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from shared.auth import Role, mint_token
from shared.clock import SystemClock
from shared.identity import check_character
from shared.settings import ServiceSettings

SERVICES = ("intake", "risk", "assistance", "notify")
SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = ["建国", "秀英", "志强", "桂兰", "海燕", "德明", "玉梅", "永福"]
RISKS = [["illness"], ["disaster"], ["schooling"], ["accident", "illness"], ["housing_unsafe"]]
console = Console()


class Receiver:
    """A webhook receiver standing in for the cadres' group chat: records every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        calls = self.calls

        class Handle(BaseHTTPRequestHandler):
            # keep-alive, as the chat gateways are: a new connection per call would cost
            # notify a TCP handshake and this server a thread per message
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                try:
                    super().handle()
                except ConnectionError:
                    pass  # a sender that stopped with its connection open

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender went away mid-request
                    self.close_connection = True
                    return
                try:
                    calls.append(json.loads(body))
                except ValueError:
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()


def resident_id(rng: random.Random, region: str) -> str:
    """A valid, made-up resident ID born between 1950 and 2000."""
    born = f"{rng.randint(1950, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = f"{region[:6]}{born}{rng.randint(0, 999):03d}"
    return first17 + check_character(first17)


def demo_declarations(households: int, seed: int = 7) -> list[dict[str, Any]]:
    """One declaration per household, and a second one for every third household (it merges)."""
    rng = random.Random(seed)
    bodies = []
    for n in range(households):
        village = f"5301020{n % 3 + 1:02d}{n % 5 + 1:03d}"
        body = {
            "declarant_name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "declarant_id": resident_id(rng, village),
            "phone": f"13{rng.randint(0, 999_999_999):09d}",
            "village_code": village,
            "risk_types": RISKS[n % len(RISKS)],
            "description": "家庭突发困难，申请监测帮扶",
            "medical_spending": rng.choice([0, 12_000, 35_000]),
        }
        bodies.append(body)
        if n % 3 == 0:
            bodies.append(body | {"risk_types": ["unstable_employment"], "income_change": -6000})
    return bodies


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it holds, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def start_services(env: dict[str, str], logs: Path) -> dict[str, subprocess.Popen[bytes]]:
    """Each service its own process, logs to files."""
    procs = {}
    for name in SERVICES:
        with (logs / f"{name}.log").open("wb") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    return procs


def stop_services(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL whatever does not stop within 15 s."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_demo(*, households: int, keep_kafka: bool) -> int:
    """Start everything, post the data set, report the counts, stop everything."""
    from shared import infra

    started_kafka = not infra.kafka_running()
    if started_kafka:
        console.print("starting Kafka (first run fetches the broker from Maven Central)...")
        infra.ensure_kafka()
    workdir = Path(tempfile.mkdtemp(prefix="holdline-demo-"))
    receiver = Receiver()
    ports = {name: free_port() for name in SERVICES}
    env = os.environ | {
        "HOLDLINE_TOPIC_PREFIX": f"holdline.demo{int(time.time())}.",
        "HOLDLINE_KAFKA_BOOTSTRAP": f"127.0.0.1:{infra.kafka_port()}",
        "HOLDLINE_NOTIFY_WEBHOOK_URL": receiver.url,
    }
    for name in SERVICES:
        env[f"HOLDLINE_{name.upper()}_PORT"] = str(ports[name])
        env[f"HOLDLINE_{name.upper()}_DATABASE_URL"] = (
            f"sqlite+aiosqlite:///{workdir / (name + '.sqlite3')}"
        )
    procs = start_services(env, workdir)
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        with httpx.Client(timeout=10) as http:
            for name in SERVICES:
                wait_for(
                    lambda n=name: http.get(f"{url[n]}/readyz").status_code == 200,  # type: ignore[misc]
                    90,
                    f"{name} to be ready (log: {workdir / (name + '.log')})",
                )
            console.print(f"four services ready; logs in {workdir}")
            return _post_and_report(http, url, receiver, households)
    except TimeoutError as exc:
        console.print(f"[red]demo failed: {exc}[/red]")
        return 1
    finally:
        stop_services(procs)
        receiver.close()
        if started_kafka and not keep_kafka:
            infra.stop_kafka()


def official_headers(role: Role = "admin", jurisdiction: str = "") -> dict[str, str]:
    """A bearer token signed with the configured JWT secret (the development one by default)."""
    token = mint_token(
        subject="demo",
        role=role,
        jurisdiction=jurisdiction,
        secret=ServiceSettings().jwt_secret.get_secret_value(),
        clock=SystemClock(),
    )
    return {"Authorization": f"Bearer {token}"}


def _post_and_report(
    http: httpx.Client, url: dict[str, str], receiver: Receiver, households: int
) -> int:
    bodies = demo_declarations(households)
    app_key = {"X-App-Key": "holdline-dev-app-key"}  # the development app key
    admin = official_headers()  # case and notification reads need an official's token
    accepted = 0
    for body in bodies:
        answer = http.post(f"{url['intake']}/v1/declarations", json=body, headers=app_key)
        accepted += answer.status_code == 202
    bad = bodies[0] | {"declarant_id": "110105194912310021", "phone": "12345"}
    refused = http.post(f"{url['intake']}/v1/declarations", json=bad, headers=app_key)
    console.print(
        f"posted {len(bodies)} declarations ({accepted} accepted) for {households} households"
    )
    console.print(
        f"an invalid one was refused with {refused.status_code}: {refused.json()['errors']}"
    )
    wait_for(lambda: len(receiver.calls) >= households, 60, "a webhook call per household")

    def all_delivered() -> bool:
        notes = http.get(
            f"{url['notify']}/v1/notifications", params={"limit": 1000}, headers=admin
        ).json()
        return sum(n["status"] == "delivered" for n in notes) >= households

    wait_for(all_delivered, 30, "notify to record every delivery")
    cases = http.get(f"{url['risk']}/v1/cases", params={"limit": 1000}, headers=admin).json()
    plans = http.get(f"{url['assistance']}/v1/plans", params={"limit": 1000}, headers=admin).json()
    notes = http.get(
        f"{url['notify']}/v1/notifications", params={"limit": 1000}, headers=admin
    ).json()
    table = Table(title="Holdline demo")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("declarations accepted", str(accepted))
    table.add_row("cases opened", str(len(cases)))
    table.add_row("signals merged into open cases", str(sum(c["signals"] - 1 for c in cases)))
    table.add_row("plans created", str(len(plans)))
    table.add_row("notifications delivered", str(sum(n["status"] == "delivered" for n in notes)))
    table.add_row("webhook calls received", str(len(receiver.calls)))
    console.print(table)
    console.print(f"first message: {receiver.calls[0]['text']}")
    ok = cases and plans and receiver.calls and len(cases) == households
    return 0 if ok else 1
