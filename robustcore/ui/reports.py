"""Streamlit pieces of the Reports section: the session's report draft, the actions under
every page's result ("Add to report", "Compare with…"), drawing a run's report blocks,
and opening a stored run back in its own page."""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from ..errors import RobustcoreError
from ..reports.blocks import Block, Chart, Checks, Metrics, RunSection, Table, Text
from ..runs import RunRecord, get_runner
from . import jobs
from .sanity import show_checks

HISTORY_PAGE = "pages/run_history.py"
COMPARE_PAGE = "pages/compare.py"
REPORT_PAGE = "pages/report.py"

PAGE_OF: dict[str, tuple[str, str]] = {
    "train": ("pages/home.py", ""),
    "scorecard": ("pages/home.py", "home.scorecard"),
    "threat_models": ("pages/threat_models.py", "tm.run"),
    "whitebox": ("pages/whitebox.py", "wb.a"),
    "blackbox": ("pages/blackbox.py", "bb.attacks"),
    "transfer": ("pages/blackbox.py", "bb.transfer"),
    "backdoors": ("pages/backdoors.py", "badnets"),
    "hidden_trigger": ("pages/backdoors.py", "hidden"),
    "label_flipping": ("pages/label_flipping.py", "label_flip"),
    "poisoning_sanitization": ("pages/poisoning_sanitization.py", "sanitize"),
    "membership_inference": ("pages/membership_inference.py", "membership"),
    "overfitting_sweep": ("pages/membership_inference.py", "membership_sweep"),
    "model_inversion": ("pages/model_inversion.py", "inversion"),
    "model_extraction": ("pages/model_extraction.py", "extraction"),
    "postprocessing": ("pages/postprocessing.py", "postprocess"),
    "query_limitation": ("pages/query_limitation.py", "ql.run"),
    "adversarial_training": ("pages/adversarial_training.py", "adv_training"),
    "defensive_distillation": ("pages/defensive_distillation.py", "distillation"),
    "adversarial_detector": ("pages/adversarial_detector.py", "detector"),
    "input_preprocessing": ("pages/input_preprocessing.py", "preprocessing"),
    "certified_robustness": ("pages/certified_robustness.py", "certified"),
}
"""Each experiment's page and the slot its result is shown in (Home's model run has none:
opening it makes its model the current one)."""

REPORT = "rc_report_id"
_COMPARE = "rc_compare_keys"
OPENED = "rc_opened_note"
"""A one-time note the opened page shows above the run."""


# -- the report draft ---------------------------------------------------------------------


def draft_id() -> str:
    """The id of the session's report draft (a new one is made on first use)."""
    rid = st.session_state.get(REPORT)
    if rid is None:
        rid = uuid.uuid4().hex[:12]
        st.session_state[REPORT] = rid
    return rid


def use_draft(report_id: str) -> None:
    st.session_state[REPORT] = report_id


def draft() -> dict[str, Any]:
    """The session's draft: ``id``, ``title``, ``summary``, ``keys`` (nothing stored yet:
    an empty one)."""
    rid = draft_id()
    got = get_runner().store.get_report(rid)
    if got is None:
        return {"id": rid, "title": "Robustness evaluation", "summary": "", "keys": []}
    return got


def save_draft(title: str, summary: str, keys: list[str]) -> None:
    get_runner().store.save_report(draft_id(), title, summary, list(dict.fromkeys(keys)))


def add_to_report(keys: list[str]) -> int:
    """Append runs to the draft (each once); returns how many were new."""
    d = draft()
    new = [k for k in keys if k not in d["keys"]]
    if new:
        save_draft(d["title"], d["summary"], d["keys"] + new)
    return len(new)


def compare_keys() -> list[str]:
    return list(st.session_state.get(_COMPARE, []))


def set_compare(keys: list[str]) -> None:
    st.session_state[_COMPARE] = list(dict.fromkeys(keys))


# -- the actions under a page's result -----------------------------------------------------


