"""Notify settings (env prefix HOLDLINE_NOTIFY_)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import Count, Seconds, ServiceSettings

# bounds: a value notify cannot use stops the service at start, naming its variable, instead of
# failing every message it would have sent (shared/settings_errors.py)
Hour = Annotated[int, Field(ge=0, le=23)]  # a local hour of the day
# a share of calls; 0 would open a breaker on calls that all succeeded
Ratio = Annotated[float, Field(gt=0, le=1)]


class NotifySettings(ServiceSettings):
    """Every notify knob, with defaults that run locally."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_NOTIFY_", extra="ignore")

    service_name: str = "notify"
    port: int = 8004
    # the county office's default webhook: used when the roster has nobody for a level
    webhook_url: str = "http://127.0.0.1:8099/hook"
    language: Literal["zh-CN", "en"] = "zh-CN"  # another would fall back to zh-CN unseen
    # routing-table entries to replace or add, e.g. HOLDLINE_NOTIFY_ROUTES='{"CaseOverdue:county":
    # {"targets": ["county", "township"], "priority": "urgent"}}' (see routing.ROUTES)
    routes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # per-channel timeouts, seconds
    webhook_timeout_seconds: Seconds = 5.0
    robot_timeout_seconds: Seconds = 5.0
    sms_timeout_seconds: Seconds = 10.0
    email_timeout_seconds: Seconds = 15.0
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
    max_attempts: Count = 8
    retry_base_seconds: Seconds = 1.0
    retry_max_seconds: Seconds = 300.0  # at least retry_base_seconds
    # circuit breaker per channel and gateway: opens when this share of the last calls failed
    # fewest calls in the window before it may open: at most the window, or it never opens
    breaker_failure_threshold: Count = 10
    breaker_window: Count = 20
    breaker_failure_ratio: Ratio = 0.9
    breaker_cooldown_seconds: Seconds = 30.0
    dispatch_poll_seconds: Seconds = 0.5
    dispatch_batch_size: Count = 100
    # parallel attempts; below the database pool size so consumers and the API keep a connection
    dispatch_concurrency: Count = 8
    # how often escalations and digests are looked for
    schedule_poll_seconds: Seconds = 10.0
    # how often the backlog gauges (due, unsent notifications by priority) are recomputed
    backlog_metrics_seconds: Seconds = 15.0
    # acknowledgement links and escalation of urgent alerts: the address at which cadres'
    # phones reach this service's /v1/acks; unset, it is this host and `port` in development
    # and refused elsewhere (a link nobody can open escalates every urgent alert)
    public_base_url: str = ""
    ack_link_ttl_hours: Count = 168  # outlives ack_timeout_minutes: a cadre may still answer
    ack_timeout_minutes: Seconds = 120.0
    # acknowledgement links need no login: attempts per client address and window stay few, so
    # guessing tokens is slow
    ack_rate_per_client: Count = 30
    ack_rate_window_seconds: Seconds = 60.0
    # quiet hours (local time, `timezone`): non-urgent alerts to cadres wait until the end;
    # equal = off
    quiet_hours_start: Hour = 20
    quiet_hours_end: Hour = 8
    # digests: low-priority alerts to one cadre, gathered for this long, go as one message
    digest_window_minutes: Seconds = 60.0
    digest_max_items: Count = 20

    @field_validator("webhook_url", "sms_gateway_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # every alert to that address would fail its attempts and end dead-lettered
        if not value.strip().startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.strip()

    @model_validator(mode="after")
    def _limits_agree(self) -> NotifySettings:
        """Settings bounded by another one; each message starts with the field it names."""
        if self.retry_max_seconds < self.retry_base_seconds:
            raise ValueError(
                f"retry_max_seconds ({self.retry_max_seconds:g}) must be at least "
                f"retry_base_seconds ({self.retry_base_seconds:g})"
            )
        if self.breaker_failure_threshold > self.breaker_window:
            raise ValueError(
                f"breaker_failure_threshold ({self.breaker_failure_threshold}) must be at most "
                f"breaker_window ({self.breaker_window}): a breaker never sees more calls than "
                "its window, so it would never open"
            )
        if self.ack_link_ttl_hours * 60 < self.ack_timeout_minutes:
            raise ValueError(
                f"ack_link_ttl_hours ({self.ack_link_ttl_hours}) must cover ack_timeout_minutes "
                f"({self.ack_timeout_minutes:g}): a link that expires first cannot be "
                "acknowledged while its alert still waits for an answer"
            )
        return self

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
