"""A page's run, generically: the form of an Experiment, its job, and its typed result.

Every page follows the same rhythm, and for most of it this module is all a page needs::

    ds, target = state.require_target()
    exp = experiment.form(NoiseAccuracy, ds, target, key="na")      # None until Run
    if exp is not None:
        experiment.start("na", exp, ds)
    result = experiment.show("na", NoiseAccuracy, ds, target)       # typed, or None
    if result is not None:
        st.plotly_chart(viz.something(result.curve()))

:func:`show` only returns a result computed on the current dataset and model (their
content fingerprints); for anything else it says what the shown run was computed on.
With ``default=`` it also serves the stored result of the page's default configuration to
a new session at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import streamlit as st

from ..data import Dataset
from ..errors import RobustcoreError
from ..experiments.base import Experiment, Target
from ..experiments.estimate import format_seconds
from ..runs import get_runner, spec_key
from . import jobs, reports
from .forms import param_values

E = TypeVar("E", bound=Experiment)


def build(
    cls: type[E], values: Mapping[str, Any], target: Target | None, *, container: Any = st
) -> E | None:
    """The experiment from raw form values, or ``None`` after showing what is wrong."""
    try:
        return cls.from_dict(dict(values)).on(target)
    except RobustcoreError as exc:
        container.error(str(exc))
        return None


def form(
    cls: type[E],
    dataset: Dataset,
    target: Target | None,
    *,
    key: str,
    values: Mapping[str, Any] | None = None,
    submit: str = "Run",
    only: tuple[str, ...] | None = None,
) -> E | None:
    """Draw ``cls``'s whole form (defaults that suit ``dataset``) with a Run button.

    Returns the validated experiment on ``target`` when Run was pressed, else ``None``.
    Settings that cannot run on this dataset are reported under the form.
    """
    start = {**cls.defaults(dataset), **dict(values or {})}
    with st.form(f"{key}.form"):
        raw = param_values(cls, key=key, values=start, only=only)
        pressed = st.form_submit_button(submit, type="primary")
    if not pressed:
        return None
    exp = build(cls, raw, target)
    if exp is None:
        return None
    try:
        exp.check_data(dataset)
    except RobustcoreError as exc:
        st.error(str(exc))
        return None
    return exp


def start(slot: str, exp: Experiment, dataset: Dataset, *, force: bool = False) -> bool:
    """Submit ``exp`` on ``dataset`` in ``slot`` (served from the store when run before).

    Returns False after showing the message when the experiment cannot run.
    """
    try:
        jobs.start_experiment(slot, exp, dataset, force=force)
    except RobustcoreError as exc:
        st.error(str(exc))
        return False
    return True


def estimate_note(exp: Experiment, dataset: Dataset, *, what: str = "This run") -> None:
    """A caption with how long ``exp`` should take on this machine, from measured prices
    (nothing when the experiment gives no estimate)."""
    seconds = jobs.estimated_seconds(exp, dataset)
    if seconds is None:
        return
    others, factor = jobs.busy_factor()
    text = (
        f"Time: {what.lower()}, this run should take about {format_seconds(seconds)} on "
        "this machine (its forward passes, gradients and training steps, priced by timing "
        "this model here)."
    )
    if others:
        jobs_now = "job is" if others == 1 else "jobs are"
        text += (
            f" {others} other {jobs_now} computing now, sharing the processor: expect about "
            f"{format_seconds(seconds * factor)}."
        )
    st.caption(text)


def _same_inputs(record: Any, dataset: Dataset, target: Target | None) -> bool:
    spec = record.spec
    if spec.get("fingerprint") != dataset.fingerprint():
        return False
    wanted = target.spec() if target is not None else None
    return spec.get("target") == wanted or wanted is None


def show(
    slot: str,
    cls: type[E],
    dataset: Dataset,
    target: Target | None,
    *,
    default: Experiment | None = None,
) -> Any:
    """Progress, error or the typed result of the run in ``slot`` (see the module doc).

    With nothing in ``slot`` yet (a new session, or the current model just changed), the
    stored result of ``default`` on ``target`` is served at once when there is one;
    ``default`` is the page's untouched form, ``cls.page_default``, unless given.
    """
    if jobs.current(slot) is None and target is not None:
        try:
            if default is None:
                default = cls.page_default(dataset, target)
            record = get_runner().store.get(spec_key(default.on(target).spec(dataset)))
        except RobustcoreError:
            record = None
        if record is not None and record.status == "done":
            jobs.start_experiment(slot, default.on(target), dataset)
        else:
            estimate_note(default.on(target), dataset, what="With the default settings")
    record = jobs.show(slot)
    if record is None:
        return None
    if get_runner().store.get(record.key) is None:  # deleted from the run history
        jobs.forget(slot)
        st.info("The run shown here was deleted from the run history; run it again to see it.")
        return None
    if not _same_inputs(record, dataset, target):
        on = record.spec.get("target") or {}
        what = on.get("arch") or on.get("fingerprint") or "another model"
        st.warning(
            f"The last run on this page was computed on {record.spec.get('dataset')} with "
            f"{what}, not on the current data and model; it is not shown. Press the run "
            "button to compute it for the current ones."
        )
        return None
    opened = st.session_state.get(reports.OPENED)
    if opened and opened[0] == slot:
        st.caption(st.session_state.pop(reports.OPENED)[1])
    reports.result_actions(record, slot)
    return cls.result(record)
