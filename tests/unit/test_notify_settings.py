"""Notify's acknowledgement links point where the service really answers (services/notify
README, Acknowledgement): derived from the port in development, required everywhere else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.notify import handlers
from services.notify.config import NotifySettings
from services.notify.routing import Target
from shared.clock import FrozenClock

PRODUCTION = {
    "HOLDLINE_ENVIRONMENT": "production",
    "HOLDLINE_SECRET_KEY": "prod-secret",
    "HOLDLINE_JWT_SECRET": "prod-jwt",
    "HOLDLINE_APP_KEY": "prod-app",
    "HOLDLINE_DEPARTMENT_KEYS": '{"health": "prod-health-key"}',
}


class _Uow:
    clock = FrozenClock(datetime(2026, 3, 3, 4, 0, tzinfo=UTC))


def _ack_url(settings: NotifySettings) -> str:
    row = handlers.notification_row(
        uow=_Uow(),  # type: ignore[arg-type]
        settings=settings,
        source_event_id="e",
        event_type="GreenChannelOpened",
        household_id="hh-1",
        target=Target("cadre:r1", "responsible", "webhook", "http://r1/h"),
        priority="urgent",
        text="急",
        body={},
    )
    return str(row["body"]["ack_url"])


def test_in_development_the_link_follows_the_configured_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOLDLINE_NOTIFY_PORT", "18004")
    monkeypatch.delenv("HOLDLINE_NOTIFY_PUBLIC_BASE_URL", raising=False)
    monkeypatch.delenv("HOLDLINE_PUBLIC_BASE_URL", raising=False)
    settings = NotifySettings()
    assert settings.public_base_url == "http://127.0.0.1:18004"
    assert _ack_url(settings).startswith("http://127.0.0.1:18004/v1/acks/")
    # a wildcard listen address is reached on the loopback, a named one as it is
    assert NotifySettings(host="0.0.0.0", port=9).public_base_url == "http://127.0.0.1:9"
    assert NotifySettings(host="::1", port=9).public_base_url == "http://[::1]:9"


def test_a_configured_address_is_used_as_it_is() -> None:
    settings = NotifySettings(port=18004, public_base_url="https://holdline.example.org/notify/")
    assert _ack_url(settings).startswith("https://holdline.example.org/notify/v1/acks/")
    with pytest.raises(ValueError, match=r"public_base_url 'holdline\.example\.org' is not"):
        NotifySettings(public_base_url="holdline.example.org")


def test_outside_development_notify_refuses_to_start_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("notify started with links nobody can open")

    monkeypatch.setattr("services.cli.uvicorn.run", started)
    unset: dict[str, str | None] = {
        "HOLDLINE_NOTIFY_PUBLIC_BASE_URL": None,
        "HOLDLINE_PUBLIC_BASE_URL": None,
    }
    result = CliRunner().invoke(app, ["serve", "notify"], env={**PRODUCTION, **unset})
    output = result.output.strip()
    assert result.exit_code == 2, output
    assert len(output.splitlines()) == 1 and "Traceback" not in output, output
    assert output.startswith("HOLDLINE_NOTIFY_PUBLIC_BASE_URL")
    assert "public_base_url must be set outside development" in output
    configured = PRODUCTION | {"HOLDLINE_NOTIFY_PUBLIC_BASE_URL": "https://h.example.org/n"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in configured.items():
            patch.setenv(name, value)
        assert NotifySettings().public_base_url == "https://h.example.org/n"
