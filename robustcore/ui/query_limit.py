"""Streamlit pieces of the "Query limitation" page: the settings form (budget, detector,
attacks, adaptive attacker, benign clients) and the results (success against budget with and
without the detector, detection delay, accounts, false alarms, downloads)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ..attacks.evasion import BLACKBOX_ATTACKS
from ..data import Dataset
from ..defenses.query_limit import ATTACK_TITLES, AdaptiveAttacker, BenignStreams, QueryLimit
from ..errors import RobustcoreError
from ..runs import RunRecord
from ..runs.query_limit_job import (
    QueryLimitPlan,
    available_attacks,
    query_limit_job,
    query_limit_spec,
)
from ..viz.query_limit import (
    accounts_figure,
    benign_distance_figure,
    budget_defense_figure,
    detection_delay_figure,
)
from . import jobs
from .downloads import download_run, download_table
from .forms import param_form
from .state import ModelRef

SLOT = "ql.run"
DEFAULT_N = 50


def plan_form(ds: Dataset) -> QueryLimitPlan | None:
    """Draw the controls; return the plan when the user pressed Run, else ``None``."""
    # the DCT basis needs images; tabular data gets SimBA (pixel) and ZOO
    keys = [k for k in available_attacks() if ds.modality == "image" or k != "simba_dct"]
    with st.form("ql_form"):
        left, right = st.columns(2, gap="large")
        with left:
            st.markdown("**The service's limits**")
            limit = param_form(QueryLimit, key="ql.limit")
        with right:
            st.markdown("**The attack**")
            chosen = st.multiselect(
                "Attacks",
                keys,
                default=keys,
                format_func=ATTACK_TITLES.get,
                key="ql_attacks",
                help="Each attack runs until success or until the query budget is spent.",
            )
            n = st.slider(
                "Images attacked",
                5,
                min(200, ds.n_test),
                min(DEFAULT_N, ds.n_test),
                5,
                key="ql_n",
                help="Correctly classified test images, one attacker (client) each.",
            )
            seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="ql_seed")
            with st.expander("Adaptive attacker"):
                adaptive = param_form(AdaptiveAttacker, key="ql.adaptive")
            with st.expander("Benign clients (false alarms)"):
                benign = param_form(BenignStreams, key="ql.benign")
            with st.expander("SimBA settings (Guo et al. 2019)"):
                simba = param_form(
                    BLACKBOX_ATTACKS["simba"], key="ql.simba", exclude=("basis", "max_queries")
                )
            zoo = None
            if "zoo" in BLACKBOX_ATTACKS:
                with st.expander("ZOO settings (Chen et al. 2017)"):
                    zoo = param_form(
                        BLACKBOX_ATTACKS["zoo"], key="ql.zoo", exclude=("max_queries",)
                    )
        run = st.form_submit_button("Run attacks against the limits", type="primary")
    if not run:
        return None
    if not chosen:
        st.error("Choose at least one attack.")
        return None
    if None in (limit, adaptive, benign, simba) or ("zoo" in chosen and zoo is None):
        return None  # the form already says what is wrong
    attacks: dict[str, Any] = {}
    for key in chosen:
        attacks[key] = zoo if key == "zoo" else simba.replace(basis=key.split("_")[1])
    try:
        return QueryLimitPlan(
            limit=limit, attacks=attacks, adaptive=adaptive, benign=benign, n=n, seed=int(seed)
        )
    except RobustcoreError as exc:
        st.error(str(exc))
        return None


def start(ds: Dataset, model: Any, ref: ModelRef, plan: QueryLimitPlan) -> None:
    """Submit the run (served from the store when it ran before)."""
    spec = query_limit_spec(ds, ref.run_key, plan)
    jobs.start(SLOT, spec, query_limit_job(ds, plan, model=model, label=ref.label))


def _pct(v: float) -> str:
    return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"


def results(rec: RunRecord) -> None:
    """Everything the page shows once the run is done."""
    m = rec.metrics
    summary = rec.table("summary")
    per = rec.table("per_image")
    cols = st.columns(4)
    cols[0].metric(
        "Benign false-alarm rate",
        _pct(m["benign_fpr"]),
        help=f"Flagged share of the {m['benign_judged']:,} benign queries that had k earlier "
        f"queries to compare with (target {m['target_fpr']:.2%}; on the calibration stream "
        f"{m['calibration_fpr']:.2%}).",
    )
    cols[1].metric(
        "Benign clients caught",
        _pct(m["benign_clients_caught"]),
        help="Honest clients with at least one flagged query: the share a ban-on-first-flag "
        "service would lock out.",
    )
    cols[2].metric(
        "Threshold (k-NN distance)",
        f"{m['threshold']:.3g}",
        help=f"Set on {m['calibration_queries']:,} benign training queries; encoder: "
        f"{m['encoder']}, k = {m['k']}.",
    )
    cols[3].metric("Query budget per client", f"{m['budget']:,}")
    cols = st.columns(len(summary))
    for col, row in zip(cols, summary.itertuples(index=False), strict=True):
        col.metric(
            f"{row.attack}: success before caught",
            _pct(row.success_before_detection),
            delta=f"{100 * (row.success_before_detection - row.success_no_defense):+.0f} points "
            "vs no detector",
            delta_color="inverse",
            help=f"Within the budget: {row.success_no_defense:.0%} without the detector; "
            f"{_caught(row)}.",
        )
    st.plotly_chart(budget_defense_figure(rec.table("curves")), width="stretch", key="ql_curve")
    st.caption(
        "Solid: success within a query budget with no detector. Dashed: with the detector, a "
        "success counts only if it came before the attacker's client was flagged (the service "
        "bans it at its first flag)."
        + (
            " Dotted: the attacker blinds its queries with noise."
            if "blinding" in rec.table_names
            else ""
        )
    )
    left, right = st.columns(2)
    with left:
        st.plotly_chart(detection_delay_figure(per, k=m["k"]), width="stretch", key="ql_delay")
    with right:
        st.plotly_chart(
            accounts_figure(per, per_account=m["per_account"]), width="stretch", key="ql_accounts"
        )
    _what_it_buys(m, summary)
    tabs = st.tabs(["Summary", "False alarms", "Per image", "Downloads"])
    with tabs[0]:
        st.dataframe(summary, hide_index=True, width="stretch")
        if "blinding" in rec.table_names:
            st.markdown("**Query blinding** (noise on every query)")
            st.dataframe(rec.table("blinding"), hide_index=True, width="stretch")
    with tabs[1]:
        st.plotly_chart(
            benign_distance_figure(rec.table("scores")["distance"], m["threshold"]),
            width="stretch",
            key="ql_benign",
        )
        st.caption(
            f"{m['benign_queries']:,} queries of honest clients, each sending distinct test "
            "images. The threshold was set on one long stream of training images, whose "
            "neighbours are closer than a short stream's, so short benign streams are flagged "
            "less often than the target rate."
        )
        st.dataframe(rec.table("benign"), hide_index=True, width="stretch")
    with tabs[2]:
        st.dataframe(per, hide_index=True, width="stretch")
    with tabs[3]:
        c = st.columns(4)
        download_table(summary, "query_limit_summary.csv", label="Summary (CSV)", container=c[0])
        download_table(per, "query_limit_per_image.csv", label="Per image (CSV)", container=c[1])
        download_table(
            rec.table("curves"), "query_limit_curves.csv", label="Curves (CSV)", container=c[2]
        )
        download_run(rec, "query_limit_run.json", container=c[3])
        st.caption(f"Run key `{rec.key}` · seed {rec.seed} · computed in {rec.seconds:.1f} s.")


def _caught(row: Any) -> str:
    if not row.detected:
        return "no attacker caught"
    return f"{row.detected:.0%} of the attackers caught, median at query {row.delay_median:,.0f}"


def _what_it_buys(m: dict[str, Any], summary: pd.DataFrame) -> None:
    lines = []
    for row in summary.itertuples(index=False):
        lines.append(
            f"- **{row.attack}**: {_caught(row)}; success {row.success_no_defense:.0%} → "
            f"{row.success_before_detection:.0%} for an attacker with one account. An attacker "
            f"who knows k opens a new account every {row.per_account} queries: "
            f"{row.accounts_rotate_mean:.1f} accounts per image on average (at most "
            f"{row.accounts_rotate_max}), {row.rotate_bans} of them banned, and the same "
            f"success as with no detector."
        )
    st.markdown("**What the defense buys**\n\n" + "\n".join(lines))
    st.info(
        "The detector cannot flag an account before it has sent k queries, so it does not "
        "stop an attacker who can open accounts cheaply (a Sybil attack): it turns one "
        "attack into many accounts. It is worth what an account costs the attacker "
        "(identity checks, payment, rate limits per person), not more."
    )
