"""A report as one self-contained HTML file, as PDF and as a ZIP of CSV/JSON per run.

* **HTML** (:func:`to_html`): plotly.js is inlined once in the page head, not per figure;
  every chart is a ``<div>`` with its figure's JSON, tables are HTML tables, and nothing is
  fetched from the network: the file opens offline. An appendix holds every run's key,
  spec, seed and library versions.
* **PDF** (:func:`to_pdf`): that HTML printed by headless Chromium through Playwright,
  with every network request refused, after every chart has drawn.
* **ZIP** (:func:`to_zip`): one folder per run with ``run.json`` (key, spec, metrics,
  seed, versions) and each table as CSV, plus ``report.json`` (title, summary, order,
  the limitations).

``write_report(report, path)`` picks the format from the file's suffix.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import html
import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

from ..errors import RobustcoreError, ValidationError
from ..versions import library_versions
from .blocks import Chart, Checks, Metrics, RunSection, Table, Text
from .document import Report

MAX_TABLE_ROWS = 200
"""Rows of a table shown in the HTML and PDF (the ZIP holds every row)."""

CHROMIUM = os.environ.get("ROBUSTCORE_CHROMIUM", "/usr/bin/chromium")
"""The Chromium binary that prints PDFs (``ROBUSTCORE_CHROMIUM`` overrides it)."""

PDF_SCALE = 0.75
A4_PRINTABLE_PX = 703  # 210 mm less two 12 mm margins, at 96 px per inch
PDF_TIMEOUT_S = 60.0

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2430; margin: 0 auto; max-width: 1100px; padding: 24px; line-height: 1.45; }
h1 { margin-bottom: 4px; } h2 { margin-top: 40px; border-bottom: 2px solid #e3e6ee;
  padding-bottom: 4px; } h3 { margin-top: 24px; }
.meta, .caption { color: #5b6272; font-size: 0.9em; }
.metrics { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.metric { border: 1px solid #e3e6ee; border-radius: 8px; padding: 8px 14px; min-width: 160px;
  flex: 1 1 160px; }
.metric .label { font-size: 0.85em; color: #5b6272; }
.metric .value { font-size: 1.6em; font-weight: 600; }
.metric .note { font-size: 0.8em; color: #5b6272; }
.chart { width: 100%; margin: 12px 0; break-inside: avoid; page-break-inside: avoid; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 8px 0; }
table.data th, table.data td { border: 1px solid #e3e6ee; padding: 3px 8px; text-align: right; }
table.data th { background: #f4f6fa; }
.check { border-radius: 6px; padding: 6px 10px; margin: 4px 0; }
.check.warn { background: #fff4d6; } .check.pass { background: #e5f5e9; }
.check.skip { background: #e8f0fb; }
.limits { background: #fafbfd; border: 1px solid #e3e6ee; border-radius: 8px;
  padding: 4px 18px 12px; }
pre { background: #f4f6fa; padding: 8px; overflow-x: auto; font-size: 0.8em;
  white-space: pre-wrap; word-break: break-all; }
.toc li { margin: 2px 0; }
@media print { body { max-width: none; padding: 0; } h2 { break-before: auto; } }
"""


