"""Render the Grafana dashboards to PNG from a live Prometheus, laid out by their gridPos.

    python deploy/grafana/render.py --prometheus http://127.0.0.1:9090 --minutes 15 --out docs/img

Each panel's queries run through /api/v1/query_range over the last N minutes with the template
variables set to "all"; time series are drawn as lines, stat panels as their last value, bar
gauges as horizontal bars of their last values. Needs matplotlib (`pip install -e ".[ops]"`).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

HERE = Path(__file__).parent
GRID_COLUMNS = 24  # Grafana's grid width
UNIT = (0.62, 0.36)  # inches per grid column, per grid row
Series = tuple[str, list[float], list[float]]  # legend, unix times, values


def variables(minutes: int, step: int) -> dict[str, str]:
    """Template variables as Grafana would fill them with "All" selected."""
    return {
        "$service": ".*",
        "$county": ".*",
        "$__rate_interval": f"{max(4 * step, 60)}s",
        "$__range_s": str(minutes * 60),  # before $__range, which it begins with
        "$__range": f"{minutes}m",
    }


def query_range(
    http: httpx.Client, prometheus: str, expr: str, start: float, end: float, step: int
) -> list[dict[str, Any]]:
    """The matrix Prometheus answers for one expression."""
    answer = http.get(
        f"{prometheus}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": step},
    )
    body = answer.json()
    if answer.status_code != 200 or body.get("status") != "success":
        raise SystemExit(f"query failed: {expr}\n{body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def legend(metric: dict[str, str], wanted: str, keys: list[str]) -> str:
    """The target's legend, or ("__auto") the values of the labels that tell series apart."""
    if wanted and wanted != "__auto":
        return wanted
    # Prometheus drops empty labels: a missing one is a series created at zero on start-up
    return ", ".join(metric.get(k) or f'{k}=""' for k in keys) or "total"


def telling_labels(items: list[dict[str, Any]]) -> list[str]:
    """Labels whose value differs between the series (never `instance`, `job` or the name)."""
    keys = {k for item in items for k in item["metric"]} - {"__name__", "instance", "job"}
    if len(items) < 2:
        return sorted(keys)
    return sorted(k for k in keys if len({item["metric"].get(k) for item in items}) > 1)


def panel_series(
    http: httpx.Client,
    prometheus: str,
    panel: dict[str, Any],
    window: tuple[float, float, int],
    fill: dict[str, str],
) -> list[Series]:
    """Every series of every target of a panel, NaN points dropped."""  # fmt: skip
    start, end, step = window
    found: list[Series] = []
    for target in panel["targets"]:
        expr = target["expr"]
        for name, value in fill.items():
            expr = expr.replace(name, value)
        items = query_range(http, prometheus, expr, start, end, step)
        keys = telling_labels(items)
        for item in items:
            points = [(float(t), float(v)) for t, v in item["values"] if not math.isnan(float(v))]
            if points:
                times, values = zip(*points, strict=True)
                name = legend(item["metric"], target.get("legendFormat", ""), keys)
                found.append((name, list(times), list(values)))
    return found


