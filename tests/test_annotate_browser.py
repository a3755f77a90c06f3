"""The workbench in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright, no
browser download): sign in, open a task, change two labels and mark evidence with the keyboard,
submit, and find the rows in PostgreSQL; the same on the site schema chestxray14.yaml; and the
page without JavaScript. A screenshot is checked for its headings and that it is not blank."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from extractors.annotate.app import create_app
from extractors.annotate.command import DEFAULT_GUIDELINES, annotator_engine
from extractors.annotate.prefill import Prefiller
from extractors.annotate.sampling import sample_tasks
from extractors.extract import make_extractor
from extractors.gold import annotations as store
from extractors.schemas import get_schema
from tests.annotate_data import PASSWORD, add_user, load_demo_reports
from tests.ci import skip_unless_ci
from tests.test_health_plugin import CHROMIUM, CHROMIUM_FLAGS, _free_port, png_pixels

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CXR = get_schema("cxr")
CX14 = get_schema(str(ROOT / "examples" / "schemas" / "chestxray14.yaml"))


@pytest.fixture(scope="module")
def playwright_chromium() -> Iterator[object]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        skip_unless_ci("no /usr/bin/chromium: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) missing")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def served(empty_warehouse: Engine, warehouse_url: str) -> Iterator[tuple[str, Engine]]:
    import uvicorn

    load_demo_reports(empty_warehouse, days=1, per_day=60)
    sample_tasks(empty_warehouse, CXR, 3, "random", seed=5)
    sample_tasks(empty_warehouse, CX14, 2, "random", seed=5)
    add_user(empty_warehouse, "alice")
    engine = annotator_engine(warehouse_url)
    app = create_app(
        engine,
        {CXR.id: CXR, CX14.id: CX14},
        {CXR.id: Prefiller(CXR, make_extractor("rules", CXR)), CX14.id: Prefiller(CX14, None)},
        session_secret="browser-test-" + "s" * 24,
        max_body_bytes=1_000_000,
        guidelines_markdown=DEFAULT_GUIDELINES.read_text(encoding="utf-8"),
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", engine
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def sign_in(page, base: str) -> None:
    page.goto(base + "/")
    assert "/login" in page.url
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")


def open_task(page, base: str, schema_id: str) -> int:
    page.goto(f"{base}/next?schema={schema_id}")
    page.wait_for_selector("#label-form")
    return int(page.url.rsplit("/", 1)[1])


def option_index(schema, field: str, value: str) -> int:
    return (schema.allowed_values(schema.field(field)) or []).index(value)


def other_digit(schema, field: str, current: str) -> tuple[str, str]:
    """A shortcut digit choosing a value other than ``current``, and that value."""
    values = schema.allowed_values(schema.field(field)) or []
    target = next(v for v in values if v != current)
    return str(values.index(target) + 1), target


def active_path(page) -> str:
    return page.get_attribute(".ctl.active", "data-path")


def press_until(page, field: str) -> None:
    for _ in range(40):
        if active_path(page) == field:
            return
        page.keyboard.press("j")
    raise AssertionError(f"j never reached {field}")


def test_annotate_cxr_with_the_keyboard(playwright_chromium, served, tmp_path: Path) -> None:
    base, engine = served
    page = playwright_chromium.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base)
    task_id = open_task(page, base, "cxr@1")
    assert active_path(page) == "No Finding"  # the first control is active on arrival
    headings = page.locator("h1, h2").all_inner_texts()
    assert {"RRIEF annotation", "Report", "Labels", "Finish"} <= set(headings)

    shot = tmp_path / "annotate.png"
    page.screenshot(path=str(shot), full_page=False)
    pixels = png_pixels(shot.read_bytes())
    assert pixels.shape[:2] == (900, 1280)
    colors = {tuple(p) for p in pixels[:, :, :3].reshape(-1, 3)[::7].tolist()}
    assert len(colors) > 50, f"screenshot looks blank: {len(colors)} colours"
    header = np.all(pixels[:40, :, :3] == (0x1F, 0x3B, 0x57), axis=2).sum()
    assert header > 1000  # the page's own stylesheet loaded (no CDN, CSP 'self')
    if os.environ.get("RRIEF_SCREENSHOT_TO"):  # how docs/annotate-page.png is made
        shutil.copy(shot, os.environ["RRIEF_SCREENSHOT_TO"])

    before = {
        f: page.get_attribute(f".ctl[data-path='{f}']", "data-prefill")
        for f in ("Cardiomegaly", "Edema")
    }
    press_until(page, "Cardiomegaly")
    digit, cardiomegaly = other_digit(CXR, "Cardiomegaly", before["Cardiomegaly"])
    page.keyboard.press(digit)
    # mark evidence: select the first words of the report, press e
    first = int(page.get_attribute(".report [data-o]", "data-o"))
    length = min(12, len(page.inner_text(".report [data-o]")))
    page.evaluate(
        """() => { const seg = document.querySelector('.report [data-o]');
                   const r = document.createRange(); r.setStart(seg.firstChild, 0);
                   r.setEnd(seg.firstChild, Math.min(12, seg.firstChild.length));
                   const s = window.getSelection(); s.removeAllRanges(); s.addRange(r); }"""
    )
    page.keyboard.press("e")
    assert page.locator("ul.ev[data-for='Cardiomegaly'] li").count() == 1
    press_until(page, "Edema")
    digit, edema = other_digit(CXR, "Edema", before["Edema"])
    page.keyboard.press(digit)
    assert page.locator(".ctl.changed").count() >= 2
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: f"/tasks/{task_id}" not in url)

    rec = store.latest_label(engine, task_id, "A1")
    assert rec is not None and rec.status == "submitted" and rec.revision == 1
    assert rec.labels["Cardiomegaly"] == cardiomegaly and rec.labels["Edema"] == edema
    assert rec.prefill_source == "rules" and rec.seconds_spent is not None
    report = store.task_report(engine, task_id)
    assert rec.evidence["Cardiomegaly"] == [(first, first + length)]  # offsets, never text
    assert first + length <= len(report.text)
    page.close()


def test_annotate_a_site_schema_without_prefill(playwright_chromium, served) -> None:
    base, engine = served
    page = playwright_chromium.new_page()
    sign_in(page, base)
    task_id = open_task(page, base, "chestxray14@1")
    assert "pre-filled by nothing" in page.inner_text(".taskbar")
    assert active_path(page) == "Atelectasis"
    page.keyboard.press(str(option_index(CX14, "Atelectasis", "present") + 1))
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert active_path(page) == "Effusion"
    page.keyboard.press(str(option_index(CX14, "Effusion", "uncertain") + 1))
    page.keyboard.press("Control+s")  # a draft first
    page.wait_for_selector(".flash")
    assert store.latest_label(engine, task_id, "A1").status == "draft"
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: f"/tasks/{task_id}" not in url)
    rec = store.latest_label(engine, task_id, "A1")
    assert (rec.status, rec.revision) == ("submitted", 2)
    assert rec.labels["Atelectasis"] == "present" and rec.labels["Effusion"] == "uncertain"
    assert rec.labels["Mass"] == "not_mentioned" and rec.prefill_source == "none"
    page.close()


def test_the_page_works_without_javascript(playwright_chromium, served) -> None:
    base, engine = served
    context = playwright_chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, base)
    task_id = open_task(page, base, "cxr@1")
    page.check("input[name='L:Pneumothorax'][value='uncertain']")
    page.fill("#skip_reason", "")
    page.click("button[name=action][value=submit]")
    page.wait_for_url(lambda url: f"/tasks/{task_id}" not in url)
    rec = store.latest_label(engine, task_id, "A1")
    assert rec.status == "submitted" and rec.labels["Pneumothorax"] == "uncertain"
    assert rec.seconds_spent is not None and rec.seconds_spent >= 0  # server-side fallback
    context.close()
