"""Airflow 3 plugin "RRIEF health": mounts the health web app (``extractors.health.app``) in the
Airflow API server at ``/rrief-health`` and adds it to the UI's Browse menu as an embedded view.

The page shows the last 30 days: volumes, quarantine and invalid-output rates, extraction
latency and label prevalence with drift flags, as server-side SVG (no scripts, no downloads),
the stored alerts, and every kept Great Expectations result with the GX Data Docs page of each
failed one (``/rrief-health/data-docs/...``, rendered from ``RRIEF_GX_DIR``). A second view,
"RRIEF dbt docs", shows the dbt docs site the pipeline generates (``/rrief-health/dbt-docs/``,
from ``RRIEF_DBT_DOCS_DIR``, read-only, nothing fetched from a CDN): every mart and cohort with
what each column means.
Every route requires a logged-in Airflow user (the UI's session cookie is sent to the iframe).
The API server needs ``RRIEF_WAREHOUSE_URL`` (it opens the connection on the first request) and
read access to ``RRIEF_GX_DIR`` and ``RRIEF_DBT_DOCS_DIR``.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends

from extractors.health.app import create_app

URL_PREFIX = "/rrief-health"


def _airflow_auth() -> list[Any]:
    """Airflow's "any authenticated user" dependency (Airflow >= 3.1)."""
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return [Depends(requires_authenticated())]


class RriefHealthPlugin(AirflowPlugin):
    """The RRIEF health page in the Airflow API server and UI."""

    name = "rrief_health"
    fastapi_apps = [  # noqa: RUF012 - the plugin manager reads these class attributes
        {
            "app": create_app(dependencies=_airflow_auth()),
            "url_prefix": URL_PREFIX,
            "name": "RRIEF health",
        }
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "RRIEF health",
            # relative to the UI's base URL (works behind a reverse-proxy prefix)
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "rrief-health",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "RRIEF dbt docs",
            "href": URL_PREFIX.lstrip("/") + "/dbt-docs/",
            "url_route": "rrief-dbt-docs",
            "destination": "nav",
            "category": "browse",
        },
    ]
