"""The benchmark harness in quick mode: it runs, prints its table and records its figures.

Speed is not asserted here (that is what the benchmarks report); only that the harness works.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_quick_harness_writes_json_and_the_readme_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Benchmarks\n\n<!-- results:start -->\nold table\n<!-- results:end -->\n\nafter\n"
    )
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--only", "intake,e2e", "--quick",
         "--results-dir", str(tmp_path / "results"), "--readme", str(readme)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    output = f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert "| benchmark | figure |" in done.stdout, output
    files = list((tmp_path / "results").glob("*-quick.json"))
    assert len(files) == 1, files
    data = json.loads(files[0].read_text())
    assert data["machine"]["cores"] >= 1
    assert data["machine"]["kafka"] != "unknown"
    assert len(data["runs"][0]["load_average_start"]) == 3
    rows = {r["benchmark"]: r for r in data["results"]}
    assert set(rows) == {"intake", "e2e"}, output
    intake, e2e = rows["intake"], rows["e2e"]
    assert intake["figure"] and intake["baseline"], (intake, output)
    # the ratio comes from the unrounded rates, the figures are rounded to 0.1/s
    assert intake["ratio"] == pytest.approx(intake["figure"] / intake["baseline"], abs=0.002)
    assert intake["extra"]["non_202"] == {}, intake
    # durable: every 202 intake counted is a stored row
    assert intake["extra"]["rows_stored_incl_warmup"] == intake["extra"]["accepted_202_incl_warmup"]
    # the Kafka round trip ran and declarations went in (arrival within the short quick drain
    # depends on the machine's load, so only the attempt is asserted)
    assert "baseline_samples" in e2e["extra"], (e2e, output)
    assert e2e["extra"]["measured_sent"] > 0, (e2e, output)
    assert "urgent_samples" in e2e["extra"], (e2e, output)
    # what the declarations cost, by part of the machine: the services, and PostgreSQL and
    # the broker found from the pid files `holdline infra up` wrote
    cpu = e2e["extra"]["cpu_us_per_declaration"]
    parts = {"intake", "risk", "assistance", "notify", "postgresql", "kafka", "benchmark"}
    assert set(cpu) == parts | {"all"}, cpu
    assert cpu["all"] > 0 and e2e["extra"]["cpu_busy_cores"] > 0, e2e
    text = readme.read_text()
    assert "old table" not in text and text.endswith("after\n")
    assert "| intake |" in text and "| e2e |" in text
    figures = intake["figure"] is not None and e2e["figure"] is not None
    assert done.returncode == (0 if figures else 1), output
