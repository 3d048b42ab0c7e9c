"""Operations: Prometheus scrapes the running services; every panel and alert query works."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from services.demo import Receiver, free_port
from tests.support import Platform, wait_ready

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
VARIABLES = {"$service": ".*", "$county": ".*", "$__rate_interval": "1m",
             "$__range_s": "3600", "$__range": "1h"}  # fmt: skip
sys.path.insert(0, str(ROOT / "deploy/grafana"))
try:
    import build  # type: ignore[import-not-found]
    import render  # type: ignore[import-not-found]
    import traffic  # type: ignore[import-not-found]
finally:
    sys.path.pop(0)


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: `make test` installs Debian's prometheus package")
    return found


def test_promtool_accepts_config_and_rules() -> None:
    promtool = _promtool()
    for args in (["check", "config", "deploy/prometheus/prometheus.yml"],
                 ["check", "rules", str(ALERTS)],
                 # the alerts' own unit tests: a counter series first appearing with its value
                 ["test", "rules", "deploy/prometheus/alerts_test.yml"]):  # fmt: skip
        done = subprocess.run([promtool, *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def _panel(title: str) -> str:
    """The one query of a panel, its range 15 minutes."""
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            if panel["title"] == title:
                expr: str = panel["targets"][0]["expr"]
                fill = {"$county": ".*", "$__range_s": "900", "$__range": "15m"}
                for name, value in fill.items():
                    expr = expr.replace(name, value)
                return expr
    raise AssertionError(f"no panel {title!r}")


def test_a_counter_first_appearing_with_its_value_counts_on_the_dashboards(
    tmp_path: Path,
) -> None:
    # no series until the first dead letter (a process without the zero series), then 1; a
    # deadline scan marks 12 cases of a county overdue at once: both count over the range
    target = 'job="holdline",instance="risk:8002",service="risk"'
    series = {
        f"up{{{target}}}": "1x40",
        f"process_start_time_seconds{{{target}}}": "-86400x40",  # started a day before
        f'holdline_events_dead_lettered_total{{consumer="risk",topic="t",{target}}}': "_x20 1x20",
        'holdline_domain_events_total{source="risk",event_type="CaseOverdue",county="530102",'
        f'kind="",channel="",{target}}}': "_x20 12x20",
    }
    dead, overdue = _panel("Dead-lettered (range)"), _panel("Deadline warnings and overdue cases")
    checks = [
        (dead, "25m", "{}", 1),
        (overdue, "25m", '{event_type="CaseOverdue"}', 12),
        (dead, "37m", "{}", 0),  # a quarter of an hour on, older than the range
    ]
    cases = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "promql_expr_test": [
                    {"expr": expr, "eval_time": at, "exp_samples": [{"labels": lb, "value": n}]}
                    for expr, at, lb, n in checks
                ],
            }
        ]
    }
    (tmp_path / "panels_test.yml").write_text(yaml.safe_dump(cases))
    done = subprocess.run([_promtool(), "test", "rules", str(tmp_path / "panels_test.yml")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_are_generated_from_build_py() -> None:
    rendered = build.render()
    assert sorted(rendered) == [p.name for p in DASHBOARDS]
    for path in DASHBOARDS:
        assert path.read_text() == rendered[path.name], f"run deploy/grafana/build.py ({path.name})"


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard/panel title, expression with the variables filled in) of every panel."""
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for name, value in VARIABLES.items():
                    expr = expr.replace(name, value)
                found.append((f"{path.stem}/{panel['title']}", expr))
    return found


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


async def test_every_panel_returns_data_and_every_alert_evaluates(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    prometheus = shutil.which("prometheus")
    if not prometheus:
        pytest.fail("prometheus is missing: `make test` installs Debian's prometheus package")
    receiver = Receiver()
    platform = Platform(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, logs=tmp_path,
        webhook_url=receiver.url,
    )  # fmt: skip
    # the public notice ends at once, so a case can be walked to identification (rules §4.4)
    platform.env["HOLDLINE_RISK_PUBLIC_NOTICE_DAYS"] = "0"
    platform.env["HOLDLINE_ASSISTANCE_WORKLOAD_SECONDS"] = "1"
    await platform.start()
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "holdline",
                "honor_labels": True,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{p}"], "labels": {"service": name}}
                    for name, p in platform.ports.items()
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=(tmp_path / "prometheus.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            urls = platform.urls
            await traffic.register_cadres(http, urls, receiver.url)
            assert await traffic.declare(http, urls, households=4, seed=3) == 6
            # on a busy machine Prometheus had once not opened its port by now (CI)
            await wait_ready(
                http, f"http://127.0.0.1:{port}/-/ready", tmp_path / "prometheus.log", prom
            )
            await _until(http, api, 'sum(up{job="holdline"}) == 4')
            # traffic flows through all four services, then is scraped
            await _until(
                http, api, 'sum(holdline_domain_events_total{event_type="CaseOpened"}) > 0'
            )
            assert await traffic.identify_one(http, urls) is not None
            assert await traffic.acknowledge_one(http, urls) is not None
            for expr in ("sum(holdline_identification_duration_seconds_count) > 0",
                         "sum(holdline_notification_ack_seconds_count) > 0",
                         "sum(holdline_cadre_households) > 0"):  # fmt: skip
                await _until(http, api, expr)
            await asyncio.sleep(3)  # a few more scrapes so rates have two samples
            empty = []
            for title, expr in panel_queries():
                # NaN is what a quantile of an empty histogram gives: no data either
                values = [r["value"][1] for r in await _query(http, api, expr)]  # type: ignore[index]
                if not [v for v in values if v != "NaN"]:
                    empty.append(title)
            assert empty == [], f"panels with no data: {empty}"
            for _alert, expr in alert_queries():
                await _query(http, api, expr)  # parses and evaluates; firing is not expected
        # the README's pictures come from render.py: it draws every dashboard from this data
        with httpx.Client(timeout=30) as sync_http:
            for path in DASHBOARDS:
                png = render.render_dashboard(
                    sync_http, f"http://127.0.0.1:{port}", path, tmp_path, minutes=5, step=2
                )
                assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
                assert png.stat().st_size < 400_000
    finally:
        prom.terminate()
        prom.wait(20)
        platform.stop()
        receiver.close()


async def _query(http: httpx.AsyncClient, api: str, expr: str) -> list[dict[str, object]]:
    answer = await http.get(f"{api}/query", params={"query": expr})
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[dict[str, object]] = body["data"]["result"]
    return result


async def _until(http: httpx.AsyncClient, api: str, expr: str, tries: int = 150) -> None:
    """Wait until a query returns a series (Prometheus scrapes every second)."""
    for _ in range(tries):
        if await _query(http, api, expr):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never true: {expr}")
