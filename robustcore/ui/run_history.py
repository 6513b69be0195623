"""Streamlit pieces of the Run history page: the filtered table of every stored run, and
one chosen run drawn with its actions (open in its page, label, delete)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..errors import RobustcoreError
from ..reports.document import run_section
from ..reports.history import filter_history, history
from ..runs import get_runner
from . import reports, state


def _option(row: pd.Series) -> str:
    label = row["label"] or row["experiment"]
    return f"{row['key'][:8]} · {row['experiment']} · {label[:60]} · {row['when']}"


def filters(frame: pd.DataFrame) -> pd.DataFrame:
    """The filter row; returns the rows that pass."""
    c1, c2, c3, c4 = st.columns(4)
    kinds = c1.multiselect(
        "Experiment",
        sorted(frame["kind"].unique()),
        format_func=dict(zip(frame["kind"], frame["experiment"], strict=True)).get,
        key="rh_kind",
    )
    models = c2.multiselect("Model", sorted(frame["model"].unique()), key="rh_model")
    datasets = c3.multiselect("Dataset", sorted(frame["dataset"].unique()), key="rh_dataset")
    statuses = c4.multiselect("Status", ["done", "failed", "cancelled"], key="rh_status")
    text = st.text_input(
        "Search", key="rh_text", placeholder="key, label, experiment, settings or error text"
    )
    return filter_history(
        frame, kinds=kinds, models=models, datasets=datasets, statuses=statuses, text=text
    )


def table(shown: pd.DataFrame, total: int) -> None:
    st.caption(f"{len(shown):,} of {total:,} stored runs, newest first.")
    st.dataframe(
        shown.drop(columns=["kind"]).assign(key=shown["key"].str[:12]),
        hide_index=True,
        width="stretch",
        column_config={
            "seconds": st.column_config.NumberColumn("duration (s)", format="%.1f"),
            "settings": st.column_config.TextColumn("settings (not default)"),
        },
        key="rh_table",
    )


def many_actions(shown: pd.DataFrame) -> None:
    """Choose several finished runs: compare them, or add them to the report."""
    done = shown[shown["status"] == "done"]
    options = done["key"].tolist()
    names = {k: _option(r) for k, r in zip(done["key"], done.to_dict("records"), strict=True)}
    picked = st.multiselect(
        "Runs to compare or report",
        options,
        format_func=lambda k: names.get(k, k),
        key="rh_many",
        help="Finished runs only. Compare takes 2 to 6.",
    )
    c1, c2, _ = st.columns([1, 1, 3])
    if c1.button("Compare", key="rh_compare", disabled=not 2 <= len(picked) <= 6):
        reports.set_compare(picked)
        st.switch_page(reports.COMPARE_PAGE)
    if c2.button("Add to report", key="rh_add", disabled=not picked):
        n = reports.add_to_report(picked)
        st.success(
            f"{n} run{'s' * (n != 1)} added to the report ({len(picked) - n} already in it)."
        )


def one_run(shown: pd.DataFrame) -> None:
    """One run: its result drawn from the store, and its actions."""
    if shown.empty:
        return
    rows = {k: r for k, r in zip(shown["key"], shown.to_dict("records"), strict=True)}
    key = st.selectbox(
        "Open a run",
        list(rows),
        format_func=lambda k: _option(pd.Series(rows[k])) if k in rows else k,
        key="rh_one",
    )
    store = get_runner().store
    record = store.get(key, any_status=True) if key else None
    if record is None:
        return
    st.subheader(rows[key]["experiment"])
    c1, c2, c3 = st.columns([2, 2, 2])
    why = reports.can_open(record) if record.status == "done" else "Only a finished run opens."
    if c1.button(
        "Open in its page",
        key="rh_open",
        icon=":material/open_in_new:",
        disabled=why is not None,
        help=why or "Makes the run's data and model the current ones and shows it in its page.",
    ):
        reports.open_in_page(record)
    if why and record.status == "done":
        c1.caption(why)
    with c2.form("rh_label_form", border=False):
        label = st.text_input("Label", value=record.label or "", key=f"rh_label.{key}")
        if st.form_submit_button("Save label"):
            try:
                store.set_label(key, label)
            except RobustcoreError as exc:
                st.error(str(exc))
            else:
                st.rerun()
    with c3:
        sure = st.checkbox(
            "Delete this run", key=f"rh_sure.{key}", help="Also takes it out of every report."
        )
        if st.button("Delete run", key="rh_delete", type="primary", disabled=not sure):
            if get_runner().get(key) is not None:
                st.error("This run is being computed right now; cancel it on its page first.")
            else:
                store.delete(key)
                reports.forget_run(key)
                st.session_state.pop("rh_one", None)
                st.toast(f"Deleted run {key[:12]}.")
                st.rerun()
    if record.status != "done":
        st.warning(f"This run {record.status}: {record.error or 'no result was stored.'}")
        return
    up = state.uploaded_dataset()
    datasets = {up.name: up} if up is not None else {}
    try:
        section = run_section(record, datasets)
    except Exception as exc:  # a stored run that cannot be drawn must not break the page
        st.error(f"This run cannot be drawn: {type(exc).__name__}: {exc}")
        return
    reports.show_section(section, key=f"rh.{key[:8]}")


def page() -> None:
    frame = history(get_runner().store)
    if frame.empty:
        st.info(
            "No runs yet. Every run made on any page (or with `python -m robustcore`) is "
            "listed here with its settings, headline number and status."
        )
        return
    shown = filters(frame)
    table(shown, len(frame))
    many_actions(shown)
    st.divider()
    one_run(shown)
