"""The benchmark results file: an `--only` run replaces its rows, and the caption names the
revision each remaining row was measured at."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from bench.run import caption, main, merged

MACHINE = {"cores": 2, "cpu": "x86", "python": "3.11.7", "kafka": "4.1.0"}


def _run(names: list[str], start: str, **extra: Any) -> dict[str, Any]:
    return {
        "started_at": start, "finished_at": start, "benchmarks": names, "quick": False,
        "load_average_start": [0.5, 0, 0], "load_average_end": [2.0, 0, 0], **extra,
    }  # fmt: skip


def _rows(*names: str) -> list[dict[str, Any]]:
    return [{"benchmark": n, "name": n, "figure": 1.0} for n in names]


def test_an_only_run_keeps_the_other_rows_with_the_revision_they_were_measured_at(
    tmp_path: Path,
) -> None:
    path = tmp_path / "2026-11-26.json"
    # a full run written before runs recorded their own revision: the machine facts had it
    earlier = {
        "date": "2026-11-26",
        "machine": MACHINE | {"git_revision": "aaaaaaaaaaaa"},
        "runs": [_run(["intake", "feed", "e2e"], "2026-11-26T14:31:00+00:00")],
        "results": _rows("intake", "feed", "e2e"),
    }
    path.write_text(json.dumps(earlier))
    fresh = {
        "date": "2026-11-26",
        "machine": MACHINE | {"git_revision": "bbbbbbbbbbbb"},
        "runs": [_run(["intake", "e2e"], "2026-11-26T17:00:00+00:00", git_revision="bbbbbbbbbbbb")],
        "results": [r | {"figure": 2.0} for r in _rows("intake", "e2e")],
    }
    data = merged(path, fresh, ["intake", "e2e"])
    assert [(r["benchmark"], r["figure"]) for r in data["results"]] == [
        ("feed", 1.0), ("intake", 2.0), ("e2e", 2.0)
    ]  # fmt: skip
    assert [r["git_revision"] for r in data["runs"]] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    line = caption(data, False, path.name)
    # the earlier run is named for the rows it still supplies
    assert "in runs: feed at revision aaaaaaaaaa from 2026-11-26T14:31:00+00:00" in line
    assert "intake, e2e at revision bbbbbbbbbb from 2026-11-26T17:00:00+00:00" in line

    # a full run later the same day replaces every row, and the caption names one revision
    full = fresh | {
        "runs": [
            _run(["intake", "feed", "e2e"], "2026-11-26T18:00:00+00:00", git_revision="c" * 40)
        ],
        "results": _rows("intake", "feed", "e2e"),
    }
    path.write_text(json.dumps(data))
    again = merged(path, full, ["intake", "feed", "e2e"])
    assert len(again["runs"]) == 1
    assert "revision cccccccccc; load average 0.50 at start, 2.00 at end" in caption(
        again, False, path.name
    )


def test_rows_kept_from_an_earlier_day_name_that_day_in_the_caption(tmp_path: Path) -> None:
    """`--keep-from`: a partial run today, the long benchmarks' rows from an earlier file."""
    earlier = tmp_path / "2026-11-26.json"
    earlier.write_text(json.dumps({
        "date": "2026-11-26", "machine": MACHINE,
        "runs": [_run(["intake", "feed", "e2e"], "2026-11-26T14:31:00+00:00",
                      git_revision="a" * 40)],
        "results": _rows("intake", "feed", "e2e"),
    }))  # fmt: skip
    fresh = {
        "date": "2026-12-06", "machine": MACHINE,
        "runs": [_run(["intake", "e2e"], "2026-12-06T12:40:00+00:00", git_revision="b" * 40)],
        "results": [r | {"figure": 2.0} for r in _rows("intake", "e2e")],
    }  # fmt: skip
    data = merged(earlier, fresh, ["intake", "e2e"])
    assert [(r["benchmark"], r["figure"]) for r in data["results"]] == [
        ("feed", 1.0), ("intake", 2.0), ("e2e", 2.0)
    ]  # fmt: skip
    line = caption(data, False, "2026-12-06.json")
    assert line.startswith("Measured 2026-12-06")
    assert "in runs: feed at revision aaaaaaaaaa from 2026-11-26T14:31:00+00:00" in line
    assert "intake, e2e at revision bbbbbbbbbb from 2026-12-06T12:40:00+00:00" in line

    # then the feed alone, kept from the merged file: the first run supplies nothing any more
    today = tmp_path / "2026-12-06.json"
    today.write_text(json.dumps(data))
    feed_run = {
        "date": "2026-12-06", "machine": MACHINE,
        "runs": [_run(["feed"], "2026-12-06T14:00:00+00:00", git_revision="c" * 40)],
        "results": [r | {"figure": 3.0} for r in _rows("feed")],
    }  # fmt: skip
    later = merged(today, feed_run, ["feed"])
    assert [r["git_revision"][:1] for r in later["runs"]] == ["b", "c"]
    line = caption(later, False, "2026-12-06.json")
    assert "aaaaaaaaaa" not in line
    assert "intake, e2e at revision bbbbbbbbbb" in line and "feed at revision cccccccccc" in line


def test_without_the_broker_and_the_database_nothing_is_run_or_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # two ports nobody listens on: bound, then closed
    closed = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed.append(sock.getsockname()[1])
    monkeypatch.setenv("HOLDLINE_KAFKA_PORT", str(closed[0]))
    monkeypatch.setenv("HOLDLINE_PG_PORT", str(closed[1]))
    readme = tmp_path / "README.md"
    readme.write_text("the figures of the last run\n")
    results = tmp_path / "results"
    argv = ["--only", "intake", "--results-dir", str(results), "--readme", str(readme)]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"bench: Kafka is not reachable at 127.0.0.1:{closed[0]} (ConnectionRefusedError)",
        f"bench: PostgreSQL is not reachable at 127.0.0.1:{closed[1]} (ConnectionRefusedError)",
        "bench: start them with `.venv/bin/holdline infra up` (make bench does)",
    ]
    assert not results.exists()
    assert readme.read_text() == "the figures of the last run\n"
