"""Streamlit pieces of the "Black-box attacks" page: the SimBA/ZOO form and results
(success against queries, query counts, gallery) and the transfer-matrix form and heat map."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..attacks.evasion import FGSM, PGD, ZOO, SimBA
from ..data import Dataset
from ..defenses.postprocess import DEFENSES
from ..errors import RobustcoreError
from ..models import TrainRecipe, compatible_architectures
from ..runs import RunRecord
from ..runs.blackbox_job import (
    BlackBoxPlan,
    TransferPlan,
    blackbox_job,
    blackbox_spec,
    default_archs,
    transfer_job,
    transfer_spec,
)
from ..viz.blackbox import query_histogram, success_vs_queries_figure, transfer_heatmap
from ..viz.evasion import adversarial_gallery
from . import jobs
from .downloads import download_run, download_table
from .forms import param_form
from .state import ModelRef

ATTACKS = {"simba_pixel": "SimBA (pixel basis)", "simba_dct": "SimBA (DCT basis)", "zoo": "ZOO"}
SERVICE = [k for k in DEFENSES if k != "label_only"]
SLOT, TRANSFER_SLOT = "bb.attacks", "bb.transfer"


def attack_form(ds: Dataset, ref: ModelRef, *, n_default: int = 50) -> BlackBoxPlan | None:
    """The SimBA/ZOO controls; the plan when the user pressed Run, else ``None``."""
    names = [str(c) for c in ds.class_names]
    with st.form("bb_form"):
        c1, c2 = st.columns([2, 1])
        # The DCT basis needs images; other data is attacked one feature at a time.
        options = [k for k in ATTACKS if ds.modality == "image" or k != "simba_dct"]
        labels = dict(ATTACKS)
        if ds.modality != "image":
            labels["simba_pixel"] = "SimBA (one feature at a time)"
        chosen = c1.multiselect(
            "Attacks",
            options,
            default=options,
            format_func=labels.get,
            key="bb_attacks",
            help="SimBA tries one random direction at a time and keeps it when the true "
            "class's probability drops; ZOO estimates the gradient from pairs of queries.",
        )
        n = c2.slider(
            "Test images", 10, min(500, ds.n_test), min(n_default, ds.n_test), 10, key="bb_n"
        )
        t1, t2, t3 = st.columns(3)
        targeted = t1.checkbox("Targeted", key="bb_targeted")
        target = t2.selectbox(
            "Target class", range(ds.num_classes), format_func=lambda i: names[i], key="bb_tgt"
        )
        service = t3.selectbox(
            "The service returns",
            SERVICE,
            format_func=lambda k: "probabilities" if k == "none" else DEFENSES[k].title,
            key="bb_service",
            help="An output defense the prediction service applies before answering. "
            "Coarser answers (rounding, top-k) can stall attacks that read small "
            "probability changes.",
        )
        with st.expander("Service settings"):
            defense = param_form(DEFENSES[service], key=f"bb.svc.{service}")
        with st.expander("SimBA settings (Guo et al. 2019)"):
            simba = param_form(SimBA, key="bb.simba", exclude=("basis",))
        with st.expander("ZOO settings (Chen et al. 2017)"):
            zoo = param_form(ZOO, key="bb.zoo")
        run = st.form_submit_button("Run black-box attacks", type="primary")
    if not run:
        return None
    if not chosen:
        st.error("Choose at least one attack.")
        return None
    if simba is None or zoo is None or defense is None:
        return None  # the form already says what is wrong
    attacks: dict[str, Any] = {}
    if "simba_pixel" in chosen:
        attacks["simba_pixel"] = simba.replace(basis="pixel")
    if "simba_dct" in chosen:
        attacks["simba_dct"] = simba.replace(basis="dct")
    if "zoo" in chosen:
        attacks["zoo"] = zoo
    try:
        return BlackBoxPlan(
            attacks=attacks,
            n=n,
            defense=service,
            defense_params=defense.to_dict(),
            targeted=targeted,
            target=target if targeted else None,
        )
    except RobustcoreError as exc:
        st.error(str(exc))
        return None


def start_attacks(ds: Dataset, model, ref: ModelRef, plan: BlackBoxPlan) -> None:
    spec = blackbox_spec(ds, ref.run_key, plan)
    jobs.start(SLOT, spec, blackbox_job(ds, plan, model=model, label=ref.label))


def attack_results(ds: Dataset, rec: RunRecord) -> None:
    """Metrics, the success-against-queries chart, query counts, gallery and downloads."""
    m = rec.metrics
    attacks = m["attacks"]
    cols = st.columns(len(attacks))
    for col, name in zip(cols, attacks, strict=True):
        med = m[f"median_queries.{name}"]
        col.metric(
            f"{name} success",
            f"{m[f'success_rate.{name}']:.0%}",
            help=f"Of {m['n']} correctly classified test images. Median queries of the "
            f"successful ones: {med:,.0f}; mean L2 {m[f'mean_l2.{name}']:.2f}; "
            f"{m[f'seconds.{name}']:.1f} s.",
        )
    st.plotly_chart(success_vs_queries_figure(rec.table("curves")), width="stretch", key="bb_curve")
    st.caption(
        f"Each line: the fraction of the {m['n']} images fooled within a query budget "
        f"(service: {m['defense']}). One run gives the whole curve: every image stops at "
        "its first success, so its query count is what that success cost."
    )
    per = rec.table("per_image")
    tabs = st.tabs(["Query counts", "Gallery", "Table & downloads"])
    with tabs[0]:
        won = per[per["success"]]
        groups = {a: won.loc[won["attack"] == a, "queries"].to_numpy() for a in attacks}
        st.plotly_chart(query_histogram(groups), width="stretch", key="bb_hist")
        summary = (
            per.groupby("attack", sort=False)
            .agg(
                success_rate=("success", "mean"),
                median_queries=("queries", "median"),
                max_queries=("queries", "max"),
                mean_l2=("l2", "mean"),
                mean_linf=("linf", "mean"),
            )
            .reset_index()
        )
        summary["seconds"] = [m[f"seconds.{a}"] for a in summary["attack"]]
        st.dataframe(summary, hide_index=True, width="stretch")
    with tabs[1]:
        _gallery(ds, rec)
    with tabs[2]:
        st.dataframe(per, hide_index=True, width="stretch")
        c = st.columns(3)
        download_table(
            rec.table("curves"), "blackbox_curves.csv", label="Curves (CSV)", container=c[0]
        )
        download_table(per, "blackbox_per_image.csv", label="Per image (CSV)", container=c[1])
        download_run(rec, "blackbox_run.json", container=c[2])
        st.caption(f"Run key `{rec.key}` · seed {rec.seed} · computed in {rec.seconds:.1f} s.")


def _gallery(ds: Dataset, rec: RunRecord) -> None:
    gal = rec.table("gallery")
    keys = rec.metrics["keys"]
    names = rec.metrics["attacks"]
    pick = st.selectbox(
        "Attack", range(len(keys)), format_func=lambda i: names[i], key="bb_gallery_pick"
    )
    rows = gal[gal["attack"] == names[pick]]
    st.caption(
        "Successful attacks first. Rows: original; adversarial input with the model's "
        "prediction (✗ = fooled) and confidence; the perturbation, amplified. Titles of the "
        "table give the queries each image cost."
    )
    if ds.modality == "image" and len(rows):
        clean = rec.artifact(f"clean.{keys[pick]}")
        adv = rec.artifact(f"adv.{keys[pick]}")
        st.plotly_chart(adversarial_gallery(clean, adv, rows), width="stretch", key="bb_gallery")
    st.dataframe(rows, hide_index=True, width="stretch")


# -- transfer ------------------------------------------------------------------------------


def _recipe(ref: ModelRef) -> TrainRecipe:
    return TrainRecipe.from_dict(ref.recipe or {}) if ref.source == "zoo" else TrainRecipe()


def transfer_form(ds: Dataset, ref: ModelRef) -> TransferPlan | None:
    """The transfer-matrix controls; the plan when the user pressed Run, else ``None``."""
    archs = compatible_architectures(ds.modality, ds.input_shape)
    high = 1.0 if ds.modality == "image" else 5.0
    with st.form("bb_transfer_form"):
        c1, c2 = st.columns([2, 1])
        chosen = c1.multiselect(
            "Architectures (each is trained with the current model's recipe)",
            archs,
            default=default_archs(ds, ref.arch),
            key="bb_tr_archs",
            help="Rows craft the attack (the surrogate), columns receive it (the target). "
            "Trained models are cached in the zoo.",
        )
        kind = c2.radio("Attack", ["PGD", "FGSM"], horizontal=True, key="bb_tr_kind")
        eps = c2.slider("ε (L∞)", 0.0, high, 0.2 if high == 1.0 else 1.0, 0.01, key="bb_tr_eps")
        n = c2.slider(
            "Test images", 10, min(1000, ds.n_test), min(200, ds.n_test), 10, key="bb_tr_n"
        )
        with st.expander("PGD settings"):
            pgd = param_form(PGD, key="bb.tr.pgd", exclude=("eps", "norm"))
        run = st.form_submit_button("Run transfer matrix", type="primary")
    if not run or pgd is None:
        return None
    try:
        attack = pgd.replace(eps=eps, norm="linf") if kind == "PGD" else FGSM(eps=eps)
        return TransferPlan(archs=list(chosen), attack=attack, n=n)
    except RobustcoreError as exc:
        st.error(str(exc))
        return None


def start_transfer(ds: Dataset, ref: ModelRef, plan: TransferPlan) -> None:
    recipe = _recipe(ref)
    jobs.start(TRANSFER_SLOT, transfer_spec(ds, recipe, plan), transfer_job(ds, recipe, plan))


def transfer_results(rec: RunRecord) -> None:
    m = rec.metrics
    matrix = rec.table("matrix")
    c = st.columns(3)
    c[0].metric("White-box (diagonal), mean", f"{m['whitebox_mean']:.0%}")
    c[1].metric(
        "Transfer (off-diagonal), mean",
        f"{m['transfer_mean']:.0%}",
        delta=f"{m['transfer_mean'] - m['whitebox_mean']:+.0%}",
        delta_color="off",
    )
    c[2].metric("Best transfer pair", f"{m['transfer_best']:.0%}")
    st.plotly_chart(transfer_heatmap(matrix), width="stretch", key="bb_transfer")
    st.caption(
        f"ε = {m['eps']:g} (L∞) on {m['n']} test images. Success = the target misclassifies "
        "an image it classified correctly before. The diagonal is the white-box attack on "
        "the model itself; the other cells show how far adversarial examples carry to a "
        "model the attacker never touched (Papernot et al. 2016)."
    )
    st.dataframe(matrix, hide_index=True, width="stretch")
    download_table(matrix, "transfer_matrix.csv", label="Transfer matrix (CSV)")
