"""Streamlit pieces of the "Black-box attacks" page: the SimBA/ZOO form and results
(success against queries, query counts, gallery) and the transfer-matrix form and heat map.

Both forms are drawn from the declarations of the ``blackbox`` and ``transfer``
experiments; the results are their typed views."""

from __future__ import annotations

import streamlit as st

from ..data import Dataset
from ..defenses.postprocess import DEFENSES
from ..experiments import Target
from ..experiments.blackbox import ATTACKS, SERVICES, BlackBox, BlackBoxResult
from ..experiments.transfer import Transfer, TransferMatrixResult, default_archs
from ..models import compatible_architectures
from ..viz.blackbox import query_histogram, success_vs_queries_figure, transfer_heatmap
from ..viz.figures import adversarial_gallery
from . import experiment
from .downloads import download_json, download_table
from .forms import param_values

SLOT, TRANSFER_SLOT = "bb.attacks", "bb.transfer"
TRANSFER_ATTACKS = {"pgd": "PGD", "fgsm": "FGSM"}


def _service_title(key: str) -> str:
    return "probabilities" if key == "none" else DEFENSES[key].title


def attack_form(ds: Dataset, target: Target) -> BlackBox | None:
    """The SimBA/ZOO controls; the experiment when the user pressed Run, else ``None``."""
    info = {p.name: p for p in BlackBox.params()}
    defaults = BlackBox.defaults(ds)
    names = [str(c) for c in ds.class_names]
    with st.form("bb_form"):
        c1, c2 = st.columns([2, 1])
        # The DCT basis needs images; other data is attacked one feature at a time.
        options = list(defaults["attacks"])
        labels = dict(ATTACKS)
        if ds.modality != "image":
            labels["simba_pixel"] = "SimBA (one feature at a time)"
        chosen = c1.multiselect(
            info["attacks"].title,
            options,
            default=options,
            format_func=labels.get,
            key="bb_attacks",
            help=info["attacks"].help,
        )
        n = c2.slider(
            info["n"].title,
            10,
            min(500, ds.n_test),
            defaults["n"],
            10,
            key="bb_n",
            help=info["n"].help,
        )
        t1, t2, t3 = st.columns(3)
        targeted = t1.checkbox("Targeted", key="bb_targeted", help=info["target_class"].help)
        target_class = t2.selectbox(
            "Target class", range(ds.num_classes), format_func=lambda i: names[i], key="bb_tgt"
        )
        service = t3.selectbox(
            info["service"].title,
            SERVICES,
            format_func=_service_title,
            key="bb_service",
            help=info["service"].help,
        )
        with st.expander("SimBA settings (Guo et al. 2019)"):
            simba = param_values(
                BlackBox,
                key="bb",
                only=("eps", "simba_queries", "simba"),
                nested_in_expanders=False,
            )
        with st.expander("ZOO settings (Chen et al. 2017)"):
            zoo = param_values(
                BlackBox, key="bb", only=("zoo_queries", "zoo"), nested_in_expanders=False
            )
        with st.expander("Service settings (used by the chosen answer)"):
            svc = param_values(BlackBox, key="bb", only=SERVICES[1:], nested_in_expanders=False)
        with st.expander("Which images"):
            seed = param_values(BlackBox, key="bb", only=("seed",))
        run = st.form_submit_button("Run black-box attacks", type="primary")
    if not run:
        return None
    if not chosen:
        st.error("Choose at least one attack.")
        return None
    values = {
        "attacks": chosen,
        "n": n,
        "target_class": target_class if targeted else None,
        "service": service,
        **simba,
        **zoo,
        **svc,
        **seed,
    }
    return experiment.build(BlackBox, values, target)


