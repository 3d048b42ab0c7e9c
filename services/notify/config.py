"""Notify settings (env prefix HOLDLINE_NOTIFY_)."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    """Every notify knob, with defaults that run locally."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_NOTIFY_", extra="ignore")

    service_name: str = "notify"
    port: int = 8004
    webhook_url: str = "http://127.0.0.1:8099/hook"
    webhook_timeout_seconds: float = 5.0
    max_attempts: int = 8
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    dispatch_poll_seconds: float = 0.5