def short(value: float, decimals: int | None = None) -> str:
    """A number as a dashboard shows it (the panel's `decimals` when it sets them)."""
    if decimals is not None:
        value = round(value, decimals)
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def draw(ax: Axes, panel: dict[str, Any], series: list[Series]) -> None:
    """One panel in the style of its type."""
    ax.set_title(panel["title"], fontsize=9, loc="left", color="#d8d9da")
    ax.set_facecolor("#181b1f")
    for spine in ax.spines.values():
        spine.set_color("#2c3235")
    ax.tick_params(colors="#8e8e8e", labelsize=7)
    if not series:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", color="#8e8e8e",
                transform=ax.transAxes)  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        return
    kind = panel["type"]
    decimals = panel.get("fieldConfig", {}).get("defaults", {}).get("decimals")
    if kind == "stat":
        ax.set_xticks([])
        ax.set_yticks([])
        lines = [(name, values[-1]) for name, _, values in series][:4]
        for n, (name, value) in enumerate(lines):
            y = 0.5 + (len(lines) - 1) * 0.12 - n * 0.24
            shown = short(value, decimals)
            label = shown if len(lines) == 1 else f"{name}: {shown}"
            size = 26 if len(lines) == 1 else 13
            ax.text(0.5, y, label, ha="center", va="center", color="#73bf69", fontsize=size,
                    weight="bold", transform=ax.transAxes)  # fmt: skip
        return
    if kind == "bargauge":
        bars = sorted(((name, values[-1]) for name, _, values in series), key=lambda b: b[1])[-10:]
        names = [name[:28] for name, _ in bars]
        ax.barh(names, [v for _, v in bars], color="#5794f2")
        for n, (_, value) in enumerate(bars):
            shown = short(value, decimals)
            ax.text(value, n, f" {shown}", va="center", color="#d8d9da", fontsize=7)
        ax.set_xticks([])
        return
    for name, times, values in series[:12]:
        when = mdates.date2num([datetime.fromtimestamp(t, UTC) for t in times])
        ax.plot(when, values, label=name[:40], linewidth=1.2)
    locator = mdates.AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
    ax.grid(color="#2c3235", linewidth=0.5)
    ax.legend(fontsize=6, loc="upper left", frameon=False, labelcolor="#d8d9da")


def render_dashboard(
    http: httpx.Client,
    prometheus: str,
    path: Path,
    out: Path,
    minutes: int,
    step: int,
    end: float | None = None,
) -> Path:
    """One dashboard JSON to one PNG over the `minutes` before `end` (default: now)."""  # fmt: skip
    board = json.loads(path.read_text(encoding="utf-8"))
    panels = board["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    header, footer = 0.45, 0.25  # inches for the dashboard's title, and below the last row
    width, height = GRID_COLUMNS * UNIT[0], rows * UNIT[1] + header + footer
    fig = Figure(figsize=(width, height), facecolor="#111217")
    end = end or time.time()
    window = (end - minutes * 60, end, step)
    fill = variables(minutes, step)
    for panel in panels:
        pos = panel["gridPos"]
        # bar gauges need room on the left for their labels
        left = (1.5 if panel["type"] == "bargauge" else 0.45) / width
        pad_x, pad_y = 0.2 / width, 0.45 / height
        ax = fig.add_axes((
            pos["x"] / GRID_COLUMNS + left,
            1 - (header + (pos["y"] + pos["h"]) * UNIT[1]) / height + pad_y * 0.4,
            pos["w"] / GRID_COLUMNS - left - pad_x,
            pos["h"] * UNIT[1] / height - pad_y * 1.3,
        ))  # fmt: skip
        draw(ax, panel, panel_series(http, prometheus, panel, window, fill))
    stamp = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M UTC")
    fig.suptitle(f"{board['title']}  ·  last {minutes} min to {stamp}", x=0.01, y=0.995,
                 ha="left", va="top", color="#d8d9da", fontsize=12)  # fmt: skip
    target = out / f"dashboard-{path.stem}.png"
    fig.savefig(target, dpi=72, facecolor=fig.get_facecolor())
    return target


def main() -> None:
    """Command line: every dashboard of deploy/grafana/dashboards to <out>/dashboard-<name>.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=int, default=15, help="time range of every panel")
    parser.add_argument("--step", type=int, default=0, help="seconds between points (0: auto)")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--dashboards", type=Path, default=HERE / "dashboards")
    parser.add_argument("--end", type=float, default=None, help="unix time (default: now)")
    args = parser.parse_args()
    step = args.step or max(args.minutes * 60 // 240, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(timeout=30) as http:
        for path in sorted(args.dashboards.glob("*.json")):
            png = render_dashboard(http, args.prometheus.rstrip("/"), path, args.out,
                                   args.minutes, step, end=args.end)  # fmt: skip
            print(f"{png} ({png.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
