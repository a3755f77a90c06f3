"""The knobs of the health check: the ``RRIEF_ALERT_*`` / ``RRIEF_DRIFT_*`` settings as one model.

The fields, defaults, bounds and descriptions are those of :class:`extractors.settings.Settings`
(the single source of truth); this model only groups them so checks can be called with explicit
thresholds in tests and notebooks.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from extractors.settings import Settings

HEALTH_SETTINGS = (
    "drift_alpha",
    "drift_min_effect",
    "drift_min_daily_n",
    "drift_baseline_days",
    "drift_min_baseline_days",
    "alert_invalid_rate",
    "alert_volume_ratio",
)


class _HealthThresholdsBase(BaseModel):
    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Any:
        """The thresholds as configured by ``RRIEF_*`` settings."""
        return cls(**{name: getattr(settings, name) for name in HEALTH_SETTINGS})


HealthThresholds = create_model(  # type: ignore[call-overload]
    "HealthThresholds",
    __base__=_HealthThresholdsBase,
    __doc__="When the daily health check alerts (fields mirror the RRIEF_ settings).",
    **{
        name: (Settings.model_fields[name].annotation, Settings.model_fields[name])
        for name in HEALTH_SETTINGS
    },
)
