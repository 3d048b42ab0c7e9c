"""A port another process holds stops `holdline demo` and `holdline infra up` with one line
naming the port and what to do, exit status 1, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on (its next one too: the KRaft controller's)."""
    with socket.socket() as one, socket.socket() as two:
        for _ in range(50):
            one.bind(("127.0.0.1", 0))
            port = one.getsockname()[1]
            try:
                two.bind(("127.0.0.1", port + 1))
                break
            except OSError:
                one.close()
                one = socket.socket()
        else:
            pytest.fail("no two adjacent free ports")
        one.listen()
        two.listen()
        yield port


@pytest.mark.parametrize("command", [["demo"], ["infra", "up", "--no-postgres"]])
def test_a_taken_kafka_port_is_one_line_without_a_traceback(
    command: list[str], taken_port: int, tmp_path: Path
) -> None:
    # a state directory of its own: no broker of this checkout is running there
    env = {"HOLDLINE_KAFKA_PORT": str(taken_port), "HOLDLINE_STATE_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 1, result.output
    assert f"kafka: port {taken_port} is already in use" in result.output
    assert "holdline infra down" in result.output and "HOLDLINE_KAFKA_PORT" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, Exception)