def attack_results(ds: Dataset, res: BlackBoxResult) -> None:
    """Metrics, the success-against-queries chart, query counts, gallery and downloads."""
    cols = st.columns(len(res.attacks))
    for col, name in zip(cols, res.attacks, strict=True):
        m = res.attack_metrics(name)
        col.metric(
            f"{name} success",
            f"{m['success_rate']:.0%}",
            help=f"Of {res.n} correctly classified test images. Median queries of the "
            f"successful ones: {m['median_queries']:,.0f}; mean L2 {m['mean_l2']:.2f}; "
            f"{m['seconds']:.1f} s.",
        )
    st.plotly_chart(success_vs_queries_figure(res.curves()), width="stretch", key="bb_curve")
    st.caption(
        f"Each line: the fraction of the {res.n} images fooled within a query budget "
        f"(service: {res.service}). One run gives the whole curve: every image stops at "
        "its first success, so its query count is what that success cost."
    )
    tabs = st.tabs(["Query counts", "Gallery", "Table & downloads"])
    with tabs[0]:
        st.plotly_chart(query_histogram(res.successful_queries()), width="stretch", key="bb_hist")
        st.dataframe(res.summary_table(), hide_index=True, width="stretch")
    with tabs[1]:
        _gallery(ds, res)
    with tabs[2]:
        per = res.per_image()
        st.dataframe(per, hide_index=True, width="stretch")
        c = st.columns(3)
        download_table(res.curves(), "blackbox_curves.csv", label="Curves (CSV)", container=c[0])
        download_table(per, "blackbox_per_image.csv", label="Per image (CSV)", container=c[1])
        download_json(res.as_json(), "blackbox_run.json", label="Run (JSON)", container=c[2])
        st.caption(f"Run key `{res.key}` · seed {res.seed} · computed in {res.seconds:.1f} s.")


def _gallery(ds: Dataset, res: BlackBoxResult) -> None:
    name = st.selectbox("Attack", res.attacks, key="bb_gallery_pick")
    clean, adv, rows = res.gallery(name)
    st.caption(
        "Successful attacks first. Rows: original; adversarial input with the model's "
        "prediction (✗ = fooled) and confidence; the perturbation, amplified. The table "
        "gives the queries each image cost."
    )
    if ds.modality == "image" and len(rows):
        st.plotly_chart(adversarial_gallery(clean, adv, rows), width="stretch", key="bb_gallery")
    st.dataframe(rows, hide_index=True, width="stretch")


# -- transfer ------------------------------------------------------------------------------


def transfer_form(ds: Dataset, target: Target) -> Transfer | None:
    """The transfer-matrix controls; the experiment when the user pressed Run, else ``None``."""
    info = {p.name: p for p in Transfer.params()}
    defaults = Transfer.defaults(ds)
    archs = compatible_architectures(ds.modality, ds.input_shape)
    high = 1.0 if ds.modality == "image" else 5.0
    with st.form("bb_transfer_form"):
        c1, c2 = st.columns([2, 1])
        chosen = c1.multiselect(
            info["archs"].title,
            archs,
            default=list(default_archs(ds, target.arch)),
            key="bb_tr_archs",
            help=info["archs"].help,
        )
        kind = c2.radio(
            info["attack"].title,
            list(TRANSFER_ATTACKS),
            format_func=TRANSFER_ATTACKS.get,
            horizontal=True,
            key="bb_tr_kind",
        )
        eps = c2.slider(
            info["eps"].title,
            0.0,
            high,
            defaults["eps"],
            0.01,
            key="bb_tr_eps",
            help=info["eps"].help,
        )
        n = c2.slider(info["n"].title, 10, min(1000, ds.n_test), defaults["n"], 10, key="bb_tr_n")
        pgd = param_values(Transfer, key="bb.tr", only=("pgd",))
        run = st.form_submit_button("Run transfer matrix", type="primary")
    if not run:
        return None
    values = {"archs": chosen, "attack": kind, "eps": eps, "n": n, **pgd}
    return experiment.build(Transfer, values, target)


def transfer_results(res: TransferMatrixResult) -> None:
    c = st.columns(3)
    c[0].metric("White-box (diagonal), mean", f"{res.whitebox_mean:.0%}")
    c[1].metric(
        "Transfer (off-diagonal), mean",
        f"{res.transfer_mean:.0%}",
        delta=f"{res.transfer_mean - res.whitebox_mean:+.0%}",
        delta_color="off",
    )
    c[2].metric("Best transfer pair", f"{res.transfer_best:.0%}")
    matrix = res.matrix()
    st.plotly_chart(transfer_heatmap(matrix), width="stretch", key="bb_transfer")
    st.caption(
        f"{res.attack}, ε = {res.eps:g} (L∞) on {res.n} test images. Success = the target "
        "misclassifies an image it classified correctly before. The diagonal is the "
        "white-box attack on the model itself; the other cells show how far adversarial "
        "examples carry to a model the attacker never touched (Papernot et al. 2016)."
    )
    st.dataframe(matrix, hide_index=True, width="stretch")
    download_table(matrix, "transfer_matrix.csv", label="Transfer matrix (CSV)")
