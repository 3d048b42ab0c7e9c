"""`make bench`: run the benchmarks, print a table, keep the figures (JSON) and the README table.

    .venv/bin/python bench/run.py                       # everything, full sizes
    .venv/bin/python bench/run.py --only intake,e2e     # some of them
    .venv/bin/python bench/run.py --quick               # small sizes: a smoke test, not figures

Each benchmark is a module of bench/ with `run(quick: bool) -> list[Result]`, either
`async def` (run on a fresh uvloop event loop) or plain `def`. A benchmark that raises or
times out becomes a failed row; the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Result, delete_topics, git_revision, machine_facts, unreachable
from shared import infra

# name -> module in bench/; the order is the order they run in
BENCHMARKS = {
    "intake": "bench.intake_declarations",
    "feed": "bench.feed",
    "e2e": "bench.end_to_end",
}
TIMEOUT = {False: 120 * 60.0, True: 5 * 60.0}  # seconds per benchmark (full, quick)
START, END = "<!-- results:start -->", "<!-- results:end -->"
HERE = Path(__file__).resolve().parent


def run_one(name: str, quick: bool) -> list[Result]:
    """Run one benchmark; whatever goes wrong is reported as a failed row."""
    try:
        module = importlib.import_module(BENCHMARKS[name])
        runner = module.run
        if inspect.iscoroutinefunction(runner):
            rows = _run_async(runner, quick)
        else:
            rows = runner(quick)
        if not rows:
            return [Result.failed(name, "the benchmark returned no figures")]
        return list(rows)
    except TimeoutError:
        return [Result.failed(name, f"timed out after {TIMEOUT[quick]:.0f} s")]
    except BaseException as exc:  # a benchmark's failure must not stop the others
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc()
        return [Result.failed(name, f"{type(exc).__name__}: {exc}".splitlines()[0][:300])]


def _run_async(runner: Any, quick: bool) -> list[Result]:
    async def bounded() -> list[Result]:
        rows: list[Result] = await asyncio.wait_for(runner(quick), TIMEOUT[quick])
        return rows

    try:
        import uvloop

        return uvloop.run(bounded())
    except ImportError:
        return asyncio.run(bounded())


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown results table."""
    lines = [
        "| benchmark | figure | unit | baseline | baseline is | ratio | target | met | notes |",
        "| --- | ---: | --- | ---: | --- | ---: | --- | --- | --- |",
    ]
    for r in rows:
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        notes = str(r["notes"]).replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {r['name']} | {_fmt(r['figure'])} | {r['unit']} | {_fmt(r['baseline'])} | "
            f"{r['baseline_label']} | {_fmt(r['ratio'])} | {r['target']} | {met} | {notes} |"
        )
    return "\n".join(lines)


def merged(path: Path, fresh: dict[str, Any], ran: list[str]) -> dict[str, Any]:
    """Today's file with the rows of the benchmarks that just ran replaced (an `--only` run
    keeps the others' rows from earlier the same day, and their runs with their revisions)."""
    if not path.exists():
        return fresh
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return fresh
    kept = [r for r in old.get("results", []) if r.get("benchmark") not in ran]
    kept_from = {r.get("benchmark") for r in kept}
    earlier = old.get("machine", {}).get("git_revision")
    old_runs = old.get("runs", [])
    # a kept row comes from the last run that measured its benchmark: each earlier run is
    # named with the benchmarks whose rows it still supplies, or not at all
    latest = {b: n for n, r in enumerate(old_runs) for b in r.get("benchmarks", [])}
    runs = []
    for n, r in enumerate(old_runs):
        supplies = [b for b in r.get("benchmarks", []) if b in kept_from and latest[b] == n]
        if supplies:
            # runs recorded before runs named their revision: the machine facts had it
            runs.append({"git_revision": earlier} | r | {"benchmarks": supplies})
    return fresh | {"results": kept + fresh["results"], "runs": runs + fresh["runs"]}


