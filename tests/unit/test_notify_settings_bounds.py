"""Notify's settings are checked at start: an hour that is not one, a period, count or number of
attempts that is not positive, a backoff whose cap is below its base stop `holdline serve
notify` with one line naming the variable, exit status 2, instead of starting and then failing
every alert the value touches (a quiet-hours end of 25 dead-lettered each non-urgent alert sent
at night)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.notify.config import NotifySettings
from tests.support import refused_setting

BAD = [
    ("QUIET_HOURS_START", "25", "less than or equal to 23"),
    ("QUIET_HOURS_START", "-1", "greater than or equal to 0"),
    ("QUIET_HOURS_END", "24", "less than or equal to 23"),
    ("QUIET_HOURS_END", "-3", "greater than or equal to 0"),
    ("ACK_TIMEOUT_MINUTES", "-5", "greater than 0"),
    ("ACK_TIMEOUT_MINUTES", "0", "greater than 0"),
    ("ACK_TIMEOUT_MINUTES", "nan", "finite number"),
    ("ACK_LINK_TTL_HOURS", "0", "greater than or equal to 1"),
    ("ACK_RATE_PER_CLIENT", "0", "greater than or equal to 1"),
    ("ACK_RATE_WINDOW_SECONDS", "0", "greater than 0"),
    ("DIGEST_MAX_ITEMS", "0", "greater than or equal to 1"),
    ("DIGEST_WINDOW_MINUTES", "-60", "greater than 0"),
    ("MAX_ATTEMPTS", "0", "greater than or equal to 1"),
    ("RETRY_BASE_SECONDS", "0", "greater than 0"),
    ("RETRY_MAX_SECONDS", "-1", "greater than 0"),
    ("RETRY_MAX_SECONDS", "inf", "finite number"),
    ("WEBHOOK_TIMEOUT_SECONDS", "0", "greater than 0"),
    ("ROBOT_TIMEOUT_SECONDS", "-5", "greater than 0"),
    ("SMS_TIMEOUT_SECONDS", "inf", "finite number"),
    ("EMAIL_TIMEOUT_SECONDS", "0", "greater than 0"),
    ("BREAKER_FAILURE_THRESHOLD", "0", "greater than or equal to 1"),
    ("BREAKER_WINDOW", "0", "greater than or equal to 1"),
    ("BREAKER_FAILURE_RATIO", "0", "greater than 0"),
    ("BREAKER_FAILURE_RATIO", "1.5", "less than or equal to 1"),
    ("BREAKER_COOLDOWN_SECONDS", "-30", "greater than 0"),
    ("DISPATCH_POLL_SECONDS", "0", "greater than 0"),
    ("DISPATCH_BATCH_SIZE", "0", "greater than or equal to 1"),
    ("DISPATCH_CONCURRENCY", "0", "greater than or equal to 1"),
    ("SCHEDULE_POLL_SECONDS", "0", "greater than 0"),
    ("BACKLOG_METRICS_SECONDS", "-15", "greater than 0"),
    ("SMTP_PORT", "0", "not a port"),
    ("LANGUAGE", "fr", "'zh-CN' or 'en'"),  # would have fallen back to zh-CN unseen
    ("WEBHOOK_URL", "county.example.org/hook", "is not an http(s) URL"),
    ("SMS_GATEWAY_URL", "sms.example.org", "is not an http(s) URL"),
    # bounded by another setting
    ("RETRY_MAX_SECONDS", "0.5", "retry_max_seconds (0.5) must be at least retry_base_seconds"),
    ("BREAKER_FAILURE_THRESHOLD", "21", "must be at most breaker_window (20)"),
    ("ACK_LINK_TTL_HOURS", "1", "must cover ack_timeout_minutes (120)"),
]


@pytest.mark.parametrize(("name", "value", "problem"), BAD)
def test_a_setting_notify_cannot_use_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    variable = f"HOLDLINE_NOTIFY_{name}"
    line = refused_setting(NotifySettings, variable, value, monkeypatch)
    assert line.startswith(f"{variable}: ") and problem in line, line


def test_the_defaults_and_the_edges_of_each_range_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = NotifySettings()
    assert (defaults.quiet_hours_start, defaults.quiet_hours_end) == (20, 8)
    assert (defaults.max_attempts, defaults.digest_max_items) == (8, 20)
    for name, value in {
        "QUIET_HOURS_START": "0",
        "QUIET_HOURS_END": "23",
        "DIGEST_MAX_ITEMS": "1",
        "MAX_ATTEMPTS": "1",
        "RETRY_BASE_SECONDS": "2",
        "RETRY_MAX_SECONDS": "2",  # a cap equal to the base: a constant backoff
        "BREAKER_FAILURE_THRESHOLD": "20",  # as large as the window
        "BREAKER_FAILURE_RATIO": "1",
        "ACK_LINK_TTL_HOURS": "2",  # exactly the 120 minutes of the timeout
        "ACK_TIMEOUT_MINUTES": "0.5",
        "LANGUAGE": "en",
        "WEBHOOK_URL": " https://county.example.org/hook ",
    }.items():
        monkeypatch.setenv(f"HOLDLINE_NOTIFY_{name}", value)
    settings = NotifySettings()
    assert (settings.quiet_hours_start, settings.quiet_hours_end) == (0, 23)
    assert settings.retry_max_seconds == settings.retry_base_seconds == 2
    assert settings.breaker_failure_threshold == settings.breaker_window == 20
    assert settings.webhook_url == "https://county.example.org/hook"
    # equal start and end turn quiet hours off, as before
    assert NotifySettings(quiet_hours_start=0, quiet_hours_end=0).quiet_hours_end == 0


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "HOLDLINE_NOTIFY_QUIET_HOURS_START",
            "25",
            "HOLDLINE_NOTIFY_QUIET_HOURS_START: '25': Input should be less than or equal to 23",
        ),
        (
            "HOLDLINE_NOTIFY_RETRY_MAX_SECONDS",
            "0.5",
            "HOLDLINE_NOTIFY_RETRY_MAX_SECONDS: retry_max_seconds (0.5) must be at least "
            "retry_base_seconds (1)",
        ),
    ],
)
def test_holdline_serve_notify_stops_with_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, line: str
) -> None:
    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("notify started with a setting it cannot use")

    monkeypatch.setattr("services.cli.uvicorn.run", started)
    result = CliRunner().invoke(app, ["serve", "notify"], env={variable: value})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines() == [line]
