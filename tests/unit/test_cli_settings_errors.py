"""A HOLDLINE_* variable that cannot be used stops every `holdline` command with one line naming
the variable and the problem, exit status 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app

ROSTER = "cadre_id,name,rank,township_code\nc1,Z,general,530102001\n"


def _run(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, command, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("command", "env", "line"),
    [
        (
            ["token", "--role", "admin"],
            {"HOLDLINE_PORT": "abc"},
            "HOLDLINE_PORT: 'abc' is not a valid integer",
        ),
        (
            ["token", "--role", "admin"],
            {"HOLDLINE_TIMEZONE": "Mars/Base"},
            "HOLDLINE_TIMEZONE: 'Mars/Base' is not a known time zone",
        ),
        (
            ["token", "--role", "admin"],
            {"HOLDLINE_DEPARTMENT_KEYS": "notjson"},
            "HOLDLINE_DEPARTMENT_KEYS: not valid JSON (Expecting value",
        ),
        (
            ["token", "--role", "admin"],
            {"HOLDLINE_ENVIRONMENT": "prod"},
            "HOLDLINE_ENVIRONMENT: 'prod': Input should be 'development', 'test' or 'production'",
        ),
        (
            ["serve", "intake"],
            {"HOLDLINE_INTAKE_PORT": "abc"},
            "HOLDLINE_INTAKE_PORT: 'abc' is not a valid integer",
        ),
        (  # the service's own prefix wins, so it is the one named
            ["serve", "intake"],
            {"HOLDLINE_INTAKE_FEED_SHARDS": "x", "HOLDLINE_FEED_SHARDS": "y"},
            "HOLDLINE_INTAKE_FEED_SHARDS: 'x' is not a valid integer",
        ),
        (
            ["serve", "risk"],
            {"HOLDLINE_RISK_DATABASE_URL": "garbage"},
            "HOLDLINE_RISK_DATABASE_URL: not a database URL",
        ),
        (
            ["serve", "notify"],
            {"HOLDLINE_DATABASE_URL": "sqlite:///x.db"},
            "HOLDLINE_DATABASE_URL: 'sqlite' is not an asyncio driver",
        ),
        (
            ["dlq", "list", "signals"],
            {"HOLDLINE_KAFKA_REQUEST_TIMEOUT_MS": "abc"},
            "HOLDLINE_KAFKA_REQUEST_TIMEOUT_MS: 'abc' is not a valid integer",
        ),
        (
            ["dlq", "replay", "signals"],
            {"HOLDLINE_CONSUMER_COMMIT_SECONDS": "-1"},
            "HOLDLINE_CONSUMER_COMMIT_SECONDS: '-1': Input should be greater than or equal to 0",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    command: list[str], env: dict[str, str], line: str
) -> None:
    code, output = _run(command, env)
    assert code == 2, output
    assert output.strip() == line or output.strip().startswith(line), output
    assert len(output.strip().splitlines()) == 1, output


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"HOLDLINE_ASSISTANCE_DATABASE_URL": "garbage"},
            "HOLDLINE_ASSISTANCE_DATABASE_URL: not a",
        ),
        ({"HOLDLINE_DATABASE_URL": "foo://x/y"}, "HOLDLINE_DATABASE_URL: no database driver 'foo'"),
        ({"HOLDLINE_ASSISTANCE_VISIT_INTERVAL_DAYS": "often"}, "HOLDLINE_ASSISTANCE_VISIT_INTER"),
    ],
)
def test_cadres_load_names_the_bad_variable(tmp_path: Path, env: dict[str, str], line: str) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    code, output = _run(["cadres", "load", str(roster)], env)
    assert code == 2 and output.startswith(line), output
    assert len(output.strip().splitlines()) == 1, output


def test_a_secret_is_never_shown(tmp_path: Path) -> None:
    secret = "s3cret-value-never-shown"
    env = {"HOLDLINE_DEPARTMENT_KEYS": f'{{"civil_affairs": ["{secret}"]}}'}
    code, output = _run(["token", "--role", "admin"], env)
    assert code == 2 and output.startswith("HOLDLINE_DEPARTMENT_KEYS: civil_affairs: "), output
    assert secret not in output
    env = {"HOLDLINE_ENVIRONMENT": "production", "HOLDLINE_SECRET_KEY": secret}
    code, output = _run(["token", "--role", "admin"], env)
    assert code == 2 and "jwt_secret is still the development default" in output, output
    assert secret not in output
