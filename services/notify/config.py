"""Notify settings (env prefix HOLDLINE_NOTIFY_)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    """Every notify knob, with defaults that run locally."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_NOTIFY_", extra="ignore")

    service_name: str = "notify"
    port: int = 8004
    # the county office's default webhook: used when the roster has nobody for a level
    webhook_url: str = "http://127.0.0.1:8099/hook"
    language: str = "zh-CN"
    # routing-table entries to replace or add, e.g. HOLDLINE_NOTIFY_ROUTES='{"CaseOverdue:county":
    # {"targets": ["county", "township"], "priority": "urgent"}}' (see routing.ROUTES)
    routes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # per-channel timeouts, seconds
    webhook_timeout_seconds: float = 5.0
    robot_timeout_seconds: float = 5.0
    sms_timeout_seconds: float = 10.0
    email_timeout_seconds: float = 15.0
    # group robot (WeCom/DingTalk style); with a secret, DingTalk-style signing is added
    robot_secret: SecretStr | None = None
    # SMS gateway over HTTP
    sms_gateway_url: str = "http://127.0.0.1:8098/sms"
    sms_api_key: SecretStr = SecretStr("holdline-dev-sms-key")
    sms_sender: str = "HOLDLINE"
    # e-mail over SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    email_from: str = "holdline@localhost"
    # retries: exponential backoff with full jitter, then the dead-letter state
    max_attempts: int = 8
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    # circuit breaker per channel and gateway: opens when this share of the last calls failed
    breaker_failure_threshold: int = 10  # fewest calls in the window before it may open
    breaker_window: int = 20
    breaker_failure_ratio: float = 0.9
    breaker_cooldown_seconds: float = 30.0
    dispatch_poll_seconds: float = 0.5
    dispatch_batch_size: int = 100
    # parallel attempts; below the database pool size so consumers and the API keep a connection
    dispatch_concurrency: int = 8
    # how often escalations and digests are looked for
    schedule_poll_seconds: float = 10.0
    # how often the backlog gauges (due, unsent notifications by priority) are recomputed
    backlog_metrics_seconds: float = Field(default=15.0, gt=0)
    # acknowledgement links and escalation of urgent alerts: the address at which cadres'
    # phones reach this service's /v1/acks; unset, it is this host and `port` in development
    # and refused elsewhere (a link nobody can open escalates every urgent alert)
    public_base_url: str = ""
    ack_link_ttl_hours: int = 168
    ack_timeout_minutes: float = 120.0
    # acknowledgement links need no login: attempts per client address and window stay few, so
    # guessing tokens is slow
    ack_rate_per_client: int = 30
    ack_rate_window_seconds: float = 60.0
    # quiet hours (local time, `timezone`): non-urgent alerts to cadres wait until the end;
    # equal = off
    quiet_hours_start: int = 20
    quiet_hours_end: int = 8
    # digests: low-priority alerts to one cadre, gathered for this long, go as one message
    digest_window_minutes: float = 60.0
    digest_max_items: int = 20

    @model_validator(mode="after")
    def _public_base_url(self) -> NotifySettings:
        url = self.public_base_url.strip().rstrip("/")
        if not url:
            if self.environment != "development":
                raise ValueError(
                    "public_base_url must be set outside development: the address of this "
                    "service that acknowledgement links use, e.g. https://holdline.example.org/notify"
                )
            url = f"http://{local_host(self.host)}:{self.port}"
        elif not url.startswith(("http://", "https://")):
            raise ValueError(f"public_base_url {url!r} is not an http(s) URL")
        self.public_base_url = url
        return self

    @model_validator(mode="after")
    def _routes_are_valid(self) -> NotifySettings:
        from services.notify.routing import routes_with
        from services.notify.templates import TEMPLATES

        for key, route in routes_with(self.routes).items():
            if route.template not in TEMPLATES["zh-CN"]:
                raise ValueError(f"routes.{key[0]}: unknown template {route.template!r}")
        return self


def local_host(host: str) -> str:
    """The host of a development link: a wildcard address is reached as the loopback."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
