"""Streamlit pieces of the Report page: the draft's title, summary and ordered runs, the
generated limitations, the model card, and the HTML / PDF / ZIP exports."""

from __future__ import annotations

import datetime
import re

import streamlit as st

from ..errors import RobustcoreError
from ..experiments.scorecard import Scorecard
from ..reports import export
from ..reports.document import MAX_SUMMARY, MAX_TITLE, Report, build_report
from ..reports.model_card import runs_on_model
from ..runs import get_runner, spec_key
from . import jobs, reports, state

_CARD_SLOT = "report.model_card"
_PDF = "rc_report_pdf"


def _file_stem(title: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:50] or "report"


def choose_draft() -> None:
    """Switch between the stored drafts, or start a new one."""
    store = get_runner().store
    drafts = store.list_reports()
    current = reports.draft_id()
    ids = drafts["id"].tolist()
    if current not in ids:
        ids.insert(0, current)
    titles = dict(zip(drafts["id"], drafts["title"], strict=True))
    counts = dict(zip(drafts["id"], drafts["runs"], strict=True))
    left, right = st.columns([3, 1])
    picked = left.selectbox(
        "Report",
        ids,
        index=ids.index(current),
        format_func=lambda i: f"{titles.get(i, 'New report')} ({counts.get(i, 0)} runs)",
        key="rep_pick",
    )
    if picked != current:
        reports.use_draft(picked)
        st.rerun()
    right.write("")
    if right.button("New report", key="rep_new", icon=":material/add:", width="stretch"):
        st.session_state.pop(reports.REPORT, None)
        st.session_state.pop("rep_pick", None)
        reports.draft_id()
        st.rerun()


def model_card() -> None:
    """One click: a new draft holding the current model's scorecard and every run on it
    (the page's default scorecard is computed first when the store holds no scorecard of
    the model; the newest one it holds is used otherwise)."""
    got = state.current_target()
    if got is None:
        st.caption("Choose a model in the sidebar to make its model card.")
        return
    ds, target = got
    pressed = st.button(
        "Model card of the current model",
        key="rep_card",
        icon=":material/badge:",
        help="A new report of the current model's scorecard (computed now when the store "
        "holds none) and every run made on it.",
    )
    if pressed:
        card = Scorecard.page_default(ds, target)
        store = get_runner().store
        if store.get(spec_key(card.spec(ds))) is None and not _has_scorecard(ds, target):
            jobs.start_experiment(_CARD_SLOT, card, ds)
        else:
            _make_card(ds, target)
    if jobs.current(_CARD_SLOT) is not None:
        record = jobs.show(_CARD_SLOT)
        if record is not None:
            jobs.forget(_CARD_SLOT)
            _make_card(ds, target)


def _has_scorecard(ds, target) -> bool:
    """Does the store hold a scorecard run of this model (any settings)?"""
    store = get_runner().store
    keys = runs_on_model(store, target.spec(), ds.fingerprint())
    first = store.get(keys[0]) if keys else None
    return first is not None and first.kind == Scorecard.name


def _make_card(ds, target) -> None:
    keys = runs_on_model(get_runner().store, target.spec(), ds.fingerprint())
    st.session_state.pop(reports.REPORT, None)
    st.session_state.pop("rep_pick", None)
    reports.draft_id()
    label = target.describe()
    reports.save_draft(
        f"Model card: {label}"[:MAX_TITLE],
        f"Every run made on **{label}** ({ds.name}) that the result store holds: its "
        "scorecard first, then each page's runs.",
        keys[:50],
    )
    st.rerun()


def title_and_summary(d: dict) -> None:
    with st.form("rep_text"):
        title = st.text_input("Title", value=d["title"], max_chars=MAX_TITLE, key="rep_title")
        summary = st.text_area(
            "Summary",
            value=d["summary"],
            max_chars=MAX_SUMMARY,
            height=120,
            key="rep_summary",
            placeholder="What was evaluated, for whom, and what the numbers mean (Markdown).",
        )
        if st.form_submit_button("Save title and summary"):
            reports.save_draft(title, summary, d["keys"])
            st.rerun()


