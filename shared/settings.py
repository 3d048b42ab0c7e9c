"""Settings base: one pydantic-settings class per service, each with its own env prefix."""

from __future__ import annotations

from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared.auth import DEPARTMENTS

STATE_DIR = Path(".holdline")
# bounds of the services' operational knobs: a value a service cannot use stops it at start,
# naming its variable (settings_errors.py), instead of failing later at every use
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # a period (also minutes, hours)
Count = Annotated[int, Field(ge=1)]  # a size, a limit, a number of tries
DEV_SECRET = "holdline-dev-secret-change-me"


class ServiceSettings(BaseSettings):
    """Knobs every service has; `HOLDLINE_<SERVICE>_X` beats the shared `HOLDLINE_X`."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = ""
    kafka_bootstrap: str = "127.0.0.1:19092"
    # the local time zone of the policy's dates: deadlines in working days, visit months,
    # "not in the future", quiet hours (shared.clock.local_date)
    timezone: str = "Asia/Shanghai"
    topic_prefix: str = "holdline."
    # a bounded send so an outage shows up in logs and readiness instead of hanging silently
    kafka_request_timeout_ms: int = 10_000
    # intake accepts into its outbox while Kafka is away: its readiness can leave Kafka out
    readiness_requires_kafka: bool = True
    consumer_max_retries: int = 3
    consumer_retry_backoff_seconds: float = 0.2
    consumer_batch_size: int = 200
    # a batch handler's transaction holds at most this many units (a feed slice counts its rows)
    consumer_batch_units: int = 2_000
    # processed offsets are committed to Kafka at most this often (and always on a rebalance
    # and on close); a crash replays up to this much, which the dedup marks turn into no-ops
    consumer_commit_seconds: Annotated[float, Field(ge=0)] = 1.0
    outbox_batch_size: int = 500
    outbox_poll_seconds: float = 0.5
    # a relay pass starts at least this long after the one before it ended: under load the
    # rows committed meanwhile go in one pass (one produce request a partition) instead of a
    # pass each; after a quiet spell the first pass starts at once
    outbox_pass_interval_seconds: Annotated[float, Field(ge=0)] = 0.010
    # and at least this many times as long as that pass took, up to the maximum: passes that
    # slow down because the cores are busy come less often and carry more (shared.kafka
    # pass_spacing); 0 keeps the interval alone
    outbox_pass_spacing_factor: Annotated[float, Field(ge=0)] = 2.0
    outbox_pass_interval_max_seconds: Annotated[float, Field(ge=0)] = 0.100
    # how often the relay measures its backlog for the outbox gauges (and the stuck-outbox alert)
    outbox_metrics_seconds: float = 5.0
    # housekeeping (shared/housekeeping.py): published outbox rows are kept this long, dedup
    # marks longer than any topic's retention (DLQs: 90 days) so a replay stays a no-op
    outbox_keep_days: Annotated[float, Field(ge=0)] = 7
    processed_keep_days: Annotated[float, Field(ge=1)] = 100
    housekeeping_seconds: Annotated[float, Field(gt=0)] = 3600
    housekeeping_batch: Annotated[int, Field(ge=1)] = 5_000
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    jwt_secret: SecretStr = SecretStr(DEV_SECRET + "-jwt")
    app_key: SecretStr = SecretStr("holdline-dev-app-key")
    # department -> API key; in development every department's key is `dev-<department>-key`
    department_keys: dict[str, SecretStr] = {}
    log_level: str = "INFO"
    # the largest request body any route reads whole (JSON); a route may have its own limit
    # (create_service_app's body_limits), and a longer body is refused with 413 as it arrives
    max_body_bytes: Annotated[int, Field(ge=1)] = 64 * 1024
    # allocations between two young-generation collections of the cyclic garbage collector
    # (`holdline serve` only; 0 keeps Python's 700): see shared/service.py tune_gc
    gc_gen0_threshold: Annotated[int, Field(ge=0)] = 50_000

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared_env = EnvSettingsSource(settings_cls, env_prefix="HOLDLINE_")
        # the base class itself (the CLI's token and dlq commands) has no prefix of its own:
        # without this it would read bare PORT, DATABASE_URL or JWT_SECRET, which other
        # software sets for itself
        own = (env_settings,) if settings_cls.model_config.get("env_prefix") else ()
        return init_settings, *own, shared_env, dotenv_settings, file_secret_settings

    @field_validator("*")
    @classmethod
    def _port_range(cls, value: object, info: ValidationInfo) -> object:
        # `port` and every `*_port`, also where a service class sets its own default (a field
        # redefined in a subclass loses the base's Field constraints, a validator is kept)
        name = info.field_name or ""
        if (name == "port" or name.endswith("_port")) and isinstance(value, int):
            if not 1 <= value <= 65535:
                raise ValueError(f"{value} is not a port (1-65535)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone (e.g. Asia/Shanghai)") from None
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        """`timezone` as a tzinfo."""
        return ZoneInfo(self.timezone)

    def local_date(self, at: datetime) -> date:
        """The local date of an instant (naive is UTC)."""
        from shared.clock import local_date

        return local_date(at, self.zone)

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> ServiceSettings:
        if not self.database_url:
            STATE_DIR.mkdir(exist_ok=True)
            path = (STATE_DIR / f"{self.service_name}.sqlite3").resolve()
            self.database_url = f"sqlite+aiosqlite:///{path}"
        if self.environment != "development":
            for name in ("secret_key", "jwt_secret", "app_key"):
                if (
                    getattr(self, name).get_secret_value()
                    == type(self).model_fields[name].default.get_secret_value()
                ):
                    raise ValueError(f"{name} is still the development default; set it")
            if not self.department_keys:
                raise ValueError("department_keys must be set outside development")
        return self

    def department_key_map(self) -> dict[str, str]:
        """Department -> API key in force (development keys when none are configured)."""
        if self.department_keys:
            return {d: k.get_secret_value() for d, k in self.department_keys.items()}
        return {d: f"dev-{d}-key" for d in DEPARTMENTS}

    def topic(self, name: str) -> str:
        """Full topic name for a short name such as `signals`."""
        return f"{self.topic_prefix}{name}.v1"
