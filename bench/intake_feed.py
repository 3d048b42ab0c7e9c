"""Benchmark: a department feed streamed through `holdline feed load` into intake on PostgreSQL.

Prints rows/s and intake's peak RSS (sampled from /proc), with a baseline measured in the same
run: the time to read and validate the same file in-process, with no HTTP and no database.

    .venv/bin/python bench/intake_feed.py --rows 1000000

By default intake's Kafka bootstrap points at a closed port, so the outbox relay stays idle and
the figure is the ingest path alone (accepted rows wait in the outbox, as during a Kafka outage);
`--kafka` lets the relay publish to the real broker while the upload runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.demo import free_port, resident_id
from services.intake.feeds import FeedParser
from shared import infra

PG = f"holdline:holdline@127.0.0.1:{infra.InfraSettings.from_env().pg_port}"
BAD_EVERY = 97  # about 1% of the rows are invalid, as a real feed would have


def generate(path: Path, rows: int) -> None:
    """A medical-insurance feed with ~1% bad rows (wrong check character or negative amount)."""
    rng = random.Random(42)
    ids = [
        resident_id(rng, f"53{rng.randint(1, 29):02d}{rng.randint(1, 20):02d}") for _ in range(5000)
    ]
    with path.open("w") as out:
        for n in range(rows):
            rid = ids[n % len(ids)]
            amount = round(rng.uniform(0, 60_000), 2)
            if n % BAD_EVERY == 0:
                amount = -amount - 1
            out.write(
                json.dumps(
                    {
                        "resident_id": rid,
                        "recorded_on": "2026-10-31",
                        "village_code": f"{rid[:6]}001001",
                        "out_of_pocket_spending": amount,
                        "serious_illness_claim": amount > 40_000,
                    }
                )
                + "\n"
            )


def baseline(path: Path) -> tuple[float, int]:
    """Seconds to read and validate the file in-process (the floor for the HTTP path)."""
    parser = FeedParser("medical_insurance", "ndjson", 16 * 1024)
    started = time.perf_counter()
    valid = 0
    with path.open("rb") as handle:
        while chunk := handle.read(256 * 1024):
            valid += sum(p.row is not None for p in parser.feed(chunk))
    return time.perf_counter() - started, valid


def rss_kb(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def new_database() -> str:
    name = f"holdline_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(f"postgresql://{PG}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(f"postgresql://{PG}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rows", type=int, default=1_000_000)
    args.add_argument("--kafka", action="store_true", help="let the relay publish meanwhile")
    args.add_argument("--keep-db", action="store_true")
    opts = args.parse_args()
    work = Path("/tmp/holdline_bench")
    work.mkdir(exist_ok=True)
    feed = work / f"medical_insurance_{opts.rows}.ndjson"
    started = time.perf_counter()
    generate(feed, opts.rows)
    size_mb = feed.stat().st_size / 1e6
    print(
        f"generated {opts.rows:,} rows ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s"
    )

    base_s, valid = baseline(feed)
    print(
        f"baseline: read + validate in-process: {opts.rows / base_s:,.0f} rows/s "
        f"({base_s:.1f} s, {valid:,} valid)"
    )

    database = asyncio.run(new_database())
    port = free_port()
    env = os.environ | {
        "HOLDLINE_INTAKE_PORT": str(port),
        "HOLDLINE_INTAKE_DATABASE_URL": f"postgresql+asyncpg://{PG}/{database}",
        "HOLDLINE_TOPIC_PREFIX": f"holdline.bench{port}.",
        "HOLDLINE_LOG_LEVEL": "WARNING",
    }
    if not opts.kafka:
        env["HOLDLINE_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{free_port()}"
    log = work / "intake.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "intake"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kb(server.pid))
            except OSError:
                return
            time.sleep(0.1)

    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        idle_kb = rss_kb(server.pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        upload = subprocess.run(
            [sys.executable, "-c", "from services.intake.cli import feed_app; feed_app()", "load",
             str(feed), "--department", "medical_insurance", "--url", url, "--show-errors", "3"],
            env=env,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
        if upload.returncode != 0:
            print(f"upload failed; intake log: {log}")
            return 1
        print(
            f"intake RSS: idle {idle_kb / 1024:.0f} MB, peak during upload {peak[0] / 1024:.0f} MB"
        )
        print(f"feed through `holdline feed load`: {opts.rows / elapsed:,.0f} rows/s "
              f"({elapsed:.1f} s end to end); baseline {opts.rows / base_s:,.0f} rows/s; "
              f"kafka relay {'on' if opts.kafka else 'off (outbox kept)'}")  # fmt: skip
    finally:
        server.terminate()
        server.wait(60)
        if not opts.keep_db:
            asyncio.run(drop_database(database))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
