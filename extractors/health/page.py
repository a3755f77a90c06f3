"""The RRIEF health page: one self-contained HTML document with inline SVG charts.

No scripts and no external resources (a Content-Security-Policy forbids any fetch), so it works
in an air-gapped hospital network and inside the Airflow UI's iframe.
"""

from __future__ import annotations

from html import escape

from extractors.health.dashboard import Dashboard, PrevalenceSeries
from extractors.health.svg import FLAG_COLOR, Series, line_chart, percent, plain, stacked_bar_chart

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
RATE_CHECKS = ("drift", "invalid_output_rate")  # observed/expected are shares, shown as %
STYLE = """
body { font-family: sans-serif; margin: 16px 24px; color: #222; background: #fafafa; }
h1 { margin: 0 0 4px 0; } h2 { margin-top: 28px; border-bottom: 1px solid #ccc; }
.meta { color: #555; font-size: 13px; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.flag { color: #D00000; font-weight: bold; }
table { border-collapse: collapse; font-size: 13px; background: white; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eee; }
"""


def _labels(d: Dashboard) -> list[str]:
    return [day.strftime("%m-%d") for day in d.days]


def _volumes(d: Dashboard) -> str:
    labels = _labels(d)
    bars = stacked_bar_chart(
        [
            Series(name="loaded", values=[float(p.n_loaded) for p in d.pipeline]),
            Series(name="quarantined", values=[float(p.n_quarantined) for p in d.pipeline]),
            Series(name="errored", values=[float(p.n_errored) for p in d.pipeline]),
        ],
        labels,
        title="Reports extracted per day",
    )
    per_schema = [
        Series(name=name, values=[float(n) for n in counts]) for name, counts in d.schemas.items()
    ]
    fetched = Series(
        name="fetched from RIS",
        values=[float(p.n_fetched) if p.n_fetched is not None else None for p in d.pipeline],
        color="#777777",
        dashed=True,
    )
    lines = line_chart([*per_schema, fetched], labels, title="Reports with valid labels, by schema")
    return f"<div class='grid'>{bars}{lines}</div>"


def _rates(d: Dashboard) -> str:
    limit = d.thresholds.alert_invalid_rate
    series = [
        Series(name="quarantine rate", values=[p.quarantine_rate for p in d.pipeline]),
        Series(name="invalid-output rate", values=[p.invalid_rate for p in d.pipeline]),
        Series(
            name=f"alert threshold {percent(limit)}",
            values=[limit] * len(d.days),
            color=FLAG_COLOR,
            dashed=True,
        ),
    ]
    top = max([v for s in series for v in s.values if v is not None] + [limit * 1.5])
    flags = [
        (1, i, f"{p.day}: invalid-output rate {percent(p.invalid_rate)}")
        for i, p in enumerate(d.pipeline)
        if p.invalid_rate is not None and p.invalid_rate > limit
    ]
    return line_chart(
        series,
        _labels(d),
        title="Quarantine and invalid-output rates",
        y_format=percent,
        y_max=top,
        flags=flags,
    )


def _latency(d: Dashboard) -> str:
    return line_chart(
        [
            Series(name="p50 (ms)", values=[p.latency_p50_ms for p in d.pipeline]),
            Series(name="p95 (ms, worst batch)", values=[p.latency_p95_ms for p in d.pipeline]),
        ],
        _labels(d),
        title="Extraction latency per report",
        y_format=plain,
    )


def _prevalence_chart(d: Dashboard, p: PrevalenceSeries) -> str:
    values = list(p.shares)
    index = {day: i for i, day in enumerate(d.days)}
    flags = [
        (
            values.index(f.value),
            index[f.day],
            f"{f.day} {f.value}: {percent(f.share_today)} vs {percent(f.share_baseline)} "
            f"baseline (q={f.q_value:.2g})",
        )
        for f in p.flags
        if f.value in p.shares and f.day in index
    ]
    title = f"{p.path}" + (" — drift" if flags else "")
    return line_chart(
        [Series(name=v, values=s) for v, s in p.shares.items()],
        _labels(d),
        title=title,
        width=330,
        height=190,
        y_format=percent,
        y_max=1.0,
        flags=flags,
    )


def _prevalence(d: Dashboard) -> str:
    if not d.prevalence:
        return "<p>No validated extractions in this window.</p>"
    parts: list[str] = []
    for name in sorted({p.schema_name for p in d.prevalence}):
        series = [p for p in d.prevalence if p.schema_name == name]
        n_flagged = sum(1 for p in series if p.flags)
        note = f" <span class='flag'>{n_flagged} label(s) with drift</span>" if n_flagged else ""
        parts.append(f"<h3>{escape(name)}{note}</h3>")
        parts.append(
            "<div class='grid'>" + "".join(_prevalence_chart(d, p) for p in series) + "</div>"
        )
    if d.drift_skipped:
        items = "".join(
            f"<li>{escape(day)}: {escape('; '.join(reasons))}</li>"
            for day, reasons in sorted(d.drift_skipped.items())
        )
        parts.append(
            f"<details><summary>Days not drift-tested ({len(d.drift_skipped)})</summary>"
            f"<ul>{items}</ul></details>"
        )
    return "\n".join(parts)


