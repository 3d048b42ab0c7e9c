"""Assistance settings (env prefix HOLDLINE_ASSISTANCE_)."""

from pydantic_settings import SettingsConfigDict

from shared.amounts import Amount
from shared.settings import Count, Seconds, ServiceSettings


class AssistanceSettings(ServiceSettings):
    """Every assistance knob, with the documented defaults of docs/rules.md §6."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_ASSISTANCE_", extra="ignore")

    service_name: str = "assistance"
    port: int = 8003
    catalogue_path: str = ""  # empty: the bundled services/assistance/catalogue.json
    # rules §6.9 "321": households per cadre by rank; None means no limit
    cadre_capacity_county_leader: Count = 3
    cadre_capacity_section_level: Count = 2
    cadre_capacity_general: Count = 1
    cadre_capacity_township_village: Count | None = None
    visit_interval_days: Count = 30  # rules §6.10: at least monthly
    # rules §6.10: a visit still missing this many days after the due date reaches the township
    visit_township_escalation_days: Count = 7
    visit_check_seconds: Seconds = 300.0  # how often the overdue-visit job looks
    workload_seconds: Seconds = 30.0  # how often the cadre-workload gauges are recomputed
    # rules §6.11 "low income": per-capita yuan/year under which a household is a must-visit one
    must_visit_low_income_yuan: Amount = 6000.0

    def capacities(self) -> dict[str, int | None]:
        """Rank -> the most households a cadre of that rank may be responsible for."""
        return {
            "county_leader": self.cadre_capacity_county_leader,
            "section": self.cadre_capacity_section_level,
            "general": self.cadre_capacity_general,
            "township": self.cadre_capacity_township_village,
            "village": self.cadre_capacity_township_village,
        }
