"""The README's dashboard pictures from real data: services, traffic, Prometheus, render.py.

    .venv/bin/python deploy/grafana/snapshot.py --minutes 8 --out docs/img

Runs the four services on SQLite (a temporary folder, fresh topics) against the Kafka of
HOLDLINE_KAFKA_BOOTSTRAP (`holdline infra up`), scrapes them with Debian's `prometheus` binary
every 2 s using deploy/prometheus/alerts.yml, drives traffic.py in rounds (declarations, one
identification and one acknowledged urgent alert per round, an undecodable message every third
round so the DLQ panel moves), then renders every dashboard over the whole run. Run as a
script, so that render.py and traffic.py next to it import as modules.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import render
import traffic
import yaml
from aiokafka import AIOKafkaProducer

from services.demo import SERVICES, Receiver, free_port, start_services, stop_services, wait_for
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
RANKS = ("county_leader", "section", "general", "general", "village")


def service_env(workdir: Path, receiver: Receiver, ports: dict[str, int]) -> dict[str, str]:
    """Environment of the four services: SQLite files, fresh topics, instant public notice."""
    env = os.environ | {
        "HOLDLINE_TOPIC_PREFIX": f"holdline.snapshot{int(time.time())}.",
        "HOLDLINE_NOTIFY_WEBHOOK_URL": receiver.url,
        "HOLDLINE_NOTIFY_RETRY_BASE_SECONDS": "0.2",
        "HOLDLINE_RISK_PUBLIC_NOTICE_DAYS": "0",  # rules §4.4 shortened so cases can be walked
        "HOLDLINE_ASSISTANCE_WORKLOAD_SECONDS": "2",
    }
    for name in SERVICES:
        env[f"HOLDLINE_{name.upper()}_PORT"] = str(ports[name])
        env[f"HOLDLINE_{name.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / name}.db"
    return env


def start_prometheus(workdir: Path, ports: dict[str, int]) -> tuple[subprocess.Popen[bytes], str]:
    """Prometheus scraping the services every 2 s with the project's alert rules."""
    binary = shutil.which("prometheus")
    if not binary:
        raise SystemExit("prometheus is missing: apt-get install prometheus")
    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(ROOT / "deploy/prometheus/alerts.yml")],
        "scrape_configs": [{
            "job_name": "holdline", "honor_labels": True,
            "static_configs": [
                {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name}}
                for name, port in ports.items()
            ],
        }],
    }  # fmt: skip
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={workdir / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=(workdir / "prometheus.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


async def drive(
    urls: dict[str, str], receiver: Receiver, env: dict[str, str], minutes: float
) -> None:
    """Rounds of traffic until `minutes` have passed."""
    settings = ServiceSettings(
        kafka_bootstrap=env.get("HOLDLINE_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        topic_prefix=env["HOLDLINE_TOPIC_PREFIX"],
    )
    poison = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await poison.start()
    loop = asyncio.get_running_loop()
    until = loop.time() + minutes * 60
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            await traffic.register_cadres(http, urls, receiver.url, ranks=RANKS)
            round_ = 0
            while loop.time() < until:
                accepted = await traffic.declare(http, urls, households=3, seed=100 + round_)
                await asyncio.sleep(8)  # let the cases open and the notices go out
                identified = await traffic.identify_one(http, urls)
                acknowledged = await traffic.acknowledge_one(http, urls, timeout=10)
                if round_ % 3 == 2:
                    await poison.send_and_wait(settings.topic("signals"), b"not an event")
                print(f"round {round_}: {accepted} declarations, identified {identified}, "
                      f"acknowledged {acknowledged}", flush=True)  # fmt: skip
                round_ += 1
                await asyncio.sleep(12)
    finally:
        await poison.stop()


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8, help="how long traffic runs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="holdline-snapshot-"))
    receiver = Receiver()
    ports = {name: free_port() for name in SERVICES}
    env = service_env(workdir, receiver, ports)
    procs = start_services(env, workdir)
    prometheus, prom_url = start_prometheus(workdir, ports)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    started = time.time()
    try:
        with httpx.Client() as http:
            for name in SERVICES:
                wait_for(lambda n=name: http.get(f"{urls[n]}/readyz").status_code == 200,  # type: ignore[misc]
                         90, f"{name} (log: {workdir / name}.log)")  # fmt: skip
        print(f"services ready, logs in {workdir}; Prometheus at {prom_url}", flush=True)
        asyncio.run(drive(urls, receiver, env, args.minutes))
        time.sleep(6)  # the last scrapes and the workload gauges' refresh
        minutes = int((time.time() - started) / 60) + 1
        args.out.mkdir(parents=True, exist_ok=True)
        step = max(minutes * 60 // 240, 2)
        with httpx.Client(timeout=30) as http:
            for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
                png = render.render_dashboard(http, prom_url, path, args.out, minutes, step)
                print(f"{png} ({png.stat().st_size // 1024} KB)")
    finally:
        prometheus.terminate()
        prometheus.wait(20)
        stop_services(procs)
        receiver.close()


if __name__ == "__main__":
    main()
