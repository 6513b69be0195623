"""Streamlit pieces of the "Adversarial training" page: the form (method, its settings,
the evaluation), and the results (cost metrics, training curves with the watchdog, both
models' accuracy against ε and C&W's success within an L2 budget, downloads and the
"Use as current model" button)."""

from __future__ import annotations

import streamlit as st

from ..data import Dataset
from ..experiments import Target
from ..experiments.adversarial_training import (
    DEFENDED,
    UNDEFENDED,
    AdversarialTraining,
    AdversarialTrainingResult,
)
from ..models import TrainRecipe
from ..models.training import ADVERSARIAL, METHOD_TITLES
from ..reports.sections.adversarial_training import eps_figure
from ..viz.adversarial_training import robust_training_curves
from ..viz.whitebox import success_vs_budget
from . import experiment, notes
from .downloads import download_json, download_table, download_zoo_weights
from .forms import param_values
from .sidebar import GENERAL_FIELDS, METHOD_NOTES, use_model

SLOT = "adv_training"
EVALUATION = ("eps", "n", "cw", "n_cw", "seed")


def form(ds: Dataset, target: Target) -> AdversarialTraining | None:
    """The controls; the experiment when Train was pressed (and its settings are valid)."""
    start = AdversarialTraining.for_target(target)
    method = st.radio(
        "Method",
        list(ADVERSARIAL),
        format_func=METHOD_TITLES.get,
        horizontal=True,
        key="at_method",
    )
    st.caption(METHOD_NOTES[method])
    defense = start.defense.to_dict()
    with st.form("at_form"):
        c1, c2 = st.columns(2)
        c1.markdown("**Defended model**")
        fields = ("epochs", *TrainRecipe.method_fields(method))
        drawn = param_values(
            TrainRecipe, key=f"at_def_{method}", values=defense, only=fields, container=c1
        )
        shared = tuple(f for f in GENERAL_FIELDS if f != "epochs")
        with c1.expander("Optimiser and data (from the current model's recipe)"):
            general = param_values(TrainRecipe, key="at_def", values=defense, only=shared)
        # Each call also returns the undrawn fields' starting values: keep only what it drew.
        chosen = {**defense, **{k: general[k] for k in shared}, **{k: drawn[k] for k in fields}}
        c2.markdown("**Evaluation** (the same attacks on both models)")
        evaluation = param_values(
            AdversarialTraining,
            key="at_eval",
            values=start.to_dict(),
            only=(*EVALUATION, "pgd"),
            container=c2,
        )
        st.caption(
            "The defaults (FGSM-RS at ε = 0.1 for 5 epochs, then PGD-40 with 2 restarts at "
            "five budgets on 100 images and C&W on 50, for both models) train for about twice "
            "as long as the current model took (FGSM-RS with its per-epoch checks), then "
            "attack both; PGD-AT and TRADES cost at most steps + 1 times a standard epoch. "
            "Below the form, the page says how long the run should take on this machine, and "
            "the progress bar counts down. A run done before is shown at once."
        )
        pressed = st.form_submit_button("Train and attack", type="primary")
    if not pressed:
        return None
    chosen |= {"method": method, "noise_std": 0.0}
    return experiment.build(AdversarialTraining, {**evaluation, "defense": chosen}, target)


def show_results(ds: Dataset, res: AdversarialTrainingResult) -> None:
    """Metrics, curves, the comparison charts, downloads and "Use as current model"."""
    d, u = DEFENDED, UNDEFENDED
    cols = st.columns(4)
    cols[0].metric(
        "Clean accuracy (defended)",
        f"{res.clean_accuracy(d):.1%}",
        delta=f"{-(res.clean_accuracy(u) - res.clean_accuracy(d)):+.1%} vs undefended",
        help=f"On {res.n} test images; the undefended model has {res.clean_accuracy(u):.1%}.",
    )
    cols[1].metric(
        f"PGD accuracy at ε={res.train_eps:g} (defended)",
        f"{res.robust_accuracy(d):.1%}",
        delta=f"{res.robust_accuracy(d) - res.robust_accuracy(u):+.1%} vs undefended",
        help=f"The undefended model keeps {res.robust_accuracy(u):.1%} under the same attack.",
    )
    if res.has_cw:
        cols[2].metric(
            "C&W median L2 (defended)",
            f"{res.cw_median_l2(d):.2f}",
            delta=f"{res.cw_median_l2(d) - res.cw_median_l2(u):+.2f} vs undefended",
            help="The median size of the smallest perturbation C&W needed: a larger one "
            f"means a more robust model. C&W success: {res.cw_success(d):.0%} (defended), "
            f"{res.cw_success(u):.0%} (undefended).",
        )
    ratio = res.train_seconds(d) / max(res.train_seconds(u), 1e-9)
    cols[3].metric(
        "Training time (defended)",
        f"{res.train_seconds(d):.0f} s",
        delta=f"{ratio:.1f}× the undefended model's",
        delta_color="off",
        help=f"Wall time of training, with the per-epoch evaluation; the undefended model "
        f"took {res.train_seconds(u):.1f} s. Both are cached in the model zoo.",
    )
    notes.accuracy_basis(res.n, ds)
    if res.watchdog:
        st.warning(f"**Watchdog** — {res.watchdog}")
    st.plotly_chart(robust_training_curves(res.history()), width="stretch", key="at_curves")
    st.plotly_chart(eps_figure(res), width="stretch", key="at_eps")
    if res.has_cw:
        st.plotly_chart(
            success_vs_budget(res.cw_curves(), title="C&W: inputs fooled within an L2 budget"),
            width="stretch",
            key="at_cw",
        )
    recipe = TrainRecipe.from_dict(res.defended_recipe)
    c1, c2 = st.columns([1, 2])
    if c1.button("Use as current model", type="primary", key="at_use"):
        use_model(ds, res.arch, recipe)
    c2.caption(
        f"Makes **{res.defended_label}** the sidebar's current model, so that every page "
        "(White-box, Black-box, Threat models, Membership inference, Model extraction, Home) "
        "attacks it. It is loaded from the model zoo at once."
    )
    with st.expander("Tables, recipe & downloads"):
        st.dataframe(res.history(), hide_index=True, width="stretch")
        st.dataframe(res.sweep(), hide_index=True, width="stretch")
        st.json({"recipe": res.defended_recipe, "method": res.method_title}, expanded=False)
        cols = st.columns(4)
        download_table(
            res.history(), "training_history.csv", label="History (CSV)", container=cols[0]
        )
        download_table(res.sweep(), "robustness_sweep.csv", label="Sweep (CSV)", container=cols[1])
        download_json(
            res.as_json(), "adversarial_training_run.json", label="Run (JSON)", container=cols[2]
        )
        download_zoo_weights(
            res.zoo_key,
            f"{res.arch}_{ds.name}_{res.method}.pt",
            label="Defended weights (.pt)",
            container=cols[3],
        )
        st.caption(f"Run key `{res.key}` · seed {res.seed} · computed in {res.seconds:.1f} s.")
