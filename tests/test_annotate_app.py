"""The annotation workbench over HTTP (FastAPI's test client) on a real warehouse, its database
connections running as the rrief_annotator role: sign-in, CSRF, the pre-filled page, saving,
field-by-field errors, stale pages, schema versions, skip, adjudication, the body limit."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from extractors.annotate.app import create_app
from extractors.annotate.command import DEFAULT_GUIDELINES, annotator_engine
from extractors.annotate.prefill import Prefiller
from extractors.annotate.sampling import sample_tasks
from extractors.extract import make_extractor
from extractors.gold import annotations as store
from extractors.results import ReportInput
from extractors.schemas import SchemaSpec, get_schema
from tests.annotate_data import PASSWORD, add_user, change_report_text, load_demo_reports

CXR = get_schema("cxr")
MAMMO = get_schema("mammo")
LIMIT = 64_000


@pytest.fixture
def db(empty_warehouse: Engine) -> Engine:
    load_demo_reports(empty_warehouse)
    sample_tasks(empty_warehouse, CXR, 6, "random", double=0.5, seed=1)
    sample_tasks(empty_warehouse, MAMMO, 2, "random", seed=1)
    add_user(empty_warehouse, "alice")
    add_user(empty_warehouse, "bob")
    add_user(empty_warehouse, "carol", adjudicator=True)
    return empty_warehouse


@pytest.fixture
def app_engine(db: Engine, warehouse_url: str) -> Iterator[Engine]:
    engine = annotator_engine(warehouse_url)
    yield engine
    engine.dispose()


def make_client(engine: Engine, schemas: list[SchemaSpec]) -> TestClient:
    prefillers = {s.id: Prefiller(s, make_extractor("rules", s)) for s in schemas}
    app = create_app(
        engine,
        {s.id: s for s in schemas},
        prefillers,
        session_secret="test-secret-" + "x" * 20,
        max_body_bytes=LIMIT,
        guidelines_markdown=DEFAULT_GUIDELINES.read_text(encoding="utf-8"),
    )
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def client(app_engine: Engine) -> Iterator[TestClient]:
    with make_client(app_engine, [CXR, MAMMO]) as c:
        yield c


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(c: TestClient, username: str = "alice") -> None:
    page = c.get("/login")
    r = c.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert m, f"no hidden field {name}"
    return m.group(1).replace("&#34;", '"').replace("&quot;", '"')


def form_of(html: str, schema: SchemaSpec) -> dict[str, str | list[str]]:
    """What a browser would post from the page as it is (checked radios, hidden fields)."""
    data: dict[str, str | list[str]] = {}
    for name in ("csrf_token", "schema_id", "content_sha256", "base_revision", "started_at",
                 "prefill_source", "prefill_version", "evidence"):  # fmt: skip
        data[name] = hidden(html, name)
    for m in re.finditer(r'<input type="(radio|checkbox)" name="(L:[^"]+)" value="([^"]*)"[^>]*?( checked)?>', html):  # fmt: skip
        kind, name, value, checked = m.groups()
        name = name.replace("&amp;", "&")
        if kind == "checkbox":
            data.setdefault(name, [])
            if checked:
                data[name].append(value)  # type: ignore[union-attr]
        elif checked:
            data[name] = value
    return data


def open_next(c: TestClient, schema: SchemaSpec = CXR) -> tuple[int, str]:
    r = c.get(f"/next?schema={schema.id}", follow_redirects=False)
    assert r.status_code == 303, r.text
    task_id = int(r.headers["location"].rsplit("/", 1)[1])
    page = c.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    return task_id, page.text


def test_failed_sign_ins_lock_the_user_and_the_address(app_engine: Engine) -> None:
    with make_client(app_engine, [CXR]) as c:
        token = csrf(c.get("/login").text)
        for _ in range(5):
            bad = c.post("/login", data={"username": "alice", "password": "wrong password!", "csrf_token": token})  # fmt: skip
            assert bad.status_code == 401
        locked = c.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})  # fmt: skip
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
        assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
        # the address is locked too: guessing another user's password from it is refused
        other = c.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": token})  # fmt: skip
        assert other.status_code == 429
        assert c.get("/", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_secure_when_asked(app_engine: Engine) -> None:
    app = create_app(app_engine, {CXR.id: CXR}, {CXR.id: Prefiller(CXR, make_extractor("rules", CXR))},
                     session_secret="test-secret-" + "x" * 20, max_body_bytes=LIMIT, secure_cookie=True)  # fmt: skip
    with TestClient(app, base_url="https://127.0.0.1") as c:
        page = c.get("/login")
        r = c.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf(page.text)}, follow_redirects=False)  # fmt: skip
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_sign_in_is_required_and_checked(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    page = client.get("/login")
    assert page.status_code == 200 and "Sign in" in page.text
    bad = client.post("/login", data={"username": "alice", "password": "wrong password!", "csrf_token": csrf(page.text)})  # fmt: skip
    assert bad.status_code == 401 and "Unknown user or wrong password" in bad.text
    nobody = client.post("/login", data={"username": "mallory", "password": PASSWORD, "csrf_token": csrf(page.text)})  # fmt: skip
    assert nobody.status_code == 401
    forged = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    login(client)
    home = client.get("/")
    assert home.status_code == 200 and "signed in as <strong>A1</strong>" in home.text
    assert "Chest X-ray" in home.text and "of 6 tasks complete" in home.text
    # every response forbids outside resources and framing
    assert "default-src 'none'" in home.headers["content-security-policy"]
    assert home.headers["x-frame-options"] == "DENY"
    cookie = home.request.headers.get("cookie", "")
    assert "alice" not in cookie and PASSWORD not in cookie


def test_the_page_is_prefilled_from_the_rules_with_evidence(client: TestClient, app_engine: Engine) -> None:  # fmt: skip
    login(client)
    task_id, html = open_next(client)
    task = store.get_task(app_engine, task_id)
    report = store.task_report(app_engine, task_id)
    (result,) = make_extractor("rules", CXR).extract_batch([ReportInput(report_id="r", text=report.text)])  # fmt: skip
    posted = form_of(html, CXR)
    for name, value in result.labels.items():
        assert posted[f"L:{name}"] == value, name  # the radios start at the rules' answer
    assert '<h2 id="h-report">Report</h2>' in html and '<h2 id="h-labels">Labels</h2>' in html
    assert "<h3>Findings" in html or "<h3>Impression" in html
    evidence = [e for spans in result.evidence.values() for e in spans]
    if evidence:
        assert f'<mark data-o="{evidence[0].start}"' in html
    assert f"pre-filled by rules {result.extractor.version}" in html
    assert task.reason in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert "/guidelines#cxr-pleural-effusion" in html
    guide = client.get("/guidelines")
    assert 'id="cxr-pleural-effusion"' in guide.text  # the schema's own field list
    assert "<h2>The golden rules</h2>" in guide.text  # docs/annotation.md, rendered


def test_submit_stores_a_row_and_moves_on(client: TestClient, app_engine: Engine) -> None:
    login(client)
    task_id, html = open_next(client)
    data = form_of(html, CXR)
    data["L:Cardiomegaly"] = "uncertain"
    data["L:Edema"] = "positive"
    data["seconds"] = "42"
    data["action"] = "submit"
    r = client.post(f"/tasks/{task_id}", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/next?schema=cxr@1"
    rec = store.latest_label(app_engine, task_id, "A1")
    assert rec.status == "submitted" and rec.revision == 1
    assert (rec.labels["Cardiomegaly"], rec.labels["Edema"]) == ("uncertain", "positive")
    assert rec.prefill_source == "rules" and 0 <= rec.seconds_spent <= 42
    assert client.get("/next?schema=cxr@1", follow_redirects=False).headers["location"] != f"/tasks/{task_id}"  # fmt: skip
    again = client.get(f"/tasks/{task_id}")
    assert "You submitted this task" in again.text and "revision 2" in again.text
    # the same form posted twice (a double click): the second is refused, nothing overwritten
    data["L:Edema"] = "negative"
    dup = client.post(f"/tasks/{task_id}", data=data, follow_redirects=False)
    assert dup.status_code == 409 and "nothing was overwritten" in dup.text
    assert store.latest_label(app_engine, task_id, "A1").labels["Edema"] == "positive"


def test_bad_values_are_refused_field_by_field(client: TestClient, app_engine: Engine) -> None:
    login(client)
    task_id, html = open_next(client)
    data = form_of(html, CXR)
    data["L:Cardiomegaly"] = "huge"
    del data["L:Edema"]
    data["action"] = "submit"
    r = client.post(f"/tasks/{task_id}", data=data)
    assert r.status_code == 422
    assert "2 fields need attention" in r.text
    assert "Cardiomegaly</a>: &#39;huge&#39; is not one of" in r.text
    assert "Edema</a>: no value chosen" in r.text
    assert store.latest_label(app_engine, task_id, "A1") is None
    bad_evidence = {**form_of(html, CXR), "evidence": '{"Edema": [[5, 999999]]}', "action": "draft"}
    r = client.post(f"/tasks/{task_id}", data=bad_evidence)
    assert r.status_code == 422 and "not inside the report" in r.text


def test_a_stale_page_is_refused_and_the_draft_kept(client: TestClient, db: Engine, app_engine: Engine) -> None:  # fmt: skip
    login(client)
    task_id, html = open_next(client)
    task = store.get_task(app_engine, task_id)
    change_report_text(db, task.report_key, "FINDINGS: Corrected: large left pneumothorax.")
    data = {**form_of(html, CXR), "L:Pneumothorax": "negative", "action": "submit"}
    r = client.post(f"/tasks/{task_id}", data=data)
    assert r.status_code == 409
    assert "report text changed after this page was opened" in r.text
    assert "large left pneumothorax" in r.text  # the page now shows the new text
    rec = store.latest_label(app_engine, task_id, "A1")
    assert rec.status == "draft" and rec.labels["Pneumothorax"] == "negative"
    # the refreshed page carries the new hash: submitting from it works
    fresh = {**form_of(r.text, CXR), "L:Pneumothorax": "positive", "action": "submit"}
    assert client.post(f"/tasks/{task_id}", data=fresh, follow_redirects=False).status_code == 303
    assert store.latest_label(app_engine, task_id, "A1").status == "submitted"


def test_a_newer_schema_version_gets_a_clear_message(app_engine: Engine) -> None:
    newer = SchemaSpec.model_validate({**CXR.model_dump(), "version": 2})
    with make_client(app_engine, [newer]) as c:
        login(c)
        home = c.get("/")
        assert "cxr@1 (6 tasks)" in home.text
        some = store.next_task(app_engine, CXR, "A1")
        r = c.get(f"/tasks/{some.task_id}")
        assert r.status_code == 409
        assert f"Task {some.task_id} was sampled for cxr@1, but this server annotates cxr@2 (a newer version)" in r.text  # fmt: skip
        data = {"csrf_token": csrf(home.text), "schema_id": "cxr@2", "action": "submit"}
        saved = c.post(f"/tasks/{some.task_id}", data=data)
        assert saved.status_code == 409 and "never mixed" in saved.text
    assert store.latest_label(app_engine, some.task_id, "A1") is None


def test_skip_needs_a_reason(client: TestClient, app_engine: Engine) -> None:
    login(client)
    task_id, html = open_next(client)
    data = {**form_of(html, CXR), "action": "skip", "skip_reason": ""}
    r = client.post(f"/tasks/{task_id}", data=data)
    assert r.status_code == 422 and "say why you skip" in r.text
    data["skip_reason"] = "report text unreadable or cut off"
    data["flagged"] = "on"
    assert client.post(f"/tasks/{task_id}", data=data, follow_redirects=False).status_code == 303
    rec = store.latest_label(app_engine, task_id, "A1")
    assert (rec.status, rec.skip_reason, rec.flagged) == ("skipped", "report text unreadable or cut off", True)  # fmt: skip


def test_per_key_fields_and_adjudication(client: TestClient, app_engine: Engine) -> None:
    double = next(t for t in _tasks(app_engine, CXR) if t.n_annotators == 2)
    answers = {"alice": "positive", "bob": "negative"}
    for user, value in answers.items():
        client.cookies.clear()
        login(client, user)
        html = client.get(f"/tasks/{double.task_id}").text
        data = {**form_of(html, CXR), "L:Pleural Effusion": value, "action": "submit"}
        assert client.post(f"/tasks/{double.task_id}", data=data, follow_redirects=False).status_code == 303  # fmt: skip
    assert client.get("/adjudicate").status_code == 403  # bob is no adjudicator
    client.cookies.clear()
    login(client, "carol")
    listing = client.get("/adjudicate")
    assert listing.status_code == 200 and f"/adjudicate/{double.task_id}" in listing.text
    assert "Pleural Effusion (positive / negative)" in listing.text
    page = client.get(f"/adjudicate/{double.task_id}")
    assert "Answers to adjudicate" in page.text and 'class="differ"' in page.text
    data = {**form_of(page.text, CXR), "L:Pleural Effusion": "uncertain", "action": "adjudicate"}
    r = client.post(f"/adjudicate/{double.task_id}", data=data, follow_redirects=False)
    assert r.status_code == 303
    (ans,) = store.task_answers(app_engine, CXR, [double.task_id])
    assert set(ans.submitted) == {"A1", "A2"} and ans.adjudicated.labels["Pleural Effusion"] == "uncertain"  # fmt: skip

    # mammography: BI-RADS and findings per breast come out of a per-key table
    mammo = _tasks(app_engine, MAMMO)[0]
    html = client.get(f"/tasks/{mammo.task_id}").text
    assert 'name="L:birads.left"' in html and 'name="L:mass.right"' in html
    data = {**form_of(html, MAMMO), "L:birads.left": "4A", "L:mass.left": "present", "action": "submit"}  # fmt: skip
    assert client.post(f"/tasks/{mammo.task_id}", data=data, follow_redirects=False).status_code == 303  # fmt: skip
    rec = store.latest_label(app_engine, mammo.task_id, "A3")
    assert rec.labels["birads"]["left"] == "4A" and rec.labels["mass"]["left"] == "present"


def test_bodies_over_the_limit_are_refused(client: TestClient) -> None:
    login(client)
    r = client.post("/tasks/1", data={"flag_note": "x" * (LIMIT + 10)})
    assert r.status_code == 413 and "RRIEF_ANNOTATE_MAX_BODY_BYTES" in r.text


def _tasks(engine: Engine, schema: SchemaSpec) -> list[store.Task]:
    out = []
    for task_id in range(1, 100):
        t = store.get_task(engine, task_id)
        if t and t.schema_name == schema.name:
            out.append(t)
    return out
