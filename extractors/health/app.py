"""The RRIEF health web app (FastAPI): the HTML page at ``/``, its data at ``/api/dashboard``
and ``/api/alerts``, and the GX Data Docs page of each kept validation result at
``/data-docs/<result>`` (rendered from ``RRIEF_GX_DIR`` on request), and the dbt docs site
(models, columns and what they mean, lineage) at ``/dbt-docs/``, read-only from the directory
``rrief_daily``'s ``dbt_docs`` task writes (``RRIEF_DBT_DOCS_DIR``). The Airflow plugin mounts
it in the API server; it runs standalone too
(``uvicorn --factory extractors.health.app:create_app``).

It only reads the warehouse (``RRIEF_WAREHOUSE_URL``; never an embedded server) and opens the
engine on the first request, so importing or mounting it needs no database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.params import Depends
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import Engine, create_engine

from extractors.health.dashboard import Dashboard, build_dashboard, last_window_start
from extractors.health.page import render_page
from extractors.health.queries import AlertRecord, recent_alerts
from extractors.health.thresholds import HealthThresholds

EngineFactory = Callable[[], Engine]
DATA_DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# dbt's one-file docs site: its own inline scripts and styles, nothing fetched from anywhere
DBT_DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:"
)
DBT_DOCS_PAGE = "static_index.html"
Days = Annotated[int, Query(ge=1, le=366, description="how many days to show")]


def configured_engine(url: str) -> Engine:
    """An engine on ``url`` (``RRIEF_WAREHOUSE_URL``); unlike the pipeline, the page never starts
    an embedded PostgreSQL (the API server is not the place for one)."""
    from extractors.warehouse.db import normalize_url

    if not url:
        raise HTTPException(
            status_code=503,
            detail="RRIEF_WAREHOUSE_URL is not set in the Airflow API server's environment",
        )
    return create_engine(normalize_url(url), pool_pre_ping=True, pool_size=2, max_overflow=2)


class _LazyEngine:
    """Creates the engine once, on first use, from the factory (thread-safe)."""

    def __init__(self, factory: EngineFactory) -> None:
        self._factory = factory
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._factory()
            return self._engine


def create_app(
    engine_factory: EngineFactory | None = None,
    *,
    dependencies: Sequence[Depends] | None = None,
    default_days: int = 30,
    thresholds: HealthThresholds | None = None,
    gx_dir: str | None = None,
    dbt_docs_dir: str | None = None,
) -> FastAPI:
    """The app; ``dependencies`` guard every route (the plugin passes Airflow's
    authentication). ``engine_factory`` and ``thresholds`` default to the settings
    (:func:`configured_engine` on ``RRIEF_WAREHOUSE_URL``, the ``RRIEF_DRIFT_*``/``ALERT_*``
    values), read here once; so do ``gx_dir`` (``RRIEF_GX_DIR``, the kept validation
    results) and ``dbt_docs_dir`` (``RRIEF_DBT_DOCS_DIR``)."""
    from extractors.settings import get_settings

    settings = get_settings()
    url = settings.warehouse_url
    engine = _LazyEngine(engine_factory or (lambda: configured_engine(url)))
    th = thresholds or HealthThresholds.from_settings(settings)
    results_dir = settings.gx_dir if gx_dir is None else gx_dir
    docs_dir = Path(dbt_docs_dir) if dbt_docs_dir is not None else settings.docs_dir()
    app = FastAPI(
        title="RRIEF health",
        description="Pipeline volumes, invalid outputs, latency and label drift of RRIEF.",
        dependencies=list(dependencies or []),
    )

    def dashboard(days: int, last_day: date | None) -> Dashboard:
        try:
            return build_dashboard(engine(), days, last_day=last_day, thresholds=th)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc

    @app.get("/", response_class=HTMLResponse, summary="The health page")
    def page(days: Days = default_days, last_day: date | None = None) -> HTMLResponse:
        return HTMLResponse(render_page(dashboard(days, last_day), data_docs=bool(results_dir)))

    @app.get("/api/dashboard", response_model=Dashboard, summary="The page's data")
    def api_dashboard(days: Days = default_days, last_day: date | None = None) -> Dashboard:
        return dashboard(days, last_day)

    @app.get("/api/alerts", response_model=list[AlertRecord], summary="Stored alerts")
    def api_alerts(days: Days = default_days) -> list[AlertRecord]:
        first = last_window_start(engine()) - timedelta(days=days - 1)
        return recent_alerts(engine(), first, days)

    @app.get(
        "/data-docs/{result_path:path}",
        response_class=HTMLResponse,
        summary="GX Data Docs page of one kept validation result",
    )
    def data_docs(result_path: str) -> HTMLResponse:
        from extractors.validate.store import load_result, render_result_page

        if not results_dir:
            raise HTTPException(status_code=404, detail="RRIEF_GX_DIR is empty: results not kept")
        try:
            result = load_result(results_dir, result_path)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        except FileNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        # GX pages load their styling from public CDNs: forbid every fetch (air-gapped sites,
        # no request leaves the browser); the content is server-rendered and reads without it.
        return HTMLResponse(
            render_result_page(result), headers={"Content-Security-Policy": DATA_DOCS_CSP}
        )

    @app.get(
        "/dbt-docs/",
        response_class=HTMLResponse,
        summary="The dbt docs site of the warehouse (read-only)",
    )
    def dbt_docs() -> Response:
        page = docs_dir / DBT_DOCS_PAGE
        if not page.is_file():
            raise HTTPException(
                status_code=404,
                detail="no dbt docs yet: rrief_daily's dbt_docs task writes them "
                "(RRIEF_DBT_DOCS_DIR)",
            )
        return FileResponse(
            page, media_type="text/html", headers={"Content-Security-Policy": DBT_DOCS_CSP}
        )

    @app.get("/healthz", summary="Liveness (no database access)")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    return app
