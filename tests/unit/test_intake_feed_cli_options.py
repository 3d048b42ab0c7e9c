"""`holdline feed load` checks its options before it reads the file or calls intake: a bad one
is one line naming the option, exit status 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing is sent anywhere without the checks


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    path = tmp_path / "rows.ndjson"
    path.write_text('{"resident_id": "530102195003150018", "recorded_on": "2026-10-01"}\n')
    return path


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (["--timeout", "-5"], "--timeout: must be more than 0 and at most 86400 seconds, not -5"),
        (["--timeout", "0"], "--timeout: must be more than 0 and at most 86400 seconds, not 0"),
        (["--timeout", "nan"], "--timeout: must be more than 0"),
        (["--timeout", "1e10"], "--timeout: must be more than 0"),
        (["--url", "http://[::1"], "--url: 'http://[::1' is not a URL ("),
        (["--url", "ftp://x"], "--url: 'ftp://x' is not an http:// or https:// URL"),
        (["--url", "127.0.0.1:8001"], "--url: '127.0.0.1:8001' is not an http:// or https://"),
        (["--url", "http://"], "--url: 'http://' names no host"),
        (["--url", "http://h:99999"], "--url: 'http://h:99999': 99999 is not a port (1-65535)"),
        (["--url", "http://h/?x=1"], "--url: 'http://h/?x=1': a base URL has no ?query"),
        (["--api-key", "ключ"], "--api-key: character 1 ('к') is not printable ASCII"),
        (["--api-key", "a\nb"], "--api-key: character 2 ('\\n') is not printable ASCII"),
        (["--idempotency-key", "k-ключ"], "--idempotency-key: character 3 ('к')"),
        (["--content-type", "text/csv;é"], "--content-type: character 10 ('é')"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(feed: Path, options: list[str], line: str) -> None:
    if "--url" not in options:
        options = [*options, "--url", NOWHERE]
    command = ["feed", "load", str(feed), "--department", "medical_insurance", *options]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.startswith(line), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_an_api_key_from_the_environment_names_the_variable_too(feed: Path) -> None:
    command = ["feed", "load", str(feed), "--department", "medical_insurance", "--url", NOWHERE]
    result = CliRunner().invoke(app, command, env={"HOLDLINE_FEED_API_KEY": "ключ"})
    assert result.exit_code == 2, result.output
    assert result.output.startswith("--api-key (HOLDLINE_FEED_API_KEY): character 1 ('к')")


def test_an_unreachable_intake_still_blames_the_url(feed: Path) -> None:
    command = ["feed", "load", str(feed), "--department", "medical_insurance", "--url", NOWHERE]
    result = CliRunner().invoke(app, command, env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert f"url: cannot talk to intake at {NOWHERE}" in result.output
