"""Streamlit pieces of the "White-box attacks" page: the form (with its what-if) and the
results (curves, C&W budget chart, gallery, norms, sanity checks, downloads)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..data import Dataset
from ..experiments import Target
from ..experiments.whitebox import ATTACKS, CW, WORST_CASE, WhiteBox, WhiteBoxResult, default_eps
from ..models import compatible_architectures
from ..viz import accuracy_vs_eps
from ..viz.figures import adversarial_gallery
from ..viz.whitebox import (
    NORM_TITLES,
    gallery_default,
    norm_default,
    norm_histogram,
    success_vs_budget,
    sweep_curves,
)
from . import experiment, jobs, notes
from .downloads import download_json, download_table
from .forms import param_values
from .sanity import flagged, show_checks

SAME_MODEL = "the same model"
UNDEFENDED = "undefended"
UNDEFENDED_TITLE = "the undefended model (same recipe, standard training)"
SLOTS = ("wb.a", "wb.b")
WHAT_IF = " · what-if"


def _grid_text(grid: tuple[float, ...]) -> str:
    return ", ".join(f"{e:g}" for e in grid)


def form(ds: Dataset, target: Target) -> tuple[WhiteBox, WhiteBox | None] | None:
    """Draw the controls; return the experiment (and its what-if) when Run was pressed."""
    norm = st.radio(
        "Threat model (norm of the perturbation budget)",
        ["linf", "l2"],
        format_func=lambda n: (
            "L∞: every feature moves by at most ε"
            if n == "linf"
            else "L2: the whole change has length at most ε"
        ),
        horizontal=True,
        key="wb_norm",
    )
    names = [str(c) for c in ds.class_names]
    defaults = WhiteBox.defaults(ds)
    with st.form("wb_form"):
        c1, c2 = st.columns([2, 1])
        info = {p.name: p for p in WhiteBox.params()}
        chosen = c1.multiselect(
            info["attacks"].title,
            list(ATTACKS),
            default=list(ATTACKS),
            format_func=ATTACKS.get,
            key="wb_attacks",
            help=info["attacks"].help,
        )
        eps_text = c1.text_input(
            info["eps"].title,
            value=_grid_text(default_eps(ds, norm)),
            key=f"wb_eps_{norm}",
            help=info["eps"].help,
        )
        n = c2.slider("Test images", 10, min(2000, ds.n_test), defaults["n"], 10, key="wb_n")
        n_cw = c2.slider(
            "C&W test images", 10, min(500, ds.n_test), defaults["n_cw"], 10, key="wb_ncw"
        )
        t1, t2, t3 = st.columns(3)
        targeted = t1.checkbox("Targeted", key="wb_targeted", help=info["target_class"].help)
        target_class = t2.selectbox(
            "Target class", range(ds.num_classes), format_func=lambda i: names[i], key="wb_tgt"
        )
        sanity = t3.checkbox("Sanity checks", value=True, key="wb_sanity", help=info["sanity"].help)
        attack_settings = param_values(WhiteBox, key="wb_a", only=("pgd", "cw"))
        defended = target.defended
        with st.expander("What-if: a second configuration on the same chart", expanded=defended):
            compare = st.checkbox(
                "Compare with a second configuration",
                value=defended,
                key="wb_compare_defended" if defended else "wb_compare",
                help="For a defended model this is on by default: the same attacks on the "
                "undefended model show what the defense buys.",
            )
            archs = compatible_architectures(ds.modality, ds.input_shape)
            options = [SAME_MODEL, *[a for a in archs if a != target.arch]]
            if defended:
                options.insert(0, UNDEFENDED)
            other = st.selectbox(
                "Model",
                options,
                key="wb_b_model_defended" if defended else "wb_b_model",
                format_func=lambda o: {UNDEFENDED: UNDEFENDED_TITLE}.get(o, o),
                help="The undefended twin (same recipe, standard training), or another "
                "architecture trained from the zoo with the same recipe. Against the "
                "undefended twin the same attack settings as above are used.",
            )
            if defended:
                st.caption(
                    "The undefended model is attacked with the settings above; the ones "
                    "below apply when the what-if is this model or another architecture."
                )
            what_if = param_values(
                WhiteBox,
                key="wb_b",
                values={"pgd": {"steps": 40}},
                only=("pgd", "cw"),
                nested_in_expanders=False,
            )
        run = st.form_submit_button("Run attacks", type="primary")
    if not run:
        return None
    common = {
        "attacks": chosen,
        "norm": norm,
        "eps": eps_text,
        "n": n,
        "n_cw": n_cw,
        "target_class": target_class if targeted else None,
        "sanity": sanity,
    }
    a = experiment.build(WhiteBox, {**common, **attack_settings}, target)
    if a is None:
        return None
    b = None
    if compare:
        if other == UNDEFENDED:
            b = experiment.build(WhiteBox, {**common, **attack_settings}, target.undefended())
            if b is None:
                return None
            return a, b
        b_target = target if other == SAME_MODEL else target.with_arch(other)
        b = experiment.build(WhiteBox, {**common, **what_if}, b_target)
        if b is None:
            return None
    return a, b


def describe_change(a: WhiteBox, b: WhiteBox) -> str:
    """What the what-if changes, in a few words (its legend suffix)."""
    if a.target is not None and b.target is not None and a.target.defended:
        if b.target == a.target.undefended():
            return "undefended"
    if a.target != b.target and b.target is not None:
        return b.target.arch or "another model"
    da, db = a.to_dict(), b.to_dict()
    diffs = [
        f"{name} {k}={db[name][k]}"
        for name in ("pgd", "cw")
        if name in da and name in db
        for k in da[name]
        if da[name][k] != db[name][k]
    ]
    return ", ".join(diffs) or "same settings"


def start(ds: Dataset, runs: tuple[WhiteBox, WhiteBox | None]) -> None:
    """Submit the experiment and its what-if (each served from the store when run before)."""
    a, b = runs
    experiment.start(SLOTS[0], a, ds)
    if b is None:
        st.session_state.pop("wb_what_if", None)
        jobs.forget(SLOTS[1])
    else:
        st.session_state["wb_what_if"] = describe_change(a, b)
        experiment.start(SLOTS[1], b, ds)


def results(ds: Dataset, res: WhiteBoxResult, res_b: WhiteBoxResult | None) -> None:
    """Everything the page shows once the run (and its what-if) finished."""
    suffix = f"{WHAT_IF} ({st.session_state.get('wb_what_if', '')})" if res_b else ""
    runs = [("", res)] + ([(suffix, res_b)] if res_b is not None else [])
    cols = st.columns(5)
    cols[0].metric("Clean accuracy", f"{res.clean_accuracy:.1%}", help=f"On {res.n} inputs.")
    at_max = res.accuracy_at_max()
    for i, name in enumerate(("FGSM", "PGD", WORST_CASE)):
        if name in at_max:
            cols[i + 1].metric(
                f"{name} accuracy at ε={res.eps_max:g}",
                f"{at_max[name]:.1%}",
                **flagged(
                    res.failed_checks(name),
                    f"{at_max[name] - res.clean_accuracy:+.1%}",
                    delta_color="inverse",
                ),
            )
    cw = res.cw_summary()
    if cw:
        cols[4].metric(
            "C&W success",
            f"{cw['success_rate']:.0%}",
            delta_arrow="off",
            **flagged(
                res.failed_checks(CW),
                "",
                f"Median L2 of successful perturbations: {cw['median_l2']:.2f}; mean "
                f"{cw['mean_l2']:.2f} (on {cw['n']} inputs).",
            ),
        )
    notes.accuracy_basis(res.n, ds)
    if res_b is not None:
        at_max_b = res_b.accuracy_at_max()
        cols_b = st.columns(5)
        change = st.session_state.get("wb_what_if", "")
        cols_b[0].markdown(f"**What-if** ({change})")
        for i, name in enumerate(("FGSM", "PGD")):
            if name in at_max_b and name in at_max:
                # Short labels fit their column; the what-if's change is in the row's title.
                cols_b[i + 1].metric(
                    f"{name} at ε={res_b.eps_max:g}{WHAT_IF}",
                    f"{at_max_b[name]:.1%}",
                    **flagged(
                        res_b.failed_checks(name),
                        f"{at_max_b[name] - at_max[name]:+.1%} vs the first",
                        f"{name} accuracy at ε={res_b.eps_max:g} in the what-if ({change}).",
                        delta_color="off",
                    ),
                )
    curves = sweep_curves(runs)
    if curves:
        st.plotly_chart(
            accuracy_vs_eps(curves, chance=res.chance, x_title=f"ε ({NORM_TITLES[res.norm]})"),
            width="stretch",
            key="wb_curve",
        )
    cw_curves = {f"{CW}{s}": r.cw_curve() for s, r in runs if r.has_cw}
    if cw_curves:
        st.plotly_chart(success_vs_budget(cw_curves), width="stretch", key="wb_cw_curve")
    tabs = st.tabs(["Gallery", "Perturbation norms", "Sanity checks", "Table & downloads"])
    with tabs[0]:
        _gallery(ds, res)
    with tabs[1]:
        _norms(res)
    with tabs[2]:
        for s, r in runs:
            _sanity(r, s)
    with tabs[3]:
        _downloads(runs)


def _gallery(ds: Dataset, res: WhiteBoxResult) -> None:
    options = res.gallery_options()
    if not options:
        st.info("No gallery for this run.")
        return
    attack, eps = st.selectbox(
        "Show",
        options,
        index=gallery_default(options),
        format_func=lambda o: o[0] if o[1] is None else f"{o[0]} at ε={o[1]:g}",
        key="wb_gallery_pick",
    )
    clean, adv, rows = res.gallery(attack, eps)
    st.caption(
        "Successful attacks first. Rows: original with its true label; adversarial input "
        "with the model's prediction (✗ = fooled) and confidence; perturbation x_adv − x, "
        "amplified so that it is visible (red: brighter, blue: darker)."
    )
    if ds.modality == "image":
        st.plotly_chart(adversarial_gallery(clean, adv, rows), width="stretch", key="wb_gallery")
    st.dataframe(rows, hide_index=True, width="stretch")


def _norms(res: WhiteBoxResult) -> None:
    eps_values = res.norm_eps_values()
    eps = None
    if eps_values:
        eps = st.select_slider("ε", eps_values, value=norm_default(eps_values), key="wb_norm_eps")
    groups = res.successful_l2(eps)
    if not groups:
        st.info("No perturbations to show.")
        return
    st.plotly_chart(norm_histogram(groups, norm="l2"), width="stretch", key="wb_norms")
    st.caption(
        f"L2 length of each successful perturbation. For L∞ attacks the L∞ norm is at most "
        f"ε by construction; C&W minimises L2, so its bars sit to the left. Norm: {res.norm}."
    )


def _sanity(res: WhiteBoxResult, suffix: str) -> None:
    checks = res.sanity()
    if checks is None:
        st.info("Sanity checks were switched off for this run.")
        return
    st.markdown(f"**Checks after Carlini et al. (2019){suffix}**")
    show_checks(checks)


def _downloads(runs: list[tuple[str, WhiteBoxResult]]) -> None:
    frames = []
    for _suffix, r in runs:
        df = r.sweep().copy()
        df.insert(0, "run", r.label)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    st.dataframe(table, hide_index=True, width="stretch")
    cols = st.columns(3)
    download_table(table, "whitebox_sweep.csv", label="Sweep (CSV)", container=cols[0])
    res = runs[0][1]
    if res.has_cw:
        download_table(res.cw_table(), "cw_results.csv", label="C&W (CSV)", container=cols[1])
    download_json(
        [r.as_json() for _, r in runs], "whitebox_runs.json", label="Runs (JSON)", container=cols[2]
    )
    st.caption(f"Run key `{res.key}` · seed {res.seed} · computed in {res.seconds:.1f} s.")