def caption(data: dict[str, Any], quick: bool, file_name: str) -> str:
    """The line above the table: machine, versions, and each run's revision and load."""
    facts = data["machine"]
    runs = data["runs"]
    head = (
        f"Measured {data['date']} on {facts['cores']} cores ({facts['cpu']}), Python "
        f"{facts['python']}, Kafka {facts['kafka']}"
    )

    def load(run: dict[str, Any]) -> str:
        start, end = run["load_average_start"][0], run["load_average_end"][0]
        return f"load average {start:.2f} at start, {end:.2f} at end"

    if len(runs) == 1:
        body = f"revision {str(runs[0].get('git_revision'))[:10]}; {load(runs[0])}"
    else:
        body = "in runs: " + "; ".join(
            f"{', '.join(r['benchmarks'])} at revision {str(r.get('git_revision'))[:10]} "
            f"from {r['started_at']} ({load(r)})"
            for r in runs
        )
    quick_note = " (quick sizes: not figures)" if quick else ""
    return f"{head}, {body}{quick_note}. Raw: `bench/results/{file_name}`."


def rewrite_readme(readme: Path, text: str) -> None:
    """Replace the generated section between the markers (appended when there is none)."""
    block = f"{START}\n{text}\n{END}"
    current = readme.read_text() if readme.exists() else ""
    if START in current and END in current:
        head, rest = current.split(START, 1)
        current = head + block + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + ("\n\n" if current else "") + block + "\n"
    readme.write_text(current)


def main(argv: list[str] | None = None) -> int:
    """Run, print, write; exit 1 when a benchmark failed to produce its figures, 2 when the
    broker or the database is not there (nothing is run or written then)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    parser.add_argument(
        "--readme",
        type=Path,
        help="file whose results section is rewritten (default: bench/README.md on full runs)",
    )
    parser.add_argument(
        "--keep-from",
        type=Path,
        help="an earlier results file whose rows of the benchmarks not run now are kept (with "
        "their revision and time in the caption), instead of today's",
    )
    opts = parser.parse_args(argv)
    names = list(BENCHMARKS) if not opts.only else [n.strip() for n in opts.only.split(",")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"--only: unknown benchmark {', '.join(unknown)}; one of {list(BENCHMARKS)}")
    # nothing is run or written without the broker and the database: a table of failed rows
    # would replace the README's figures
    problems = asyncio.run(unreachable())
    if problems:
        for problem in problems:
            print(f"bench: {problem}", file=sys.stderr)
        print(
            "bench: start them with `.venv/bin/holdline infra up` (make bench does)",
            file=sys.stderr,
        )
        return 2
    started = datetime.now(UTC)
    load_start = os.getloadavg()
    results: list[dict[str, Any]] = []
    for name in names:
        print(f"== {name} ({'quick' if opts.quick else 'full'})", flush=True)
        t0 = time.perf_counter()
        try:
            for row in run_one(name, opts.quick):
                results.append({"benchmark": name} | asdict(row))
        finally:
            # every benchmark names its topics holdline.bench...: none of them is needed again
            asyncio.run(delete_topics(f"127.0.0.1:{infra.kafka_port()}", ["holdline.bench"]))
        print(table(results[-1:]), f"\n({time.perf_counter() - t0:.0f} s)", flush=True)
    load_end = os.getloadavg()
    run = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "benchmarks": names,
        "quick": opts.quick,
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in load_end],
        "git_revision": git_revision(),
    }
    fresh = {"date": started.date().isoformat(), "machine": machine_facts(), "runs": [run]}
    fresh["results"] = results
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if opts.quick else ""
    out = opts.results_dir / f"{started.date().isoformat()}{suffix}.json"
    data = merged(opts.keep_from or out, fresh, names)
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    text = table(data["results"])
    line = caption(data, opts.quick, out.name)
    print(f"\n{text}\n\n{line}\nwritten: {out}")
    readme = opts.readme or (None if opts.quick else HERE / "README.md")
    if readme is not None:
        rewrite_readme(readme, f"{line}\n\n{text}")
        print(f"table rewritten in {readme}")
    return 1 if any(r["figure"] is None for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
