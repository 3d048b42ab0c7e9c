"""The benchmarks' CPU accounting: what each process, and a parent's ended children, spent."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.common import CpuUse, children_of, cpu_ceiling, cpu_note, cpu_seconds

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def test_an_ended_child_counts_for_its_parent_only_when_reaped_time_is_asked_for() -> None:
    # PostgreSQL's backends end with their connections; the postmaster then holds their CPU
    me = os.getpid()
    own, with_children = cpu_seconds(me), cpu_seconds(me, reaped=True)
    subprocess.run([sys.executable, "-c", BURN.format(seconds=0.4)], check=True)
    assert cpu_seconds(me, reaped=True) - with_children >= 0.35
    assert cpu_seconds(me) - own < 0.2


def test_a_live_child_is_found_and_what_it_spends_is_measured_per_item() -> None:
    script = "input()\n" + BURN.format(seconds=0.3) + "print(flush=True)\ntime.sleep(30)\n"
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.pid in children_of(os.getpid())
        time.sleep(0.5)  # started, waiting for its go
        use = CpuUse({"svc": [child.pid]})
        child.stdin.write("\n")
        child.stdin.flush()
        child.stdout.readline()  # it has burnt 0.3 s of CPU and sleeps
        per = use.per(1_000)
    finally:
        child.kill()
        child.wait()
    assert 280 <= per["svc"] <= 400  # 0.3 s over 1,000 items
    assert per["all"] == round(sum(v for k, v in per.items() if k != "all"), 1)
    assert "benchmark" in per


def test_the_note_names_the_larger_parts_first_and_the_ceiling_of_the_cores() -> None:
    us = {"risk": 120.0, "postgresql": 80.0, "kafka": 0.4, "all": 200.4}
    note = cpu_note(us, "record")
    assert note.startswith("CPU a record (us): risk 120, postgresql 80; all 200")
    assert "kafka" not in note  # below a microsecond
    cores = os.cpu_count() or 1
    assert f"{cores} busy cores allow at most {cpu_ceiling(200.4):,.0f} records/s" in note
    assert round(cpu_ceiling(200.4)) == round(cores * 1e6 / 200.4)
