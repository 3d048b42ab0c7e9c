"""schemathesis over intake's OpenAPI on a live process (PostgreSQL, Kafka): never a 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.demo import free_port
from services.intake.config import IntakeSettings
from shared.auth import mint_token
from shared.clock import SystemClock

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
EXAMPLES_PER_OPERATION = int(os.environ.get("HOLDLINE_FUZZ_EXAMPLES", "25"))  # raise it to hunt


@schemathesis.serializer("application/x-ndjson", "text/csv")
def _text_body(ctx: Any, value: Any) -> bytes:
    """Feed bodies are text documents; whatever schemathesis generates goes as UTF-8."""
    return str(value).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def live_intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Intake as a process on a fresh PostgreSQL database; limits raised for the fuzzing rate."""
    import asyncio

    from tests.conftest import new_database

    port = free_port()
    env = os.environ | {
        "HOLDLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HOLDLINE_TOPIC_PREFIX": f"holdline.fuzz{port}.",
        "HOLDLINE_INTAKE_PORT": str(port),
        "HOLDLINE_INTAKE_DATABASE_URL": asyncio.run(new_database()),
        "HOLDLINE_INTAKE_RATE_PER_IP": "1000000",
        "HOLDLINE_INTAKE_RATE_PER_PHONE": "1000000",
    }
    log: Path = tmp_path_factory.mktemp("fuzz") / "intake.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "intake"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail(f"intake did not start:\n{log.read_text()[-3000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        tail = log.read_text()[-4000:]
        assert "Traceback" not in tail, tail


def _credentials() -> dict[str, str]:
    admin = mint_token(
        subject="fuzz", role="admin", jurisdiction="", clock=SystemClock(),
        secret=IntakeSettings().jwt_secret.get_secret_value(),
    )  # fmt: skip
    return {"X-App-Key": "holdline-dev-app-key", "X-API-Key": "dev-housing-key",
            "Authorization": f"Bearer {admin}"}  # fmt: skip


@pytest.mark.parametrize("authenticated", [True, False], ids=["with-credentials", "anonymous"])
def test_no_input_makes_intake_fail_with_a_server_error(
    live_intake: str, authenticated: bool
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_intake}/openapi.json")
    headers = _credentials() if authenticated else {}
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 8
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(), department=st.sampled_from(["housing", "water"]))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def check(case: Any, department: str) -> None:
            if "department" in (case.path_parameters or {}) and authenticated:
                case.path_parameters["department"] = department
            response = case.call(base_url=live_intake, headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{response.status_code}: {case.as_curl_command()}")

        check()
    assert failures == []
