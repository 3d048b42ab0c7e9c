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


def events(event_type: str, by: str = "county", window: str = "$__range") -> str:
    """Committed domain events of one type over the dashboard's range."""
    return (
        f"sum by ({by}) (increase(holdline_domain_events_total"
        f'{{event_type=~"{event_type}", {CTY}}}[{window}]))'
    )


OPERATIONS = [
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
     "sum(increase(holdline_events_dead_lettered_total[$__range])) or vector(0)"),
    ("Outbox backlog", "timeseries", f"max by (service) (holdline_outbox_backlog{{{SVC}}})"),
    ("Outbox oldest row age (s)", "timeseries",
     f"max by (service) (holdline_outbox_oldest_age_seconds{{{SVC}}})"),
]  # fmt: skip

MONITORING = [
    ("Cases opened by county", "timeseries", events("CaseOpened") + " or vector(0)"),
    ("Signals by channel or department", "bargauge",
     f'sum by (channel) (increase(holdline_domain_events_total{{source="intake", {CTY}}}'
     "[$__range]))"),
    ("Households identified by kind", "bargauge",
     events("HouseholdIdentified", by="kind") + " or vector(0)"),
    ("Deadline compliance % (not overdue)", "stat",
     f'100 * (1 - (sum(increase(holdline_domain_events_total{{event_type="CaseOverdue", {CTY}}}'
     "[$__range])) or vector(0))"
     f' / clamp_min(sum(increase(holdline_domain_events_total{{event_type="CaseOpened", {CTY}}}'
     "[$__range])), 1))"),
    ("Deadline warnings and overdue cases", "timeseries",
     events("CaseDeadlineApproaching|CaseOverdue", by="event_type") + " or vector(0)"),
    ("Green-channel openings", "stat",
     f'sum(increase(holdline_domain_events_total{{event_type="GreenChannelOpened", {CTY}}}'
     "[$__range])) or vector(0)"),
    ("Cases rejected", "stat",
     f'sum(increase(holdline_domain_events_total{{event_type="CaseRejected", {CTY}}}'
     "[$__range])) or vector(0)"),
    ("Risk eliminations", "stat",
     f'sum(increase(holdline_domain_events_total{{event_type="RiskEliminated", {CTY}}}'
     "[$__range])) or vector(0)"),
]  # fmt: skip

ASSISTANCE = [
    ("Plans created", "stat",
     f'sum(increase(holdline_domain_events_total{{event_type="PlanCreated", {CTY}}}'
     "[$__range])) or vector(0)"),
    ("Measures assigned by type", "bargauge",
     'sum by (kind) (increase(holdline_domain_events_total{event_type="MeasureAssigned"}'
     "[$__range])) or vector(0)"),
    ("Responsible cadres assigned", "stat",
     f'sum(increase(holdline_domain_events_total{{event_type="CadreAssigned", {CTY}}}'
     "[$__range])) or vector(0)"),
    ("Visits recorded and overdue", "timeseries",
     events("VisitRecorded|VisitOverdue", by="event_type") + " or vector(0)"),
    ("Notifications by channel and outcome", "timeseries",
     "sum by (channel, event_type) (increase(holdline_domain_events_total"
     '{event_type=~"NotificationDelivered|NotificationFailed"}[$__range])) or vector(0)'),
    ("Delivery success %", "stat",
     '100 * sum(increase(holdline_domain_events_total{event_type="NotificationDelivered"}'
     "[$__range])) / clamp_min(sum(increase(holdline_domain_events_total"
     '{event_type=~"NotificationDelivered|NotificationFailed"}[$__range])), 1) or vector(0)'),
    ("Urgent alerts acknowledged", "stat",
     'sum(increase(holdline_domain_events_total{event_type="NotificationAcknowledged"}'
     "[$__range])) or vector(0)"),
]  # fmt: skip

VARIABLES = [
    ("service", 'label_values(up{job="holdline"}, service)'),
    ("county", "label_values(holdline_domain_events_total, county)"),
]


def dashboard(uid: str, title: str, panels: list[tuple[str, str, str]]) -> dict[str, object]:
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
                "targets": [{"refId": "A", "expr": expr, "legendFormat": "__auto"}],
            }
            for n, (panel_title, kind, expr) in enumerate(panels)
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
