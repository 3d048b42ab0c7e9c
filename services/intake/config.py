"""Intake settings (env prefix HOLDLINE_INTAKE_)."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    """Every intake knob, with defaults that run locally."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_INTAKE_", extra="ignore")

    service_name: str = "intake"
    port: int = 8001
    max_body_bytes: int = 64 * 1024
