"""The knobs of the health check, with their defaults and the ``RRIEF_`` settings behind them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from extractors.settings import Settings, get_settings


class HealthThresholds(BaseModel):
    """When the daily health check alerts. Field ``x`` is read from setting ``x``
    (``RRIEF_X``) when the settings object has it, else the default below applies."""

    model_config = ConfigDict(frozen=True)

    drift_alpha: float = Field(
        default=0.01, gt=0, lt=1, description="false discovery rate over one day's drift tests"
    )
    drift_min_effect: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="smallest absolute change of a label's share that can alert (0.05 = 5 points)",
    )
    drift_min_daily_n: int = Field(
        default=30, ge=1, description="fewest reports of a schema in a day before drift is tested"
    )
    drift_baseline_days: int = Field(
        default=28, ge=1, description="trailing days pooled as the drift baseline"
    )
    drift_min_baseline_days: int = Field(
        default=7, ge=1, description="fewest baseline days with reports before drift is tested"
    )
    alert_invalid_rate: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="invalid-output rate ((quarantined + errored) / extracted) that alerts",
    )
    alert_volume_ratio: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="alert when a schema's volume falls below this share of its weekday median",
    )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> HealthThresholds:
        """The thresholds from ``RRIEF_*`` settings where the settings object defines them."""
        settings = settings or get_settings()
        values = {
            name: getattr(settings, name) for name in cls.model_fields if hasattr(settings, name)
        }
        return cls(**values)
