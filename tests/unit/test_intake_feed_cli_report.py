"""`holdline feed load`'s report counts lines as intake does, and rows apart from them."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from services.intake import cli


def report(monkeypatch: pytest.MonkeyPatch, lines: int, accepted: int, rejected: int) -> str:
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=200))
    batch = {"batch_id": "b-1", "department": "health", "lines": lines, "accepted": accepted,
             "rejected": rejected, "status_url": "/v1/feeds/batches/b-1"}  # fmt: skip
    cli._print_report(batch, {"errors": []}, elapsed=1.0, shown=20)
    return out.getvalue()


def row(text: str, label: str) -> str:
    (found,) = [line for line in text.splitlines() if label in line]
    return found.split("│")[-2].strip()


def test_a_csv_with_a_blank_line_shows_intake_s_line_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A header, eight rows and a blank line: intake answers `lines: 10`; so does the CLI."""
    text = report(monkeypatch, lines=10, accepted=6, rejected=2)
    assert row(text, "lines (intake's count)") == "10"
    assert row(text, "rows (accepted + rejected)") == "8"
    assert row(text, "other lines") == "2"


def test_a_file_of_rows_only_has_no_other_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    text = report(monkeypatch, lines=301, accepted=300, rejected=1)
    assert row(text, "lines (intake's count)") == "301" == row(text, "rows (accepted")
    assert "other lines" not in text
