"""schemathesis over the OpenAPI of all four services, live on PostgreSQL and Kafka: no input
makes a service answer 5xx, and every answer matches the schema the service declares."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.failures import FailureGroup

from shared.auth import mint_token
from shared.clock import SystemClock
from shared.settings import ServiceSettings
from tests.conftest import new_topic_prefix
from tests.support import SERVICES, Platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
# a fixed, derandomised run per operation keeps CI deterministic; raise it to hunt
EXAMPLES_PER_OPERATION = int(os.environ.get("HOLDLINE_FUZZ_EXAMPLES", "15"))
DERANDOMIZE = not os.environ.get("HOLDLINE_FUZZ_RANDOM")  # set it to hunt with fresh inputs
CHECKS = [not_a_server_error, response_schema_conformance]


@schemathesis.serializer("application/x-ndjson", "text/csv")
def _text_body(ctx: Any, value: Any) -> bytes:
    """Feed bodies are text documents; whatever schemathesis generates goes as UTF-8."""
    return str(value).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The four services as processes on fresh databases; intake's limits raised for the rate."""
    logs: Path = tmp_path_factory.mktemp("fuzz")
    platform = Platform(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=new_topic_prefix("fuzz"),
        logs=logs,
        webhook_url="http://127.0.0.1:9/hook",  # nothing listens: deliveries just fail
    )
    platform.env |= {
        "HOLDLINE_INTAKE_RATE_PER_IP": "1000000",
        "HOLDLINE_INTAKE_RATE_PER_PHONE": "1000000",
        "HOLDLINE_NOTIFY_ACK_RATE_PER_CLIENT": "1000000",
    }
    try:
        asyncio.run(platform.start())
        yield platform
    finally:
        platform.stop()
        for name in SERVICES:
            log = platform.log(name)
            assert "Traceback" not in log, f"{name}:\n{log[-4000:]}"


def _credentials() -> dict[str, str]:
    """An admin's token, the app key and a department key: enough to pass every guard."""
    admin = mint_token(
        subject="fuzz", role="admin", jurisdiction="", clock=SystemClock(),
        secret=ServiceSettings().jwt_secret.get_secret_value(),
    )  # fmt: skip
    return {"X-App-Key": "holdline-dev-app-key", "X-API-Key": "dev-housing-key",
            "Authorization": f"Bearer {admin}"}  # fmt: skip


@pytest.mark.parametrize("authenticated", [True, False], ids=["with-credentials", "anonymous"])
@pytest.mark.parametrize("service", SERVICES)
def test_no_input_makes_a_service_fail_or_break_its_schema(
    live: Platform, service: str, authenticated: bool
) -> None:
    url = live.urls[service]
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    headers = _credentials() if authenticated else {}
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 4
    failures: list[str] = []
    # without credentials nearly every input stops at the guard; the matrix covers the guards
    examples = EXAMPLES_PER_OPERATION if authenticated else max(5, EXAMPLES_PER_OPERATION // 3)
    for operation in operations:

        @given(case=operation.as_strategy(), department=st.sampled_from(["housing", "water"]))
        @settings(
            max_examples=examples, deadline=None, database=None,
            derandomize=DERANDOMIZE, suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def check(case: Any, department: str) -> None:
            if "department" in (case.path_parameters or {}) and authenticated:
                case.path_parameters["department"] = department
            response = case.call(base_url=url, headers=headers, timeout=30)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as group:
                problems = "; ".join(f.title for f in group.exceptions)
                failures.append(f"{problems}: {case.as_curl_command(headers=headers)}")
            except AssertionError as exc:
                failures.append(f"{exc}: {case.as_curl_command(headers=headers)}")

        check()
    assert failures == [], "\n".join(failures[:20])
