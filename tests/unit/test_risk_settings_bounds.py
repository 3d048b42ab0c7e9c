"""Risk's policy settings are checked at start: a misspelt risk type or a number the rules cannot
mean (docs/rules.md §2.3, §4, §5, §7) stops `holdline serve risk` with one line naming the
variable, exit status 2, instead of running with the rule silently broken."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from services.cli import app
from services.risk.config import RiskSettings
from shared.settings_errors import settings_problems
from tests.support import refused_setting

BAD = [
    # rules §5.1: a typo would silently close the green channel for illness
    ("GREEN_CHANNEL_RISK_TYPES", '["ilness","disaster","accident"]', "0: 'ilness': Input should"),
    ("GREEN_CHANNEL_RISK_TYPES", "[]", "at least 1 item"),
    ("IDENTIFICATION_DAYS", "-15", "greater than or equal to 1"),  # rules §4.9
    ("IDENTIFICATION_DAYS", "0", "greater than or equal to 1"),
    ("HOME_VISIT_WORKING_DAYS", "0", "greater than or equal to 1"),  # rules §4.10
    ("PUBLIC_NOTICE_DAYS", "-5", "greater than or equal to 0"),  # rules §4.4
    ("WARNING_FRACTION", "7", "less than 1"),  # rules §4.11
    ("WARNING_FRACTION", "1", "less than 1"),
    ("WARNING_FRACTION", "0", "greater than 0"),
    ("RIGID_EXPENDITURE_SHARE", "1.5", "less than 1"),  # rules §2.3
    ("RIGID_EXPENDITURE_SHARE", "-0.4", "greater than 0"),
    ("GREEN_CHANNEL_LOSS_THRESHOLD", "-1", "greater than or equal to 0"),  # rules §5.1
    ("GREEN_CHANNEL_LOSS_THRESHOLD", "inf", "finite number"),
    ("GREEN_CHANNEL_PAPERWORK_WORKING_DAYS", "0", "greater than or equal to 1"),  # rules §5.3
    ("ELIMINATION_STABLE_INCOME_MONTHS", "0", "greater than or equal to 1"),  # rules §7.1
    ("ELIMINATION_MIN_MONITORING_MONTHS", "-1", "greater than or equal to 0"),
    ("DEADLINE_SCAN_SECONDS", "0", "greater than 0"),
    ("DEADLINE_SCAN_BATCH", "0", "greater than or equal to 1"),
]


@pytest.mark.parametrize(("name", "value", "problem"), BAD)
def test_a_policy_setting_the_rules_cannot_mean_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    variable = f"HOLDLINE_RISK_{name}"
    line = refused_setting(RiskSettings, variable, value, monkeypatch)
    assert line.startswith(f"{variable}: ") and problem in line


def test_the_documented_defaults_and_sensible_values_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = RiskSettings()
    assert defaults.green_channel_risk_types == ("disaster", "accident", "illness")
    assert (defaults.identification_days, defaults.public_notice_days) == (15, 5)
    for name, value in {
        "GREEN_CHANNEL_RISK_TYPES": '["illness","disaster","accident","disability"]',
        "IDENTIFICATION_DAYS": "20",
        "IDENTIFICATION_DAY_BASIS": "working",
        "PUBLIC_NOTICE_DAYS": "0",  # the tools that walk cases end the notice at once
        "WARNING_FRACTION": "0.5",
        "GREEN_CHANNEL_LOSS_THRESHOLD": "0",
        "ELIMINATION_MIN_MONITORING_MONTHS": "0",
    }.items():
        monkeypatch.setenv(f"HOLDLINE_RISK_{name}", value)
    settings = RiskSettings()
    assert settings.policy().green_channel_risk_types == {
        "illness", "disaster", "accident", "disability",
    }  # fmt: skip
    assert settings.public_notice_days == 0 and settings.warning_fraction == 0.5


def test_a_notice_that_ends_at_once_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rules §4.4: a village public notice runs at least a day where it counts."""
    for name, value in {
        "ENVIRONMENT": "production", "SECRET_KEY": "s" * 32, "JWT_SECRET": "j" * 32,
        "APP_KEY": "a" * 32, "DEPARTMENT_KEYS": '{"health": "' + "k" * 32 + '"}',
    }.items():  # fmt: skip
        monkeypatch.setenv(f"HOLDLINE_{name}", value)
    assert RiskSettings().public_notice_days == 5
    monkeypatch.setenv("HOLDLINE_RISK_PUBLIC_NOTICE_DAYS", "0")
    with pytest.raises(ValidationError) as refused:
        RiskSettings()
    assert settings_problems(refused.value) == [
        "HOLDLINE_RISK_PUBLIC_NOTICE_DAYS: public_notice_days must be at least 1 in production"
        " (rules §4.4)"
    ]


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("HOLDLINE_RISK_WARNING_FRACTION", "7", "'7': Input should be less than 1"),
        (
            "HOLDLINE_RISK_GREEN_CHANNEL_RISK_TYPES",
            '["ilness","disaster","accident"]',
            "0: 'ilness': Input should be 'illness', 'disability'",
        ),
        ("HOLDLINE_RISK_IDENTIFICATION_DAYS", "-15", "greater than or equal to 1"),
    ],
)
def test_holdline_serve_risk_stops_with_one_line(variable: str, value: str, line: str) -> None:
    result = CliRunner().invoke(app, ["serve", "risk"], env={variable: value})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [shown] = result.output.strip().splitlines()
    assert shown.startswith(f"{variable}: ") and line in shown
