"""The RRIEF health web app and Airflow plugin: API and page on a real warehouse with synthetic
metrics and extractions (FastAPI's test client), the plugin's registration and authentication,
and once in a real headless Chromium (screenshot not blank, expected headings in the DOM)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from extractors.health import run_health_check
from extractors.health.app import create_app
from tests.ci import skip_unless_ci
from tests.health_data import fill_month, window_start

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_FILE = ROOT / "plugins" / "rrief_health" / "rrief_health_plugin.py"
CHROMIUM = Path("/usr/bin/chromium")
HEADINGS = (
    "RRIEF health",
    "Volumes",
    "Quarantine and invalid-output rates",
    "Extraction latency",
    "Label prevalence and drift",
    "Alerts",
)


@pytest.fixture
def month(empty_warehouse: Engine) -> tuple[Engine, list]:
    """29 days of CXR; the last has a Pleural Effusion shift and 12% invalid outputs, and the
    health check has stored its alerts."""
    days = fill_month(empty_warehouse, last_effusion=0.45, last_quarantined=8, last_errored=4)
    run_health_check(empty_warehouse, window_start(days[-1]), raise_on_alert=False)
    return empty_warehouse, days


@pytest.fixture
def client(month: tuple[Engine, list]) -> Iterator[TestClient]:
    engine, _ = month
    with TestClient(create_app(lambda: engine)) as c:
        yield c


def test_dashboard_api(client: TestClient, month: tuple[Engine, list]) -> None:
    _, days = month
    data = client.get("/api/dashboard").json()
    assert data["days"][-1] == days[-1].isoformat() and len(data["days"]) == 30
    assert data["days"][0] == (days[-1] - timedelta(days=29)).isoformat()
    pipeline = {p["day"]: p for p in data["pipeline"]}
    last = pipeline[days[-1].isoformat()]
    assert (last["n_fetched"], last["n_in"], last["n_quarantined"], last["n_errored"]) == (
        100,
        100,
        8,
        4,
    )
    assert last["invalid_rate"] == pytest.approx(0.12)
    assert pipeline[days[0].isoformat()]["quarantine_rate"] == pytest.approx(0.01)
    assert pipeline[data["days"][0]]["n_in"] == 0  # the day before the data starts
    effusion = next(p for p in data["prevalence"] if p["path"] == "Pleural Effusion")
    assert effusion["shares"]["positive"][-1] == pytest.approx(45 / 88)
    assert effusion["shares"]["positive"][1] == pytest.approx(15 / 99)
    assert effusion["shares"]["positive"][0] is None  # no reports that day
    assert {(f["day"], f["value"]) for f in effusion["flags"]} == {
        (days[-1].isoformat(), "positive"),
        (days[-1].isoformat(), "negative"),
    }
    assert all(not p["flags"] for p in data["prevalence"] if p["path"] != "Pleural Effusion")
    # early days lack a baseline: listed as not drift-tested, with the reason
    assert "drift_min_baseline_days=7" in data["drift_skipped"][days[2].isoformat()][0]
    assert data["schemas"]["cxr"][-1] == 88
    assert {(a["check_name"], a["subject"]) for a in data["alerts"]} == {
        ("drift", "cxr:Pleural Effusion"),
        ("invalid_output_rate", "cxr:rules"),
    }
    alerts = client.get("/api/alerts", params={"days": 7}).json()
    assert len(alerts) == 2 and alerts[0]["window_start"].startswith(days[-1].isoformat())

    week = client.get("/api/dashboard", params={"days": 7, "last_day": days[10].isoformat()})
    assert week.json()["days"][-1] == days[10].isoformat() and week.json()["alerts"] == []
    assert client.get("/api/dashboard", params={"days": 0}).status_code == 422
    assert client.get("/healthz").json() == {"status": "ok"}


def test_page_html(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for heading in HEADINGS[1:]:
        assert f"<h2>{heading}</h2>" in html
    assert "<h1>RRIEF health</h1>" in html
    assert html.count("<svg") == 4 + 14  # 4 pipeline charts + one per CXR label path
    assert "Pleural Effusion — drift" in html
    assert "1 label(s) with drift" in html
    assert "label drift in cxr &#x27;Pleural Effusion&#x27;" in html  # alerts table, escaped
    # self-contained: no scripts, nothing fetched, no report text
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "default-src 'none'" in html
    assert "synthetic report" not in html


def test_page_without_a_warehouse_url_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RRIEF_WAREHOUSE_URL", "")
    with TestClient(create_app()) as c:
        r = c.get("/api/dashboard")
    assert r.status_code == 503 and "RRIEF_WAREHOUSE_URL" in r.json()["detail"]


def _load_plugin_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rrief_health_plugin", PLUGIN_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_airflow_plugin_registration_and_auth() -> None:
    pytest.importorskip("airflow", reason="apache-airflow not installed (pipeline extra)")
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse
    from airflow.plugins_manager import is_valid_plugin

    module = _load_plugin_module()
    plugin = module.RriefHealthPlugin
    assert is_valid_plugin(plugin) and plugin.name == "rrief_health"
    (app,) = plugin.fastapi_apps
    assert app["url_prefix"] == "/rrief-health"
    assert not any(app["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    health, docs = (ExternalViewResponse.model_validate(v) for v in plugin.external_views)
    assert health.name == "RRIEF health" and health.destination == "nav"
    assert health.url_route == "rrief-health" and not health.href.startswith("/")
    assert docs.name == "RRIEF dbt docs" and docs.href == "rrief-health/dbt-docs/"
    # mounted in Airflow, every route needs a logged-in user
    with TestClient(app["app"]) as c:
        r = c.get("/")
        assert r.status_code == 401 and r.json()["detail"] == "Not authenticated"
        assert c.get("/api/dashboard").status_code == 401
        assert c.get("/dbt-docs/").status_code == 401


# --- a real browser ---------------------------------------------------------------------------


def png_pixels(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes) to (h, w, c)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, "unexpected PNG format"
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:  # Sub: running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif ftype == 2:  # Up
            cur = (line + prev) % 256
        else:  # Average or Paeth: sequential along the row
            cur = np.zeros(stride, dtype=np.int32)
            lst, up = line.tolist(), prev.tolist()
            row = [0] * stride
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = up[i]
                if ftype == 3:
                    row[i] = (lst[i] + (a + b) // 2) % 256
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    row[i] = (lst[i] + pred) % 256
            cur = np.array(row, dtype=np.int32)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(month: tuple[Engine, list]) -> Iterator[str]:
    """The app on a real HTTP port (uvicorn in a thread)."""
    import uvicorn

    engine, _ = month
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(lambda: engine), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# Headless Chromium in a container, with nothing fetched from outside (shared with the
# annotation page's Playwright tests).
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            *CHROMIUM_FLAGS,
            "--disable-quic",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_page_in_headless_chromium(served: str, tmp_path: Path) -> None:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        skip_unless_ci("no /usr/bin/chromium: install Debian's chromium (apt-get install chromium)")
    shot = tmp_path / "health.png"
    run = _chromium(
        "--window-size=1100,1400", f"--screenshot={shot}", served, profile=tmp_path / "p1"
    )
    assert shot.exists(), f"no screenshot; chromium said: {run.stderr[-2000:]}"
    pixels = png_pixels(shot.read_bytes())
    assert pixels.shape[:2] == (1400, 1100)
    colors = {tuple(p) for p in pixels[:, :, :3].reshape(-1, 3)[::7].tolist()}
    assert len(colors) > 50, f"screenshot looks blank: {len(colors)} distinct colours"
    red = np.all(pixels[:, :, :3] == (0xD0, 0x00, 0x00), axis=2).sum()
    assert red > 30  # red drift rings / threshold line / alert note are drawn

    dom = _chromium("--dump-dom", served, profile=tmp_path / "p2")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for heading in HEADINGS:
        assert re.search(rf"<h[12]>{re.escape(heading)}</h[12]>", dom.stdout), heading
    assert dom.stdout.count("<svg") == 4 + 14


def test_dbt_docs_served_read_only_with_nothing_fetched(
    month: tuple[Engine, list], tmp_path: Path
) -> None:
    """The docs site the pipeline's dbt_docs task writes, served as is; a CSP forbids any
    request leaving the browser; 404 with what to do before the first run."""
    engine, _ = month
    with TestClient(create_app(lambda: engine, dbt_docs_dir=str(tmp_path))) as c:
        missing = c.get("/dbt-docs/")
        assert missing.status_code == 404 and "dbt_docs" in missing.json()["detail"]
        (tmp_path / "static_index.html").write_text("<html><body>dbt docs</body></html>")
        r = c.get("/dbt-docs/")
        assert r.status_code == 200 and "dbt docs" in r.text
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert "connect-src" not in r.headers["content-security-policy"]  # none, by default-src
        assert c.post("/dbt-docs/").status_code == 405  # read-only
