"""Ports are 1-65535 wherever they are set: the services' settings, `holdline infra` options and
the HOLDLINE_KAFKA_PORT / HOLDLINE_PG_PORT variables; a port outside names where it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from services.assistance.config import AssistanceSettings
from services.intake.config import IntakeSettings
from services.notify.config import NotifySettings
from shared import infra
from shared.settings import ServiceSettings


@pytest.mark.parametrize(
    ("settings_cls", "field", "value"),
    [
        (ServiceSettings, "port", 0),
        (IntakeSettings, "port", 99999),  # a service class sets its own default port
        (AssistanceSettings, "port", -1),
        (NotifySettings, "smtp_port", 65536),
    ],
)
def test_a_settings_port_outside_the_range_is_refused(
    settings_cls: type[ServiceSettings], field: str, value: int
) -> None:
    with pytest.raises(ValidationError, match=rf"{value} is not a port \(1-65535\)"):
        settings_cls(**{field: value})
    assert getattr(settings_cls(**{field: 65535}), field) == 65535


def test_serve_refuses_a_port_uvicorn_would_not_listen_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import services.cli

    served: list[Any] = []
    monkeypatch.setattr(services.cli.uvicorn, "run", lambda *a, **k: served.append(k))
    result = CliRunner().invoke(
        services.cli.app, ["serve", "intake"], env={"HOLDLINE_INTAKE_PORT": "99999"}
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "HOLDLINE_INTAKE_PORT: 99999 is not a port (1-65535)"
    assert served == []


def test_token_refuses_a_shared_port_out_of_range() -> None:
    from services.cli import app

    result = CliRunner().invoke(app, ["token", "--role", "admin"], env={"HOLDLINE_PORT": "0"})
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "HOLDLINE_PORT: 0 is not a port (1-65535)"


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--kafka-port", "99999"], {}, "'--kafka-port'"),
        (["--kafka-port", "65535"], {}, "'--kafka-port'"),  # the controller needs the next one
        (["--pg-port", "0"], {}, "'--pg-port'"),
        ([], {"HOLDLINE_PG_PORT": "-1"}, "HOLDLINE_PG_PORT"),
        ([], {"HOLDLINE_KAFKA_PORT": "70000"}, "HOLDLINE_KAFKA_PORT"),
    ],
)
def test_infra_status_refuses_a_port_out_of_range(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    from services.cli import app

    command = ["infra", "status", "--state-dir", str(tmp_path), *args]
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 2, result.output
    assert named in result.output and "kafka:" not in result.output, result.output


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"HOLDLINE_PG_PORT": "-1"}, "HOLDLINE_PG_PORT: -1 is not a port (1-65535)"),
        ({"HOLDLINE_PG_PORT": "abc"}, "HOLDLINE_PG_PORT: 'abc' is not a valid integer"),
        ({"HOLDLINE_KAFKA_PORT": "65535"}, "HOLDLINE_KAFKA_PORT: 65535 is not a port (1-65534)"),
    ],
)
def test_the_infra_ports_read_from_the_environment_are_checked(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(infra.BadSetting) as caught:
        infra.pg_dsn("risk")
    assert str(caught.value) == problem
    # `holdline demo` (and `infra`) turn it into that one line with exit status 2
    with pytest.raises(typer.Exit) as exited, infra.cli_errors():
        infra.kafka_port()
    assert exited.value.exit_code == 2