def result_actions(record: RunRecord, slot: str) -> None:
    """ "Add to report" and "Compare with…" for the run a page just showed."""
    in_report = record.key in draft()["keys"]
    left, right, _ = st.columns([1, 1, 3])
    if left.button(
        "In the report" if in_report else "Add to report",
        key=f"rc_add.{slot}",
        icon=":material/check:" if in_report else ":material/note_add:",
        disabled=in_report,
        help="Adds this run to the session's report draft (page **Report**): its charts, "
        "numbers and settings, ready to export as HTML, PDF or ZIP.",
        width="stretch",
    ):
        add_to_report([record.key])
        st.toast(f"Added to the report ({len(draft()['keys'])} runs).")
        st.rerun()
    if right.button(
        "Compare with…",
        key=f"rc_cmp.{slot}",
        icon=":material/compare_arrows:",
        help="Opens **Compare** with this run chosen; pick up to five others there.",
        width="stretch",
    ):
        set_compare([record.key])
        st.switch_page(COMPARE_PAGE)


# -- drawing a run's blocks ----------------------------------------------------------------


def show_blocks(blocks: list[Block], key: str, *, container: Any = None) -> None:
    """Draw report blocks with Streamlit (``key`` keeps their widget keys unique)."""
    box = container if container is not None else st.container()
    with box:
        for i, block in enumerate(blocks):
            if isinstance(block, Metrics):
                cols = st.columns(max(1, len(block.items)))
                for col, m in zip(cols, block.items, strict=False):
                    col.metric(m.label, m.value, help=m.note or None)
                    if m.note:
                        col.caption(m.note)
                if block.caption:
                    st.caption(block.caption)
            elif isinstance(block, Chart):
                st.plotly_chart(block.figure, width="stretch", key=f"{key}.{block.id}.{i}")
                if block.caption:
                    st.caption(block.caption)
            elif isinstance(block, Table):
                st.markdown(f"**{block.title}**")
                st.dataframe(block.frame, hide_index=True, width="stretch")
                if block.caption:
                    st.caption(block.caption)
            elif isinstance(block, Text):
                st.markdown(block.markdown)
            elif isinstance(block, Checks):
                st.markdown("**Sanity checks** (Carlini et al. 2019)")
                show_checks(list(block.checks))


def show_section(section: RunSection, key: str) -> None:
    """A run's section: its label, then its blocks."""
    st.caption(
        f"{section.label} · run `{section.key[:12]}` · seed {section.seed} · "
        f"{section.seconds:.1f} s"
    )
    show_blocks(section.blocks, key)


# -- opening a run in its page -------------------------------------------------------------


def can_open(record: RunRecord) -> str | None:
    """Why ``record`` cannot be opened in its page here (``None``: it can)."""
    from . import state

    if record.kind not in PAGE_OF:
        return f"Runs of kind {record.kind!r} have no page."
    target = record.spec.get("target") or {}
    if target.get("source") == "upload":
        ref = state.current_ref()
        if ref is None or ref.fingerprint != target.get("fingerprint"):
            return (
                "It was computed on an uploaded model this session does not hold: load that "
                "file in the sidebar first (its charts are shown here either way)."
            )
    name = record.spec.get("dataset")
    try:
        ds = state.dataset_by_name(str(name))
    except RobustcoreError:
        return f"Its dataset {name!r} is not available here: upload it in the sidebar first."
    if record.spec.get("fingerprint") != ds.fingerprint():
        return (
            f"The data named {name!r} here is not the data the run was computed on (another "
            "upload under the same name)."
        )
    return None


def open_in_page(record: RunRecord) -> None:
    """Make the run's dataset and model the session's, hand its page the stored run and
    switch to that page (the caller checked :func:`can_open`)."""
    from .sidebar import switch_to_zoo_model

    page, slot = PAGE_OF[record.kind]
    target = record.spec.get("target") or {}
    if target.get("source") == "zoo":
        switch_to_zoo_model(str(record.spec["dataset"]), target["arch"], target["recipe"])
    if slot:
        job = get_runner().stored(record.key)
        if job is not None:
            st.session_state[jobs.PREFIX + slot] = job
    st.session_state[OPENED] = (slot, f"Opened run `{record.key[:12]}` from the run history.")
    st.switch_page(page)


def forget_run(key: str) -> None:
    """Drop a deleted run from this session's page slots and comparison."""
    for name in list(st.session_state):
        if isinstance(name, str) and name.startswith(jobs.PREFIX):
            job = st.session_state.get(name)
            if getattr(job, "key", None) == key:
                del st.session_state[name]
    set_compare([k for k in compare_keys() if k != key])
