"""The annotation workbench (FastAPI): server-rendered pages, a small vanilla script on top.

Annotators sign in (argon2id hashes, a signed session cookie, a CSRF token in every form), take
the next task of a schema, correct the labels the current extractor pre-filled and save a
draft, submit, or skip with a reason; adjudicators settle disagreements side by side. Every
page works without JavaScript; the script adds keyboard shortcuts, evidence marking and the
active-time count. Nothing is fetched from outside (a Content-Security-Policy forbids it).

The app reads and writes the warehouse only through :mod:`extractors.gold.annotations` on the
engine it is given (``rrief annotate serve`` connects it as the ``rrief_annotator`` role).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from sqlalchemy import Engine
from starlette.middleware.sessions import SessionMiddleware

from extractors.annotate import auth
from extractors.annotate.agreement import compute_agreement
from extractors.annotate.forms import anchor, build_form, parse_evidence, parse_labels, raw_values
from extractors.annotate.limits import BodySizeLimit, SecurityHeaders
from extractors.annotate.prefill import Prefill, Prefiller
from extractors.annotate.report_view import report_sections
from extractors.annotate.throttle import SignInThrottle
from extractors.gold import annotations as store
from extractors.schemas import LabelValidationError, SchemaSpec

log = logging.getLogger("rrief.annotate")
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "rrief_annotate"
SESSION_HOURS = 12
SKIP_REASONS = (
    "not this kind of report",
    "report text unreadable or cut off",
    "cannot decide from the text alone",
)


class _LoginRequired(Exception):
    pass


def create_app(
    engine: Engine,
    schemas: dict[str, SchemaSpec],
    prefillers: dict[str, Prefiller],
    *,
    session_secret: str,
    max_body_bytes: int,
    guidelines_markdown: str | None = None,
    secure_cookie: bool = False,
    throttle: SignInThrottle | None = None,
) -> FastAPI:
    """The workbench over ``engine`` for the schema versions in ``schemas`` (by id).

    ``prefillers`` (by schema id) pre-fill the pages; ``guidelines_markdown`` is shown at
    ``/guidelines`` above the schemas' own field descriptions. ``secure_cookie`` marks the session
    cookie Secure (behind TLS); ``throttle`` limits failed sign-ins (a default one if omitted).
    """
    throttle = throttle or SignInThrottle()
    app = FastAPI(title="RRIEF annotation", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["anchor"] = anchor
    guidelines_html = (
        MarkdownIt("commonmark", {"html": False}).enable("table").render(guidelines_markdown)
        if guidelines_markdown
        else None
    )

    # -- helpers ---------------------------------------------------------------------------------
    def user_of(request: Request) -> store.Annotator:
        pseudonym = request.session.get("user")
        account = store.get_annotator(engine, pseudonym=pseudonym) if pseudonym else None
        if account is None or not account.active:
            request.session.pop("user", None)
            raise _LoginRequired
        return account

    def csrf_of(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = auth.new_token()
        return token

    async def checked_form(request: Request) -> Any:
        form = await request.form()
        if not auth.same_token(request.session.get("csrf"), str(form.get("csrf_token") or "")):
            raise HTTPException(403, "this form has expired or did not come from this site: reload the page")  # fmt: skip
        return form

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("user", None)
        context["csrf"] = csrf_of(request)
        context["flash"] = request.session.pop("flash", None)
        return templates.TemplateResponse(request, name, context, status_code=status)

    def schema_for(task: store.Task) -> tuple[SchemaSpec | None, str | None]:
        """The loaded schema of a task, or the message that explains why there is none."""
        if task.schema_id in schemas:
            return schemas[task.schema_id], None
        same_name = sorted(s.id for s in schemas.values() if s.name == task.schema_name)
        if same_name:
            loaded = ", ".join(same_name)
            newer = any(schemas[s].version > task.schema_version for s in same_name)
            return None, (
                f"Task {task.task_id} was sampled for {task.schema_id}, but this server annotates "
                f"{loaded}{' (a newer version)' if newer else ''}. Labels of different schema "
                f"versions are never mixed: annotate it with `rrief annotate serve --schema "
                f"{task.schema_id}`, or sample new tasks for {loaded}."
            )
        return None, (
            f"Task {task.task_id} belongs to schema {task.schema_id}, which this server does not "
            f"load (start it with --schema {task.schema_id})."
        )

    def prefill_for(schema: SchemaSpec, report: store.TaskReport) -> Prefill:
        prefiller = prefillers.get(schema.id) or Prefiller(schema, None)
        return prefiller(report.report_key, report.text, report.content_sha256)

    def task_page(
        request: Request,
        user: store.Annotator,
        task: store.Task,
        schema: SchemaSpec,
        *,
        mode: str = "annotate",
        status: int = 200,
        raw: dict | None = None,
        errors: dict[str, str] | None = None,
        message: str | None = None,
        message_kind: str = "error",
        form_state: dict | None = None,
    ) -> HTMLResponse:
        report = store.task_report(engine, task.task_id)
        if report is None:
            raise HTTPException(404, f"the report of task {task.task_id} is gone from raw.reports")
        prefill = prefill_for(schema, report)
        mine = store.latest_label(engine, task.task_id, user.pseudonym)
        answers = None
        values = prefill.labels
        if mode == "adjudicate":
            (answers,) = store.task_answers(engine, schema, [task.task_id]) or [None]
            if answers is not None and answers.adjudicated is not None:
                values = answers.adjudicated.labels or values
            elif answers is not None and answers.submitted:
                values = next(iter(answers.submitted.values())).labels or values
        elif mine is not None and mine.labels is not None:
            values = mine.labels
        state = {
            "evidence": {
                k: [list(s) for s in v] for k, v in (mine.evidence if mine else {}).items()
            },
            "flagged": mine.flagged if mine else False,
            "flag_note": (mine.flag_note or "") if mine else "",
            "skip_reason": (mine.skip_reason or "") if mine else "",
        }
        state.update(form_state or {})
        notice = None
        if mine is not None and mode == "annotate" and not message:
            when = f"{mine.saved_at:%Y-%m-%d %H:%M} UTC"
            notice = {
                "draft": f"Your draft of {when} is loaded.",
                "submitted": f"You submitted this task on {when}. Saving again adds revision "
                f"{mine.revision + 1}; the earlier answer stays in the history.",
                "skipped": f"You skipped this task on {when} ({mine.skip_reason}).",
                "adjudicated": f"You adjudicated this task on {when}.",
            }[mine.status]
            if mine.content_sha256 != report.content_sha256:
                notice += " The report text has changed since: check your answers against it."
        pairs = []
        if answers is not None:
            for name, rec in answers.submitted.items():
                pairs.append((name, rec.labels or {}))
        marked = {k: [tuple(s) for s in v] for k, v in state["evidence"].items()}
        groups = build_form(schema, values, prefill.labels, errors, raw)
        return render(
            request,
            "task.html",
            status,
            user=user,
            task=task,
            schema=schema,
            mode=mode,
            sections=report_sections(report.text, prefill.evidence, marked),
            groups=groups,
            ids={c.path: c.dom_id for g in groups for c in g.controls}
            | {"skip_reason": "skip_reason"},
            prefill=prefill,
            content_sha256=report.content_sha256,
            base_revision=mine.revision if mine else 0,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            progress=store.progress(engine, schema, user.pseudonym),
            message=message,
            message_kind=message_kind,
            errors=errors or {},
            notice=notice,
            state=state,
            snippets={path: [report.text[s:e] for s, e in spans] for path, spans in marked.items()},
            answers=pairs,
            skip_reasons=SKIP_REASONS,
        )

    def refused(request: Request, user: store.Annotator, task: store.Task, message: str, status: int = 409) -> HTMLResponse:  # fmt: skip
        return render(request, "refused.html", status, user=user, task=task, message=message)

    # -- middleware and errors ---------------------------------------------------------------------
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
        https_only=secure_cookie,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(_LoginRequired)
    async def _to_login(request: Request, _: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        return render(request, "error.html", exc.status_code, message=str(exc.detail))

    # -- sign in and out -------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", next=_safe_next(next))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await checked_form(request)
        username = str(form.get("username") or "").strip()
        keys = (f"user:{username.casefold()}", f"addr:{request.client.host if request.client else '-'}")  # fmt: skip
        wait = throttle.retry_after(*keys)
        if wait:
            log.warning("sign-in refused: too many failed attempts (locked for %d s)", wait)
            page = render(request, "login.html", 429, next=_safe_next(str(form.get("next") or "/")),
                          message=f"Too many failed sign-ins. Try again in {wait // 60 + 1} minutes.")  # fmt: skip
            page.headers["retry-after"] = str(wait)
            return page
        account = store.get_annotator(engine, username=username) if username else None
        ok = auth.verify_password(account.password_hash if account else None, str(form.get("password") or ""))  # fmt: skip
        if not ok or account is None or not account.active:
            throttle.failed(*keys)
            log.info("failed sign-in")
            return render(request, "login.html", 401, next=_safe_next(str(form.get("next") or "/")),
                          message="Unknown user or wrong password.")  # fmt: skip
        throttle.succeeded(keys[0])
        request.session.clear()
        request.session["user"] = account.pseudonym
        request.session["csrf"] = auth.new_token()
        log.info("annotator %s signed in", account.pseudonym)
        return RedirectResponse(_safe_next(str(form.get("next") or "/")), status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- pages -----------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        user = user_of(request)
        rows = [(s, store.progress(engine, s, user.pseudonym)) for s in schemas.values()]
        stored = store.schema_versions(engine)
        unserved = {sid: n for sid, n in stored.items() if sid not in schemas}
        return render(request, "home.html", user=user, rows=rows, unserved=unserved)

    @app.get("/next")
    def next_page(request: Request, schema: str) -> Response:
        user = user_of(request)
        spec = schemas.get(schema)
        if spec is None:
            raise HTTPException(404, f"this server does not annotate schema {schema!r}")
        task = store.next_task(engine, spec, user.pseudonym)
        if task is None:
            return render(request, "done.html", user=user, schema=spec,
                          progress=store.progress(engine, spec, user.pseudonym))  # fmt: skip
        return RedirectResponse(f"/tasks/{task.task_id}", status_code=303)

    def open_page(request: Request, user: store.Annotator, task_id: int, mode: str) -> HTMLResponse:
        task = store.get_task(engine, task_id)
        if task is None:
            raise HTTPException(404, f"there is no task {task_id}")
        schema, problem = schema_for(task)
        if schema is None:
            return refused(request, user, task, problem or "")
        return task_page(request, user, task, schema, mode=mode)

    @app.get("/tasks/{task_id}", response_class=HTMLResponse)
    def show_task(request: Request, task_id: int) -> HTMLResponse:
        return open_page(request, user_of(request), task_id, "annotate")

    @app.post("/tasks/{task_id}")
    async def save_task(request: Request, task_id: int) -> Response:
        user = user_of(request)
        form = await checked_form(request)
        return await _save(request, user, task_id, form, mode="annotate")

    @app.get("/adjudicate", response_class=HTMLResponse)
    def adjudication_list(request: Request) -> HTMLResponse:
        user = _adjudicator(user_of(request))
        reports = [compute_agreement(s, store.task_answers(engine, s)) for s in schemas.values()]
        flagged = {s.id: [a for a in store.task_answers(engine, s) if a.flagged] for s in schemas.values()}  # fmt: skip
        return render(request, "adjudicate.html", user=user, reports=reports, flagged=flagged)

    @app.get("/adjudicate/{task_id}", response_class=HTMLResponse)
    def adjudication_page(request: Request, task_id: int) -> HTMLResponse:
        return open_page(request, _adjudicator(user_of(request)), task_id, "adjudicate")

    @app.post("/adjudicate/{task_id}")
    async def adjudicate(request: Request, task_id: int) -> Response:
        user = _adjudicator(user_of(request))
        form = await checked_form(request)
        return await _save(request, user, task_id, form, mode="adjudicate")

    @app.get("/guidelines", response_class=HTMLResponse)
    def guidelines(request: Request) -> HTMLResponse:
        user = user_of(request)
        return render(request, "guidelines.html", user=user, guidelines=guidelines_html,
                      schemas=list(schemas.values()))  # fmt: skip

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # -- saving ----------------------------------------------------------------------------------
    async def _save(request: Request, user: store.Annotator, task_id: int, form: Any, mode: str) -> Response:  # fmt: skip
        task = store.get_task(engine, task_id)
        if task is None:
            raise HTTPException(404, f"there is no task {task_id}")
        schema, problem = schema_for(task)
        if schema is None:
            return refused(request, user, task, problem or "")
        page_schema = str(form.get("schema_id") or "")
        if page_schema != schema.id:
            return refused(request, user, task, (
                f"This page was made for {page_schema or 'an unknown schema'}, but task "
                f"{task.task_id} is annotated under {schema.id} now. Nothing was saved; reload "
                "the page."))  # fmt: skip
        action = str(form.get("action") or "draft")
        if mode == "adjudicate":
            action = "adjudicated"
        elif action not in ("draft", "submit", "skip"):
            raise HTTPException(400, f"unknown action {action!r}")
        report = store.task_report(engine, task.task_id)
        if report is None:
            raise HTTPException(404, f"the report of task {task.task_id} is gone from raw.reports")
        raw = raw_values(schema, form)
        labels, errors = parse_labels(schema, raw)
        state = {
            "flagged": form.get("flagged") == "on",
            "flag_note": str(form.get("flag_note") or "").strip()[:2000],
            "skip_reason": str(form.get("skip_reason") or "").strip()[:500],
        }
        page_hash = str(form.get("content_sha256") or "")
        stale = page_hash != report.content_sha256
        try:
            evidence = parse_evidence(schema, str(form.get("evidence") or ""), 10**9 if stale else len(report.text))  # fmt: skip
        except ValueError as exc:
            evidence, errors = {}, {**errors, "": str(exc)}
        state["evidence"] = {k: [list(s) for s in v] for k, v in evidence.items()}
        if action == "skip":
            if not state["skip_reason"]:
                errors = {"skip_reason": "say why you skip this task"}
            else:
                errors = {}  # a skip keeps whatever labels parse, and needs none
        if errors:
            return task_page(request, user, task, schema, mode=mode, status=422, raw=raw, errors=errors,
                             message=_error_summary(errors), form_state=state)  # fmt: skip
        status = {"submit": "submitted", "skip": "skipped"}.get(action, action)
        save = store.LabelSave(
            task_id=task.task_id,
            annotator=user.pseudonym,
            status=status,  # type: ignore[arg-type]
            labels=labels,
            evidence=evidence,
            prefill_source=str(form.get("prefill_source") or "none")[:200],
            prefill_version=str(form.get("prefill_version") or "")[:200],
            content_sha256=page_hash or report.content_sha256,
            skip_reason=state["skip_reason"] or None,
            flagged=state["flagged"],
            flag_note=state["flag_note"] or None,
            started_at=_started(form),
            seconds_spent=_seconds(form),
        )
        try:
            outcome = store.save_label(engine, schema, save, _int(form.get("base_revision")))
        except store.ConflictError as exc:
            return task_page(request, user, task, schema, mode=mode, status=409, raw=raw,
                             message=str(exc), form_state=state)  # fmt: skip
        except (store.SchemaVersionError, LabelValidationError) as exc:
            return refused(request, user, task, str(exc))
        if outcome.stale:
            return task_page(request, user, task, schema, mode=mode, status=409, raw=raw, form_state=state, message=(
                "The report text changed after this page was opened, so nothing was submitted. "
                f"Your answers were kept as a draft (revision {outcome.record.revision}); check "
                "them against the text shown now and save again."))  # fmt: skip
        log.info("task %s: %s by %s (revision %s)", task.task_id, status, user.pseudonym, outcome.record.revision)  # fmt: skip
        if action == "draft":
            request.session["flash"] = f"Draft of task {task.task_id} saved."
            return RedirectResponse(f"/tasks/{task.task_id}", status_code=303)
        if mode == "adjudicate":
            request.session["flash"] = f"Task {task.task_id} adjudicated."
            return RedirectResponse("/adjudicate", status_code=303)
        request.session["flash"] = f"Task {task.task_id} {'skipped' if action == 'skip' else 'submitted'}."  # fmt: skip
        return RedirectResponse(f"/next?schema={quote(schema.id, safe='@')}", status_code=303)

    return app


def _adjudicator(user: store.Annotator) -> store.Annotator:
    if not user.adjudicator:
        raise HTTPException(403, "only adjudicators can open this page (rrief annotate add-user --adjudicator)")  # fmt: skip
    return user


def _safe_next(target: str) -> str:
    """Only paths on this site (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1  # never a real revision: the save is refused as a conflict


def _started(form: Any) -> datetime:
    try:
        started = datetime.fromisoformat(str(form.get("started_at") or ""))
    except ValueError:
        return datetime.now(UTC)
    return started if started.tzinfo else started.replace(tzinfo=UTC)


def _seconds(form: Any) -> float | None:
    """Active seconds the script counted; without JavaScript, the time since the page opened."""
    try:
        counted = float(str(form.get("seconds") or ""))
    except ValueError:
        counted = None
    elapsed = (datetime.now(UTC) - _started(form)).total_seconds()
    if counted is None or counted < 0:
        return max(0.0, elapsed)
    return min(counted, max(0.0, elapsed)) if elapsed > 0 else counted


def _error_summary(errors: dict[str, str]) -> str:
    n = len(errors)
    return f"Nothing was saved: {n} field{'s' if n != 1 else ''} need{'s' if n == 1 else ''} attention."
