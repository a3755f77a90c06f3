"""DAG health for data engineers: label drift, invalid-output rate and volume checks that write
``ops.alerts`` and fail the DAG's health task, plus the data and HTML of the "RRIEF health"
page that the Airflow plugin (``plugins/rrief_health``) mounts in the API server.

Modules: ``stats`` (tests), ``drift`` (label shares vs the trailing weeks), ``metrics``
(run metrics, invalid-output rate, volume), ``queries`` (warehouse reads), ``alerts``
(``ops.alerts`` and ``PipelineHealthError``), ``check`` (the daily check), ``dashboard``/
``svg``/``page``/``app`` (the page). See docs/health.md.
"""

from extractors.health.alerts import Alert, PipelineHealthError
from extractors.health.check import HealthReport, check_from_context, run_health_check
from extractors.health.thresholds import HealthThresholds

__all__ = [
    "Alert",
    "HealthReport",
    "HealthThresholds",
    "PipelineHealthError",
    "check_from_context",
    "run_health_check",
]
