"""Streamlit pieces of the "White-box attacks" page: the plan form (with its what-if) and
the results (curves, C&W budget chart, gallery, norms, sanity checks, downloads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from ..attacks.evasion import PGD, CarliniWagnerL2
from ..data import Dataset
from ..errors import RobustcoreError
from ..models import TrainRecipe, compatible_architectures, train_entry
from ..runs import RunRecord
from ..runs.whitebox_job import DEFAULT_EPS, WORST_CASE, WhiteBoxPlan, whitebox_job, whitebox_spec
from ..viz import accuracy_vs_eps
from ..viz.evasion import adversarial_gallery, norm_histogram, success_vs_budget
from . import jobs
from .downloads import download_json, download_table
from .forms import param_form
from .state import ModelRef

TABULAR_EPS = {"linf": [0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0], "l2": [0.0, 0.5, 1.0, 2.0, 3.0, 4.0]}
ATTACK_LABELS = {"fgsm": "FGSM", "pgd": "PGD", "cw": "Carlini–Wagner L2"}
SAME_MODEL = "the same model"
SLOTS = ("wb.a", "wb.b")


@dataclass
class Request:
    """One configuration to run: the plan, and which model (the session's or another)."""

    plan: WhiteBoxPlan
    arch: str | None = None  # None: the session's model; else a zoo architecture
    label: str = ""


def parse_eps(text: str) -> list[float]:
    """``"0, 0.1, 0.2"`` → ``[0.0, 0.1, 0.2]``; raises ValueError with a readable message."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ValueError(
            f"Could not read the ε grid {text!r}: give numbers separated by commas, "
            "e.g. 0, 0.05, 0.1, 0.2."
        ) from None


def _default_grid(ds: Dataset, norm: str) -> str:
    grid = DEFAULT_EPS[norm] if ds.modality == "image" else TABULAR_EPS[norm]
    return ", ".join(f"{e:g}" for e in grid)


def plan_form(ds: Dataset, ref: ModelRef) -> tuple[Request, Request | None] | None:
    """Draw the controls; return the requests when the user pressed Run, else ``None``."""
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
    with st.form("wb_form"):
        c1, c2 = st.columns([2, 1])
        chosen = c1.multiselect(
            "Attacks",
            list(ATTACK_LABELS),
            default=list(ATTACK_LABELS),
            format_func=ATTACK_LABELS.get,
            key="wb_attacks",
            help="FGSM and PGD are swept over the ε grid; C&W finds each input's smallest "
            "successful L2 change, so it has no ε.",
        )
        eps_text = c1.text_input(
            "ε grid",
            value=_default_grid(ds, norm),
            key=f"wb_eps_{norm}",
            help="Budgets to sweep, separated by commas. Images live in [0, 1]: an L∞ ε of "
            "0.1 lets every pixel move by a tenth of its range.",
        )
        n = c2.slider("Test images", 10, min(2000, ds.n_test), min(500, ds.n_test), 10, key="wb_n")
        n_cw = c2.slider(
            "C&W test images", 10, min(500, ds.n_test), min(100, ds.n_test), 10, key="wb_ncw"
        )
        t1, t2, t3 = st.columns(3)
        targeted = t1.checkbox("Targeted", key="wb_targeted")
        target = t2.selectbox(
            "Target class", range(ds.num_classes), format_func=lambda i: names[i], key="wb_tgt"
        )
        sanity = t3.checkbox(
            "Sanity checks",
            value=True,
            key="wb_sanity",
            help="Carlini et al. (2019): monotone in ε, unbounded attack reaches chance, PGD "
            "beats FGSM, more steps/restarts change little.",
        )
        with st.expander("PGD settings"):
            pgd = param_form(PGD, key="wb_a.pgd", exclude=("eps", "norm"))
        with st.expander("Carlini–Wagner settings"):
            cw = param_form(CarliniWagnerL2, key="wb_a.cw")
        with st.expander("What-if: a second configuration on the same chart"):
            compare = st.checkbox("Compare with a second configuration", key="wb_compare")
            archs = compatible_architectures(ds.modality, ds.input_shape)
            other = st.selectbox(
                "Model",
                [SAME_MODEL, *[a for a in archs if a != ref.arch]],
                key="wb_b_model",
                help="Another architecture is trained from the zoo with the same recipe.",
            )
            pgd_b = param_form(PGD, key="wb_b.pgd", values={"steps": 40}, exclude=("eps", "norm"))
            cw_b = param_form(CarliniWagnerL2, key="wb_b.cw")
        run = st.form_submit_button("Run attacks", type="primary")
    if not run:
        return None
    if not chosen:
        st.error("Choose at least one attack.")
        return None
    if pgd is None or cw is None or (compare and (pgd_b is None or cw_b is None)):
        return None  # the form already shows what is wrong
    try:
        eps = parse_eps(eps_text)
        common = {"norm": norm, "eps": eps, "n": n, "n_cw": n_cw, "sanity": sanity}
        common.update({"targeted": targeted, "target": target if targeted else None})
        a = _plan(chosen, norm, pgd, cw, common)
        b = _plan(chosen, norm, pgd_b, cw_b, common) if compare else None
    except (ValueError, RobustcoreError) as exc:
        st.error(str(exc))
        return None
    req_b = None
    if b is not None:
        arch_b = None if other == SAME_MODEL else other
        req_b = Request(b, arch_b, f"what-if ({other if arch_b else _describe_change(a, b)})")
    return Request(a, None, ref.label), req_b


def _plan(chosen, norm, pgd, cw, common) -> WhiteBoxPlan:
    from ..attacks.evasion import FGSM

    attacks: dict[str, Any] = {}
    if "fgsm" in chosen:
        attacks["fgsm"] = FGSM(norm=norm)
    if "pgd" in chosen:
        attacks["pgd"] = pgd.replace(norm=norm)
    if "cw" in chosen:
        attacks["cw"] = cw
    return WhiteBoxPlan(attacks=attacks, **common)


def _describe_change(a: WhiteBoxPlan, b: WhiteBoxPlan) -> str:
    diffs = []
    for name in ("pgd", "cw"):
        if name in a.attacks and name in b.attacks:
            da, db = a.attacks[name].to_dict(), b.attacks[name].to_dict()
            diffs += [f"{name} {k}={db[k]}" for k in da if da[k] != db[k]]
    return ", ".join(diffs) or "same settings"


def start(ds: Dataset, model, ref: ModelRef, requests: tuple[Request, Request | None]) -> None:
    """Submit one job per request (served from the store when run before)."""
    for slot, req in zip(SLOTS, requests, strict=True):
        if req is None:
            jobs.forget(slot)
            continue
        if req.arch is None:
            spec = whitebox_spec(ds, ref.run_key, req.plan)
            fn = whitebox_job(ds, req.plan, model=model, label=req.label)
        else:
            recipe = TrainRecipe.from_dict(ref.recipe or {})
            spec = whitebox_spec(ds, {"arch": req.arch, "recipe": recipe.to_dict()}, req.plan)

            def build(progress, arch=req.arch, recipe=recipe):
                return train_entry(arch, ds, recipe, progress=progress).model

            fn = whitebox_job(ds, req.plan, build_model=build, label=req.label)
        spec["label"] = req.label
        jobs.start(slot, spec, fn)


def _curves(records: list[tuple[str, RunRecord]]) -> dict[str, pd.DataFrame]:
    curves = {}
    for suffix, rec in records:
        sweep = rec.table("sweep")
        for attack, grp in sweep.groupby("attack", sort=False):
            if attack == WORST_CASE and suffix:
                continue
            curves[f"{attack}{suffix}"] = grp
    return curves


def results(ds: Dataset, rec: RunRecord, rec_b: RunRecord | None) -> None:
    """Everything the page shows once the run (and its what-if) finished."""
    m = rec.metrics
    records = [("", rec)] + ([(" · what-if", rec_b)] if rec_b is not None else [])
    cols = st.columns(5)
    cols[0].metric("Clean accuracy", f"{m['clean_accuracy']:.1%}", help=f"On {m['n']} inputs.")
    for i, name in enumerate(("FGSM", "PGD", WORST_CASE)):
        key = f"accuracy_at_max.{name}"
        if key in m:
            cols[i + 1].metric(
                f"{name} accuracy at ε={m['eps_max']:g}",
                f"{m[key]:.1%}",
                delta=f"{m[key] - m['clean_accuracy']:+.1%}",
                delta_color="inverse",
            )
    if "cw_success_rate" in m:
        cols[4].metric(
            "C&W success",
            f"{m['cw_success_rate']:.0%}",
            help=f"Median L2 of successful perturbations: {m['cw_median_l2']:.2f}; mean "
            f"{m['cw_mean_l2']:.2f} (on {m['cw_n']} inputs).",
        )
    sweep_curves = _curves(records)
    if sweep_curves:
        st.plotly_chart(
            accuracy_vs_eps(sweep_curves, chance=m["chance"], x_title=f"ε ({m['norm']})"),
            width="stretch",
            key="wb_curve",
        )
    cw_curves = {f"C&W{s}": r.table("cw_curve") for s, r in records if "cw_curve" in r.table_names}
    if cw_curves:
        st.plotly_chart(success_vs_budget(cw_curves), width="stretch", key="wb_cw_curve")
    tabs = st.tabs(["Gallery", "Perturbation norms", "Sanity checks", "Table & downloads"])
    with tabs[0]:
        _gallery(ds, rec)
    with tabs[1]:
        _norms(rec)
    with tabs[2]:
        for suffix, r in records:
            _sanity(r, suffix)
    with tabs[3]:
        _downloads(records)


def _gallery(ds: Dataset, rec: RunRecord) -> None:
    options = []
    if "gallery" in rec.table_names:
        gal = rec.table("gallery")
        options += [(a, e) for a, e in gal[["attack", "eps"]].drop_duplicates().itertuples(False)]
    if "cw_gallery" in rec.table_names:
        options.append(("C&W", None))
    if not options:
        st.info("No gallery for this run.")
        return
    # Default: the largest ε of the last swept attack (PGD when it ran).
    default = len(options) - 2 if options[-1][0] == "C&W" and len(options) > 1 else 0
    if options[-1][0] != "C&W":
        default = len(options) - 1
    pick = st.selectbox(
        "Show",
        options,
        index=default,
        format_func=lambda o: o[0] if o[1] is None else f"{o[0]} at ε={o[1]:g}",
        key="wb_gallery_pick",
    )
    attack, eps = pick
    if attack == "C&W":
        rows = rec.table("cw_gallery")
        clean, adv = rec.artifact("cw.clean"), rec.artifact("cw.adv")
    else:
        gal = rec.table("gallery")
        rows = gal[(gal["attack"] == attack) & (gal["eps"] == eps)]
        j = sorted(gal["eps"].unique()).index(eps)
        name = "fgsm" if attack == "FGSM" else "pgd"
        clean, adv = rec.artifact("clean"), rec.artifact(f"adv.{name}.{j}")
    st.caption(
        "Successful attacks first. Rows: original with its true label; adversarial input "
        "with the model's prediction (✗ = fooled) and confidence; perturbation x_adv − x, "
        "amplified so that it is visible (red: brighter, blue: darker)."
    )
    if ds.modality == "image":
        st.plotly_chart(adversarial_gallery(clean, adv, rows), width="stretch", key="wb_gallery")
    st.dataframe(rows, hide_index=True, width="stretch")


def _norms(rec: RunRecord) -> None:
    m = rec.metrics
    groups: dict[str, Any] = {}
    if "norms" in rec.table_names:
        norms = rec.table("norms")
        eps_values = sorted(e for e in norms["eps"].unique() if e > 0)
        if eps_values:
            eps = st.select_slider(
                "ε", eps_values, value=eps_values[len(eps_values) // 2], key="wb_norm_eps"
            )
            sel = norms[(norms["eps"] == eps) & norms["success"]]
            for attack, grp in sel.groupby("attack"):
                groups[f"{attack} ε={eps:g} (successful)"] = grp["l2"]
    if "cw" in rec.table_names:
        cw = rec.table("cw")
        groups["C&W (successful)"] = cw.loc[cw["success"], "l2"]
    if not groups:
        st.info("No perturbations to show.")
        return
    st.plotly_chart(norm_histogram(groups, norm="l2"), width="stretch", key="wb_norms")
    st.caption(
        f"L2 length of each successful perturbation. For L∞ attacks the L∞ norm is at most "
        f"ε by construction; C&W minimises L2, so its bars sit to the left. Norm: {m['norm']}."
    )


def _sanity(rec: RunRecord, suffix: str) -> None:
    if "sanity" not in rec.table_names:
        st.info("Sanity checks were switched off for this run.")
        return
    st.markdown(f"**Checks after Carlini et al. (2019){suffix}**")
    for row in rec.table("sanity").itertuples(index=False):
        if row.status == "warn":
            st.warning(f"**{row.check}** — {row.message}")
        elif row.status == "pass":
            st.success(f"**{row.check}** — {row.message}")
        else:
            st.info(f"**{row.check}** — {row.message}")


def _downloads(records: list[tuple[str, RunRecord]]) -> None:
    frames = []
    for _suffix, r in records:
        df = r.table("sweep").copy()
        df.insert(0, "run", r.label or r.key[:8])
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    st.dataframe(table, hide_index=True, width="stretch")
    cols = st.columns(3)
    download_table(table, "whitebox_sweep.csv", label="Sweep (CSV)", container=cols[0])
    rec = records[0][1]
    if "cw" in rec.table_names:
        download_table(rec.table("cw"), "cw_results.csv", label="C&W (CSV)", container=cols[1])
    download_json(
        [
            {"key": r.key, "spec": r.spec, "metrics": r.metrics, "versions": r.versions}
            for _, r in records
        ],
        "whitebox_runs.json",
        label="Runs (JSON)",
        container=cols[2],
    )
    st.caption(f"Run key `{rec.key}` · seed {rec.seed} · computed in {rec.seconds:.1f} s.")
