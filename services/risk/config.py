"""Risk settings (env prefix HOLDLINE_RISK_)."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class RiskSettings(ServiceSettings):
    """Every risk-engine knob, with the documented defaults of docs/rules.md."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_RISK_", extra="ignore")

    service_name: str = "risk"
    port: int = 8002
    identification_days: int = 15  # rules §4: discovery to identification
    home_visit_working_days: int = 2  # rules §4: after a self-declaration