def _inline_md(text: str) -> str:
    """Escaped text with Markdown's **bold**, *italic* and `code` turned into HTML."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _paragraphs(text: str) -> str:
    parts = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    return "".join(f"<p>{_inline_md(p).replace(chr(10), '<br>')}</p>" for p in parts)


def _table_html(frame: Any) -> str:
    shown = frame.head(MAX_TABLE_ROWS)
    body = shown.to_html(index=False, escape=True, classes="data", border=0, na_rep="–")
    if len(frame) > MAX_TABLE_ROWS:
        body += (
            f'<p class="caption">The first {MAX_TABLE_ROWS} of {len(frame):,} rows; '
            "the ZIP export holds all of them.</p>"
        )
    return body


def _chart_html(chart: Chart, div_id: str) -> str:
    fig = pio.to_html(
        chart.figure,
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    caption = f'<p class="caption">{_inline_md(chart.caption)}</p>' if chart.caption else ""
    return f'<div class="chart">{fig}</div>{caption}'


def _section_html(section: RunSection, number: int) -> str:
    out = [
        f'<h2 id="run-{number}">{number}. {html.escape(section.title)}</h2>',
        f'<p class="meta">{html.escape(section.label)} · run <code>{section.key[:12]}</code>'
        f" · seed {section.seed} · computed in {section.seconds:.1f} s on "
        f"{_when(section.created)}</p>",
    ]
    charts = 0
    for block in section.blocks:
        if isinstance(block, Metrics):
            cards = "".join(
                '<div class="metric">'
                f'<div class="label">{_inline_md(m.label)}</div>'
                f'<div class="value">{html.escape(m.value)}</div>'
                + (f'<div class="note">{_inline_md(m.note)}</div>' if m.note else "")
                + "</div>"
                for m in block.items
            )
            out.append(f'<div class="metrics">{cards}</div>')
            if block.caption:
                out.append(f'<p class="caption">{_inline_md(block.caption)}</p>')
        elif isinstance(block, Chart):
            charts += 1
            out.append(_chart_html(block, f"chart-{number}-{charts}"))
        elif isinstance(block, Table):
            out.append(f"<h3>{html.escape(block.title)}</h3>{_table_html(block.frame)}")
            if block.caption:
                out.append(f'<p class="caption">{_inline_md(block.caption)}</p>')
        elif isinstance(block, Text):
            out.append(_paragraphs(block.markdown))
        elif isinstance(block, Checks):
            out.append("<h3>Sanity checks (Carlini et al. 2019)</h3>")
            out.extend(
                f'<div class="check {html.escape(c.status)}"><strong>{html.escape(c.name)}'
                f"</strong>: {_inline_md(c.message)}</div>"
                for c in block.checks
            )
    return "\n".join(out)


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")


def _appendix(report: Report) -> str:
    out = ['<h2 id="appendix">Appendix: how each run was made</h2>']
    for i, s in enumerate(report.sections, 1):
        record = {
            "key": s.key,
            "kind": s.kind,
            "seed": s.seed,
            "seconds": round(s.seconds, 3),
            "created": _when(s.created),
            "spec": s.spec,
            "versions": s.versions,
        }
        out.append(
            f"<h3>{i}. {html.escape(s.title)} · <code>{s.key}</code></h3>"
            f"<pre>{html.escape(json.dumps(record, indent=2, ensure_ascii=False))}</pre>"
        )
    out.append(
        '<p class="meta">Report written with '
        + html.escape(", ".join(f"{k} {v}" for k, v in library_versions().items()))
        + ".</p>"
    )
    return "\n".join(out)


def to_html(report: Report) -> str:
    """The report as one self-contained HTML page (plotly.js inlined once)."""
    toc = "".join(
        f'<li><a href="#run-{i}">{html.escape(s.title)}</a> · {html.escape(s.label)}</li>'
        for i, s in enumerate(report.sections, 1)
    )
    limits = "".join(
        f"<h3>{html.escape(heading)}</h3><ul>"
        + "".join(f"<li>{_inline_md(p)}</li>" for p in points)
        + "</ul>"
        for heading, points in report.limitations
    )
    missing = (
        '<p class="caption">Not in the result store any more (deleted), so left out: '
        + ", ".join(f"<code>{html.escape(k[:12])}</code>" for k in report.missing)
        + ".</p>"
        if report.missing
        else ""
    )
    body = [
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="meta">Adversarial Robustness Workbench · {_when(report.created)} · '
        f"{len(report.sections)} run{'s' * (len(report.sections) != 1)}</p>",
        _paragraphs(report.summary) if report.summary.strip() else "",
        f'<ol class="toc">{toc}<li><a href="#limits">What this evaluation does not show</a>'
        '</li><li><a href="#appendix">Appendix</a></li></ol>',
        missing,
        *(_section_html(s, i) for i, s in enumerate(report.sections, 1)),
        '<h2 id="limits">What this evaluation does not show</h2>',
        f'<div class="limits">{limits}</div>',
        _appendix(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(report.title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _print_pdf(page_html: str, charts: int) -> bytes:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            try:
                width = int(A4_PRINTABLE_PX / PDF_SCALE)
                page = browser.new_page(viewport={"width": width, "height": 1200})
                page.route("**/*", lambda route: route.abort())  # nothing from the network
                page.set_content(page_html, wait_until="load", timeout=PDF_TIMEOUT_S * 1000)
                page.wait_for_function(
                    "n => { const d = document.querySelectorAll('.js-plotly-plot');"
                    " return d.length === n && [...d].every(x => x.querySelector('.main-svg')); }",
                    arg=charts,
                    timeout=PDF_TIMEOUT_S * 1000,
                )
                page.emulate_media(media="print")
                return page.pdf(
                    format="A4",
                    print_background=True,
                    scale=PDF_SCALE,
                    margin={"top": "12mm", "bottom": "12mm", "left": "12mm", "right": "12mm"},
                )
            finally:
                browser.close()
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RobustcoreError(
            f"Chromium could not print the PDF ({first[:200]}). The HTML export works "
            "without it; print that file from a browser instead."
        ) from exc


def to_pdf(report: Report) -> bytes:
    """The report's HTML printed to PDF by headless Chromium (A4, every chart drawn).

    Raises RobustcoreError when Chromium or Playwright is missing or fails."""
    if not Path(CHROMIUM).exists():
        raise RobustcoreError(
            f"PDF export needs Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
            "or set ROBUSTCORE_CHROMIUM). The HTML export works without it."
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        raise RobustcoreError(
            "PDF export needs the playwright package (pip install -r requirements.txt). "
            "The HTML export works without it."
        ) from exc
    page_html = to_html(report)
    charts = sum(len(s.charts) for s in report.sections)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _print_pdf(page_html, charts)
    # Playwright's sync API refuses to run inside an event loop: print from a thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_print_pdf, page_html, charts).result()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "run"


def to_zip(report: Report) -> bytes:
    """One folder per run (``run.json`` and every table as CSV) and ``report.json``."""
    from ..runs import get_runner

    store = get_runner().store
    buffer = io.BytesIO()
    manifest: dict[str, Any] = {
        "title": report.title,
        "summary": report.summary,
        "created": _when(report.created),
        "runs": [],
        "missing": report.missing,
        "limitations": [{"heading": h, "points": p} for h, p in report.limitations],
        "versions": library_versions(),
    }
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, s in enumerate(report.sections, 1):
            folder = f"{i:02d}-{_slug(s.kind)}-{s.key[:8]}"
            record = store.get(s.key)
            metrics = record.metrics if record is not None else {}
            run = {
                "key": s.key,
                "kind": s.kind,
                "title": s.title,
                "label": s.label,
                "spec": s.spec,
                "metrics": metrics,
                "seed": s.seed,
                "seconds": s.seconds,
                "versions": s.versions,
                "checks": [c.__dict__ for c in s.checks],
            }
            zf.writestr(f"{folder}/run.json", json.dumps(run, indent=2, default=str))
            names = record.table_names if record is not None else []
            for name in names:
                frame = record.table(name)
                zf.writestr(f"{folder}/{_slug(name)}.csv", frame.to_csv(index=False))
            manifest["runs"].append({"folder": folder, "key": s.key, "kind": s.kind})
        zf.writestr("report.json", json.dumps(manifest, indent=2, default=str))
    return buffer.getvalue()


FORMATS = {".html": "html", ".htm": "html", ".pdf": "pdf", ".zip": "zip"}


def render(report: Report, fmt: str) -> bytes:
    """The report's bytes in ``fmt`` (``html``, ``pdf`` or ``zip``)."""
    if fmt == "html":
        return to_html(report).encode("utf-8")
    if fmt == "pdf":
        return to_pdf(report)
    if fmt == "zip":
        return to_zip(report)
    raise ValidationError(f"Unknown report format {fmt!r}; choose html, pdf or zip.")


def write_report(report: Report, path: str | Path) -> Path:
    """Write the report to ``path``; its suffix (.html, .pdf, .zip) chooses the format."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationError(
            f"Cannot tell the format of {path.name!r}: end the file name in .html, .pdf or .zip."
        )
    data = render(report, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
