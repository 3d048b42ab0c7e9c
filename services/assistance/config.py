"""Assistance settings (env prefix HOLDLINE_ASSISTANCE_)."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AssistanceSettings(ServiceSettings):
    """Every assistance knob, with defaults that run locally."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_ASSISTANCE_", extra="ignore")

    service_name: str = "assistance"
    port: int = 8003
