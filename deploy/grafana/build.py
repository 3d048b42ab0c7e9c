"""Generates the Grafana dashboards in dashboards/ from the panel lists below.

Run `python deploy/grafana/build.py` after editing; a test checks the JSON is up to date and runs
every query through a real Prometheus.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
RI = "$__rate_interval"
SVC = 'service=~"$service"'
CTY = 'county=~"$county"'


def increase(selector: str) -> str:
    """increase() over the dashboard's range that also counts a series born in it.

    A counter series can first appear with its value (a county's first overdue cases, a dead
    letter in a process without the zero series): increase() sees no step there, so such a
    series counts its value. Born: absent at the range's start while its target was scraped,
    or its process started since; a gap in the scrapes is no birth. The alerts of
    deploy/prometheus/alerts.yml count the same way.
    """
    born = (
        f"(({selector} unless {selector} offset $__range) and on (job, instance) "
        "(up offset $__range == 1 or process_start_time_seconds > time() - $__range_s))"
    )
    return f"(increase({selector}[$__range]) unless {born} or {born})"


def events(event_type: str, by: str = "county") -> str:
    """Committed domain events of one type over the dashboard's range."""
    selector = f'holdline_domain_events_total{{event_type=~"{event_type}", {CTY}}}'
    return f"sum by ({by}) {increase(selector)}"


# (title, panel type, one expression or (legend, expression) pairs)
Panel = tuple[str, str, str | list[tuple[str, str]]]

OPERATIONS: list[Panel] = [
    ("Services up", "stat", 'up{job="holdline", ' + SVC + "}"),
    ("HTTP requests/s", "timeseries",
     f"sum by (service) (rate(holdline_http_requests_total{{{SVC}}}[{RI}]))"),
    ("HTTP 5xx ratio", "timeseries",
     f'(sum by (service) (rate(holdline_http_requests_total{{{SVC}, status=~"5.."}}[{RI}]))'
     f" or sum by (service) (rate(holdline_http_requests_total{{{SVC}}}[{RI}])) * 0)"
     f" / clamp_min(sum by (service) (rate(holdline_http_requests_total{{{SVC}}}[{RI}])), 1e-9)"),
    ("HTTP p99 latency (s)", "timeseries",
     "histogram_quantile(0.99, sum by (service, le) "
     f"(rate(holdline_http_request_duration_seconds_bucket{{{SVC}}}[{RI}])))"),
    ("Events consumed/s", "timeseries",
     f"sum by (consumer, outcome) (rate(holdline_events_consumed_total[{RI}]))"),
    ("Event processing p99 (s)", "timeseries",
     "histogram_quantile(0.99, sum by (consumer, le) "
     f"(rate(holdline_event_processing_seconds_bucket[{RI}])))"),
    ("Events published/s", "timeseries",
     f"sum by (topic) (rate(holdline_events_published_total[{RI}]))"),
    ("Consumer lag (messages)", "timeseries",
     "max by (consumer, topic) (holdline_consumer_lag_messages)"),
    ("Dead-lettered (range)", "stat",
     f"sum{increase('holdline_events_dead_lettered_total')} or vector(0)"),
    ("Outbox backlog", "timeseries", f"max by (service) (holdline_outbox_backlog{{{SVC}}})"),
    ("Outbox oldest row age (s)", "timeseries",
     f"max by (service) (holdline_outbox_oldest_age_seconds{{{SVC}}})"),
    ("Alerts due and unsent, by priority and lane", "timeseries",
     "max by (priority, lane) (holdline_notify_due_waiting)"),
    ("Oldest unsent alert, waiting (s)", "timeseries",
     "max by (priority, lane) (holdline_notify_due_oldest_seconds)"),
]  # fmt: skip


def quantiles(metric: str, selector: str = "", scale: float = 1.0) -> list[tuple[str, str]]:
    """p50 and p90 of a histogram over the dashboard's range (rare events: not a short rate)."""
    per = f" / {scale:g}" if scale != 1 else ""
    return [
        (f"p{q}", f"histogram_quantile(0.{q}, sum by (le) "
                  f"{increase(f'{metric}_bucket{selector}')}){per}")
        for q in (50, 90)
    ]  # fmt: skip


def total(event_type: str, county: bool = True) -> str:
    """How many events of one type were committed over the dashboard's range."""
    where = f'event_type="{event_type}", {CTY}' if county else f'event_type="{event_type}"'
    return "sum" + increase(f"holdline_domain_events_total{{{where}}}")