def order(d: dict) -> list[str]:
    """The runs in report order, each with up, down and remove buttons."""
    store = get_runner().store
    keys = list(d["keys"])
    if not keys:
        st.info(
            "The report is empty. Press **Add to report** under any page's result, or choose "
            "runs in **Run history** or **Compare**."
        )
        return keys
    st.subheader("Sections")
    for i, key in enumerate(keys):
        record = store.get(key)
        name = record.label if record is not None and record.label else key[:12]
        c0, c1, c2, c3 = st.columns([8, 1, 1, 1])
        c0.markdown(f"{i + 1}. **{name}** · `{key[:8]}`")
        moved = None
        if c1.button("↑", key=f"rep_up.{key}", disabled=i == 0, help="Move up"):
            moved = keys[: i - 1] + [keys[i], keys[i - 1]] + keys[i + 1 :]
        if c2.button("↓", key=f"rep_down.{key}", disabled=i == len(keys) - 1, help="Move down"):
            moved = keys[:i] + [keys[i + 1], keys[i]] + keys[i + 2 :]
        if c3.button("✕", key=f"rep_rm.{key}", help="Remove from the report"):
            moved = keys[:i] + keys[i + 1 :]
        if moved is not None:
            reports.save_draft(d["title"], d["summary"], moved)
            st.session_state.pop(_PDF, None)
            st.rerun()
    return keys


def _report(d: dict) -> Report:
    up = state.uploaded_dataset()
    return build_report(
        get_runner().store,
        d["keys"],
        title=d["title"],
        summary=d["summary"],
        datasets={up.name: up} if up is not None else None,
    )


def exports(d: dict, report: Report) -> None:
    stem = _file_stem(d["title"])
    st.subheader("Export")
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "HTML (one file)",
        data=lambda: export.to_html(_report(d)).encode("utf-8"),
        file_name=f"{stem}.html",
        mime="text/html",
        key="rep_html",
        icon=":material/html:",
        help="One self-contained file: opens offline, charts interactive.",
        on_click="ignore",
    )
    c3.download_button(
        "ZIP (CSV/JSON per run)",
        data=lambda: export.to_zip(_report(d)),
        file_name=f"{stem}.zip",
        mime="application/zip",
        key="rep_zip",
        icon=":material/folder_zip:",
        on_click="ignore",
    )
    signature = (d["id"], d["title"], d["summary"], tuple(d["keys"]))
    made = st.session_state.get(_PDF)
    if made is not None and made[0] == signature:
        c2.download_button(
            "PDF",
            data=made[1],
            file_name=f"{stem}.pdf",
            mime="application/pdf",
            key="rep_pdf",
            icon=":material/picture_as_pdf:",
            on_click="ignore",
        )
        c2.caption(f"Printed {made[2]}.")
    elif c2.button("Print PDF", key="rep_print", icon=":material/print:"):
        with st.spinner("Chromium is printing the report…"):
            try:
                data = export.to_pdf(report)
            except RobustcoreError as exc:
                st.error(str(exc))
            else:
                when = datetime.datetime.now().strftime("%H:%M:%S")
                st.session_state[_PDF] = (signature, data, when)
                st.rerun()


def limitations(report: Report) -> None:
    st.subheader("What this evaluation does not show")
    st.caption("Generated from the runs; it is part of every export.")
    for heading, points in report.limitations:
        st.markdown(f"**{heading}**")
        st.markdown("\n".join(f"- {p}" for p in points))


def preview(report: Report) -> None:
    with st.expander(f"Preview the {len(report.sections)} sections"):
        for i, section in enumerate(report.sections, 1):
            st.markdown(f"#### {i}. {section.title}")
            reports.show_section(section, key=f"rep.{i}.{section.key[:8]}")


def page() -> None:
    choose_draft()
    model_card()
    d = reports.draft()
    title_and_summary(d)
    keys = order(d)
    if not keys:
        return
    try:
        report = _report(d)
    except RobustcoreError as exc:
        st.error(str(exc))
        return
    if report.missing:
        st.warning(f"{len(report.missing)} run(s) of this report are no longer stored.")
    exports(d, report)
    limitations(report)
    preview(report)
