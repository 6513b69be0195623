"""Streamlit pieces of the Compare page: 2 to 6 stored runs, side by side."""

from __future__ import annotations

import streamlit as st

from ..experiments import EXPERIMENTS
from ..reports import compare
from ..reports.document import run_section
from ..reports.history import history
from ..runs import get_runner
from . import reports, state


def pick() -> list[str]:
    """The run picker (pre-filled by "Compare with…"); returns the chosen keys."""
    frame = history(get_runner().store)
    frame = frame[frame["status"] == "done"]
    chosen = [k for k in reports.compare_keys() if k in set(frame["key"])]
    if chosen:  # runs of the first chosen run's kind and model first
        first = frame[frame["key"] == chosen[0]].iloc[0]
        same = (frame["kind"] == first["kind"]) & (frame["model"] == first["model"])
        frame = frame.assign(_rank=(~same).astype(int)).sort_values("_rank", kind="stable")
    names = {
        k: f"{k[:8]} · {e} · {(lbl or e)[:50]} · {w}"
        for k, e, lbl, w in zip(
            frame["key"], frame["experiment"], frame["label"], frame["when"], strict=True
        )
    }
    if "cmp_runs" not in st.session_state or st.session_state.get("cmp_from") != chosen:
        st.session_state["cmp_runs"] = chosen[: compare.MAX_RUNS]
        st.session_state["cmp_from"] = chosen
    picked = st.multiselect(
        "Runs",
        list(names),
        format_func=lambda k: names.get(k, k),
        max_selections=compare.MAX_RUNS,
        key="cmp_runs",
        help=f"{compare.MIN_RUNS} to {compare.MAX_RUNS} finished runs. Runs of the same "
        "kind get their charts overlaid; runs of different kinds one table of numbers.",
    )
    return list(picked)


def _charts(sections, names) -> None:
    for cid, per in compare.chart_pairs(sections):
        fig = compare.overlay(per, names)
        if fig is not None:
            st.plotly_chart(fig, width="stretch", key=f"cmp.{cid}")
            continue
        cols = st.columns(min(len(per), 3))
        for i, (chart, name) in enumerate(zip(per, names, strict=True)):
            col = cols[i % len(cols)]
            col.markdown(f"**{name}**")
            if chart is None:
                col.caption("This run has no such chart.")
            else:
                col.plotly_chart(chart.figure, width="stretch", key=f"cmp.{cid}.{i}")


def page() -> None:
    keys = pick()
    if len(keys) < compare.MIN_RUNS:
        more = compare.MIN_RUNS - len(keys)
        st.info(
            f"Choose {more} more run{'s' * (more > 1)} above (up to {compare.MAX_RUNS} in "
            "all). **Compare with…** under any page's result starts here with that run."
        )
        return
    store = get_runner().store
    up = state.uploaded_dataset()
    datasets = {up.name: up} if up is not None else {}
    records = [store.get(k) for k in keys]
    if any(r is None for r in records):
        st.warning("A chosen run is no longer stored; choose again.")
        return
    sections = [run_section(r, datasets) for r in records]
    names = compare.run_names(sections)
    same_kind = len({s.kind for s in sections}) == 1
    if st.button("Add these runs to the report", key="cmp_add", icon=":material/note_add:"):
        n = reports.add_to_report(keys)
        st.success(f"{n} run{'s' * (n != 1)} added to the report ({len(keys) - n} already in it).")
    if not compare.same_model(sections):
        st.warning(
            "These runs were computed on different models or data: a difference between "
            "them mixes the settings below with the model's."
        )
    st.subheader("What differs")
    st.dataframe(compare.differences_table(sections), hide_index=True, width="stretch")
    if same_kind:
        cls = EXPERIMENTS.get(sections[0].kind)
        st.subheader("Metrics")
        st.caption("Each run's stored metrics; Δ columns: that run minus the first.")
        table = compare.metric_table(
            sections, [r.metrics for r in records], getattr(cls, "headline", "")
        )
        st.dataframe(compare.as_text(table), hide_index=True, width="stretch")
        st.subheader("Charts")
        st.caption(
            "One colour per run (the legend names what differs); within a run, the line "
            "style tells its curves apart. Charts that cannot be overlaid are side by side."
        )
        _charts(sections, names)
    else:
        st.subheader("Headline numbers")
        st.caption("Runs of different kinds: each run's headline numbers as its page shows them.")
        st.dataframe(compare.headline_table(sections), hide_index=True, width="stretch")