def _validations(d: Dashboard, docs: bool) -> str:
    if not docs:
        return "<p>Validation results are not kept (RRIEF_GX_DIR is empty).</p>"
    if not d.validations:
        return f"<p>No kept validation results in the last {len(d.days)} days.</p>"
    rows = []
    for v in d.validations:
        links = "".join(
            f"<li><a href='data-docs/{escape(r.result_path, quote=True)}'>"
            f"{escape(r.schema_name)} {escape(r.table_name)}</a> · batch {escape(r.batch)}: "
            f"{r.unsuccessful} of {r.evaluated} expectations failed on {r.n_rows} rows</li>"
            for r in v.failed
        )
        more = v.n_failed - len(v.failed)
        if more > 0:
            links += f"<li>… and {more} more</li>"
        failed = f"<ul>{links}</ul>" if links else "all passed"
        rows.append(
            f"<tr><td>{escape(v.day.isoformat())}</td><td>{v.n_results}</td>"
            f"<td>{v.n_failed}</td><td>{failed}</td></tr>"
        )
    return (
        "<p class='meta'>Every batch's Great Expectations results are kept; a failed one opens "
        "as a GX Data Docs page with the failed expectations and the rows that failed them "
        "(why reports were quarantined).</p>"
        "<table><tr><th>day</th><th>suite results</th><th>failed</th>"
        "<th>failed results (GX Data Docs)</th></tr>" + "".join(rows) + "</table>"
    )


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return ""
    return percent(v) if pct else f"{v:.3g}"


def _alerts(d: Dashboard) -> str:
    if not d.alerts:
        return f"<p>No alerts in the last {len(d.days)} days.</p>"
    rows = "".join(
        "<tr>"
        f"<td>{escape(a.window_start.date().isoformat())}</td>"
        f"<td>{escape(a.check_name)}</td>"
        f"<td>{escape(a.subject)}</td>"
        f"<td>{escape(_fmt(a.observed, a.check_name in RATE_CHECKS))}</td>"
        f"<td>{escape(_fmt(a.expected if a.expected is not None else a.threshold, a.check_name in RATE_CHECKS))}</td>"
        f"<td>{escape(_fmt(a.q_value))}</td>"
        f"<td>{escape(a.message)}</td>"
        "</tr>"
        for a in d.alerts
    )
    return (
        "<table><tr><th>day</th><th>check</th><th>subject</th><th>observed</th>"
        "<th>expected / threshold</th><th>q</th><th>message</th></tr>"
        f"{rows}</table>"
    )


def _adapters(d: Dashboard) -> str:
    if not d.adapters:
        return "<p>No production adapter in the registry (ops.adapters): LLM backends use RRIEF_ADAPTER.</p>"
    rows = "".join(
        "<tr>"
        f"<td>{escape(a.schema_name)}</td>"
        f"<td>{escape(a.adapter_id)}</td>"
        f"<td>{a.on_current} / {a.total}</td>"
        f"<td>{escape(percent(a.on_current / a.total) if a.total else '')}</td>"
        "</tr>"
        for a in d.adapters
    )
    return (
        "<table><tr><th>schema</th><th>production adapter</th><th>reports on it</th>"
        f"<th>share</th></tr>{rows}</table>"
    )


def render_page(d: Dashboard, *, data_docs: bool = True) -> str:
    """The whole HTML document for ``d`` (``data_docs``: validation results are kept and their
    GX Data Docs pages are served next to the page)."""
    th = d.thresholds
    first, last = d.days[0].isoformat(), d.days[-1].isoformat()
    alert_note = f"<span class='flag'>{len(d.alerts)} alert(s)</span>" if d.alerts else "no alerts"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>RRIEF health</title>
<style>{STYLE}</style>
</head>
<body>
<h1>RRIEF health</h1>
<p class="meta">Days {escape(first)} to {escape(last)} (windows of 24 h from
{escape(d.window_start.strftime("%H:%M %Z"))}) · {alert_note} ·
drift: BH-FDR {th.drift_alpha:g}, change ≥ {100 * th.drift_min_effect:g} points,
n ≥ {th.drift_min_daily_n} per day, baseline {th.drift_baseline_days} days ·
invalid-output threshold {percent(th.alert_invalid_rate)} ·
generated {escape(d.generated_at.strftime("%Y-%m-%d %H:%M UTC"))} ·
<a href="api/dashboard?days={len(d.days)}">JSON</a></p>
<h2>Volumes</h2>
{_volumes(d)}
<h2>Quarantine and invalid-output rates</h2>
{_rates(d)}
<h2>Extraction latency</h2>
{_latency(d)}
<h2>Label prevalence and drift</h2>
<p class="meta">Daily share of reports per label value; red rings mark values whose share
moved significantly against the trailing {th.drift_baseline_days} days.</p>
{_prevalence(d)}
<h2>Alerts</h2>
{_alerts(d)}
<h2>Validation results</h2>
{_validations(d, data_docs)}
<h2>Adapters and re-extraction</h2>
<p class="meta">Reports whose current text the production adapter labelled (rrief_reextract
brings the rest over after a promotion).</p>
{_adapters(d)}
</body>
</html>
"""
