"""Where settings come from: HOLDLINE_<SERVICE>_X beats HOLDLINE_X; bare names are not read."""

from __future__ import annotations

import pytest

from services.risk.config import RiskSettings
from shared.settings import ServiceSettings


def test_the_shared_prefix_applies_and_the_service_prefix_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOLDLINE_CONSUMER_BATCH_SIZE", "50")
    assert ServiceSettings().consumer_batch_size == 50
    assert RiskSettings().consumer_batch_size == 50
    monkeypatch.setenv("HOLDLINE_RISK_CONSUMER_BATCH_SIZE", "70")
    assert RiskSettings().consumer_batch_size == 70


def test_bare_variable_names_of_other_software_are_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A platform's PORT or another program's JWT_SECRET must not reach the CLI's settings."""
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("JWT_SECRET", "someone-elses-secret")
    monkeypatch.setenv("CONSUMER_BATCH_SIZE", "7")
    for settings in (ServiceSettings(), RiskSettings()):
        assert settings.port != 1234 and settings.consumer_batch_size != 7
        assert settings.jwt_secret.get_secret_value() != "someone-elses-secret"