MONITORING: list[Panel] = [
    ("Cases opened by county", "timeseries", events("CaseOpened")),
    ("Signals by channel or department", "bargauge",
     "sum by (channel) "
     + increase(f'holdline_domain_events_total{{source="intake", {CTY}}}')),
    ("Households identified by kind", "bargauge", events("HouseholdIdentified", by="kind")),
    ("Identification time, days (p50, p90)", "timeseries",
     quantiles("holdline_identification_duration_seconds", f"{{{CTY}}}", 86400)),
    ("Deadline compliance % (not overdue)", "stat",
     f"100 * (1 - {total('CaseOverdue')} / clamp_min({total('CaseOpened')}, 1))"),
    ("Deadline warnings and overdue cases", "timeseries",
     events("CaseDeadlineApproaching|CaseOverdue", by="event_type")),
    ("Green-channel openings", "stat", total("GreenChannelOpened")),
    ("Cases rejected", "stat", total("CaseRejected")),
    ("Risk eliminations", "stat", total("RiskEliminated")),
]  # fmt: skip

NOTIFICATIONS = (
    'holdline_domain_events_total{event_type=~"NotificationDelivered|NotificationFailed"}'
)
ASSISTANCE: list[Panel] = [
    ("Plan events (pending, green channel, identified)", "stat", total("PlanCreated")),
    ("Measures assigned by type", "bargauge",
     "sum by (kind) " + increase('holdline_domain_events_total{event_type="MeasureAssigned"}')),
    ("Responsible cadres assigned", "stat", total("CadreAssigned")),
    ('Cadre load, % of "321" capacity', "bargauge",
     f"100 * max by (county) (holdline_cadre_load_ratio{{{CTY}}})"),
    ("Households held, by cadre rank", "bargauge",
     f"sum by (rank) (holdline_cadre_households{{{CTY}}})"),
    ("Monitored households without a cadre", "stat",
     f"sum(holdline_households_without_cadre{{{CTY}}}) or vector(0)"),
    ("Visits recorded and overdue", "timeseries",
     events("VisitRecorded|VisitOverdue", by="event_type")),
    ("Notifications by channel and outcome", "timeseries",
     "sum by (channel, event_type) " + increase(NOTIFICATIONS)),
    ("Delivery success %", "stat",
     f"100 * {total('NotificationDelivered', county=False)}"
     f" / clamp_min(sum{increase(NOTIFICATIONS)}, 1)"),
    ("Urgent alerts acknowledged", "stat", total("NotificationAcknowledged", county=False)),
    ("Acknowledgement time, minutes (p50, p90)", "timeseries",
     quantiles("holdline_notification_ack_seconds", scale=60)),
]  # fmt: skip

VARIABLES = [
    ("service", 'label_values(up{job="holdline"}, service)'),
    ("county", "label_values(holdline_domain_events_total, county)"),
]


def targets(query: str | list[tuple[str, str]]) -> list[dict[str, str]]:
    """Grafana targets of one panel, refIds A, B, ..."""
    pairs = [("__auto", query)] if isinstance(query, str) else query
    return [
        {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend}
        for n, (legend, expr) in enumerate(pairs)
    ]


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, object]:
    """A Grafana dashboard with the region and service variables and one panel per query."""
    return {
        "uid": uid,
        "title": title,
        "tags": ["holdline"],
        "schemaVersion": 39,
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "1m",
        "templating": {
            "list": [
                {
                    "name": name,
                    "type": "query",
                    "query": query,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "datasource": {"type": "prometheus", "uid": "prometheus"},
                    "refresh": 2,
                }
                for name, query in VARIABLES
            ]
        },
        "panels": [
            {
                "id": n + 1,
                "title": panel_title,
                "type": kind,
                "datasource": {"type": "prometheus", "uid": "prometheus"},
                "gridPos": {"h": 8, "w": 8, "x": (n % 3) * 8, "y": (n // 3) * 8},
                "targets": targets(query),
                # stat and bar-gauge panels show counts and percentages: whole numbers
                **({"fieldConfig": {"defaults": {"decimals": 0}}} if kind != "timeseries" else {}),
            }
            for n, (panel_title, kind, query) in enumerate(panels)
        ],
    }


DASHBOARDS = {
    "operations": dashboard("holdline-operations", "Holdline: operations", OPERATIONS),
    "monitoring": dashboard("holdline-monitoring", "Holdline: monitoring", MONITORING),
    "assistance": dashboard(
        "holdline-assistance", "Holdline: assistance and notifications", ASSISTANCE
    ),
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{name}.json": json.dumps(d, indent=2, ensure_ascii=False) + "\n"
            for name, d in DASHBOARDS.items()}  # fmt: skip


if __name__ == "__main__":
    for name, text in render().items():
        (HERE / "dashboards" / name).write_text(text)
