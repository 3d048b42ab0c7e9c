"""The reduced chaos run: every fault kind on 1,500 signals and the officials' casework (3 cases
placed by the county, 3 taken to a rejection by their village); nothing lost, doubled or
misrouted.

It starts its own Kafka and PostgreSQL on free ports (the shared ones are never touched), so it
fails, never skips, when those cannot be started.
"""

from __future__ import annotations

import pytest

from bench.chaos import ChaosConfig, print_table, run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]
FAULT_KINDS = ("kafka", "intake", "risk", "assistance", "notify", "postgresql", "receiver down")


async def test_reduced_chaos_loses_nothing_and_delivers_each_notification_once() -> None:
    cfg = ChaosConfig(
        signals=1_500,
        receiver_down_seconds=5,
        fault_gap_seconds=1,
        # longer than a round of faults (about 40 s here), so each kind strikes mid-traffic
        min_drive_seconds=60,
        rounds_after_drive=0,
        drain_timeout_seconds=300,
    )
    result = await run_chaos(cfg)
    print_table(result, cfg.signals)
    injected = " ".join(f["fault"] for f in result.faults)
    assert all(kind in injected for kind in FAULT_KINDS), injected
    casework = [c for c in result.verdict.checks if c.what == "casework: actions confirmed"]
    assert casework and casework[0].value >= 15, casework
    failed = [(c.what, c.value, c.expected) for c in result.verdict.checks if not c.ok]
    assert not failed, (failed, result.verdict.evidence)
