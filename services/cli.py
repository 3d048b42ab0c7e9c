"""The `holdline` command: serve the services, run local infrastructure, run the demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib import import_module
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from typer.core import TyperGroup

from services.assistance.cli import cadres_app
from services.intake.cli import feed_app
from shared.dlq import dlq_app
from shared.infra import cli_errors, infra_app
from shared.settings_errors import check_database_url, settings_errors

SERVICES = ("intake", "risk", "assistance", "notify")


class HoldlineGroup(TyperGroup):
    """Runs every command inside settings_errors(): a HOLDLINE_* variable that cannot be used is
    one line naming it, exit status 2, whichever command read the settings."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        with settings_errors():
            return super().invoke(ctx)


app = typer.Typer(
    cls=HoldlineGroup, help="Holdline: catch households before they fall back into poverty."
)
app.add_typer(infra_app, name="infra", help="Local Kafka and PostgreSQL for development and tests.")
app.add_typer(feed_app, name="feed", help="Department data-comparison feeds.")
app.add_typer(cadres_app, name="cadres", help="The responsible-cadre roster.")
app.add_typer(dlq_app, name="dlq", help="Dead-letter topics: list, replay, discard.")
err = Console(stderr=True, soft_wrap=True)  # an error line is never broken inside a path


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="intake, risk, assistance, notify or all")],
) -> None:
    """Run one service under uvicorn, or all four as separate processes."""
    if service == "all":
        raise typer.Exit(_serve_all())
    if service not in SERVICES:
        err.print(f"[red]service: {service!r} is not one of {', '.join(SERVICES)}, all[/red]")
        raise typer.Exit(2)
    from shared.service import tune_gc

    module = import_module(f"services.{service}.app")
    config = import_module(f"services.{service}.config")
    settings = getattr(config, f"{service.capitalize()}Settings")()
    check_database_url(settings)
    application = module.create_app(settings)
    tune_gc(settings.gc_gen0_threshold)
    uvicorn.run(application, host=settings.host, port=settings.port, log_config=None)


def _serve_all() -> int:
    children = [
        subprocess.Popen([sys.executable, "-m", "services.cli", "serve", name]) for name in SERVICES
    ]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


@app.command()
def token(
    role: Annotated[str, typer.Option(help="village, township, county or admin")],
    jurisdiction: Annotated[str, typer.Option(help="region-code prefix, e.g. 530102")] = "",
    subject: Annotated[str, typer.Option(help="who the token names")] = "dev-cadre",
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 30, help="lifetime")] = 8,
) -> None:
    """Mint a development bearer token signed with the configured JWT secret."""
    from datetime import timedelta

    from shared.auth import AuthError, mint_token
    from shared.clock import SystemClock
    from shared.settings import ServiceSettings

    try:
        print(
            mint_token(
                subject=subject,
                role=role,  # type: ignore[arg-type]
                jurisdiction=jurisdiction,
                secret=ServiceSettings().jwt_secret.get_secret_value(),
                clock=SystemClock(),
                ttl=timedelta(hours=hours),
            )
        )
    except AuthError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def demo(
    households: Annotated[int, typer.Option(min=1, max=500, help="households to declare")] = 8,
    keep_kafka: Annotated[bool, typer.Option(help="leave Kafka running afterwards")] = False,
) -> None:
    """Start Kafka and the four services on SQLite, post a demo data set, print what happened."""
    from services.demo import run_demo

    with cli_errors():  # e.g. the broker's port taken: one line, no traceback
        code = run_demo(households=households, keep_kafka=keep_kafka)
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
