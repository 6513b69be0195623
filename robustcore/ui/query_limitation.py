"""Streamlit pieces of the "Query limitation" page: the settings form (budget, detector,
attacks, adaptive attacker, benign clients; drawn from the declaration of the
``query_limitation`` experiment) and the results (success against budget with and without
the detector, detection delay, accounts, false alarms, downloads)."""

from __future__ import annotations

import streamlit as st

from ..data import Dataset
from ..experiments import Target
from ..experiments.query_limitation import (
    ATTACK_TITLES,
    AttackSummary,
    QueryLimitation,
    QueryLimitationResult,
)
from ..viz.query_limitation import (
    accounts_figure,
    benign_distance_figure,
    budget_defense_figure,
    detection_delay_figure,
)
from . import experiment
from .downloads import download_json, download_table
from .forms import param_values

SLOT = "ql.run"


def form(ds: Dataset, target: Target) -> QueryLimitation | None:
    """Draw the controls; return the experiment when the user pressed Run, else ``None``."""
    info = {p.name: p for p in QueryLimitation.params()}
    defaults = QueryLimitation.defaults(ds)
    with st.form("ql_form"):
        left, right = st.columns(2, gap="large")
        with left:
            limit = param_values(
                QueryLimitation, key="ql", only=("limit",), nested_in_expanders=False
            )
        with right:
            st.markdown("**The attack**")
            # the DCT basis needs images; tabular data gets SimBA (pixel) and ZOO
            keys = list(defaults["attacks"])
            chosen = st.multiselect(
                info["attacks"].title,
                keys,
                default=keys,
                format_func=ATTACK_TITLES.get,
                key="ql_attacks",
                help=info["attacks"].help,
            )
            n = st.slider(
                info["n"].title,
                5,
                min(200, ds.n_test),
                defaults["n"],
                5,
                key="ql_n",
                help=info["n"].help,
            )
            seed = param_values(QueryLimitation, key="ql", only=("seed",))
            others = param_values(QueryLimitation, key="ql", only=("adaptive", "benign"))
            with st.expander("SimBA settings (Guo et al. 2019)"):
                simba = param_values(
                    QueryLimitation, key="ql", only=("eps", "simba"), nested_in_expanders=False
                )
            with st.expander("ZOO settings (Chen et al. 2017)"):
                zoo = param_values(
                    QueryLimitation, key="ql", only=("zoo",), nested_in_expanders=False
                )
        run = st.form_submit_button("Run attacks against the limits", type="primary")
    if not run:
        return None
    if not chosen:
        st.error("Choose at least one attack.")
        return None
    values = {"attacks": chosen, "n": n, **limit, **seed, **others, **simba, **zoo}
    return experiment.build(QueryLimitation, values, target)


def _pct(v: float) -> str:
    return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"


def results(res: QueryLimitationResult) -> None:
    """Everything the page shows once the run is done."""
    summaries = res.attack_summaries()
    per = res.per_image()
    cols = st.columns(4)
    cols[0].metric(
        "Benign false-alarm rate",
        _pct(res.benign_fpr),
        help=f"Flagged share of the {res.benign_judged:,} benign queries that had k earlier "
        f"queries to compare with (target {res.target_fpr:.2%}; on the calibration stream "
        f"{res.calibration_fpr:.2%}).",
    )
    cols[1].metric(
        "Benign clients caught",
        _pct(res.benign_clients_caught),
        help="Honest clients with at least one flagged query: the share a ban-on-first-flag "
        "service would lock out.",
    )
    cols[2].metric(
        "Threshold (k-NN distance)",
        f"{res.threshold:.3g}",
        help=f"Set on {res.calibration_queries:,} benign training queries; encoder: "
        f"{res.encoder}, k = {res.k}.",
    )
    cols[3].metric("Query budget per client", f"{res.budget:,}")
    cols = st.columns(len(summaries))
    for col, row in zip(cols, summaries, strict=True):
        col.metric(
            f"{row.attack}: success before caught",
            _pct(row.success_before_detection),
            delta=f"{100 * (row.success_before_detection - row.success_no_defense):+.0f} points "
            "vs no detector",
            delta_color="inverse",
            help=f"Within the budget: {row.success_no_defense:.0%} without the detector; "
            f"{row.caught}.",
        )
    st.plotly_chart(budget_defense_figure(res.curves()), width="stretch", key="ql_curve")
    st.caption(
        "Solid: success within a query budget with no detector. Dashed: with the detector, a "
        "success counts only if it came before the attacker's client was flagged (the service "
        "bans it at its first flag)."
        + (" Dotted: the attacker blinds its queries with noise." if res.has_blinding else "")
    )
    left, right = st.columns(2)
    with left:
        st.plotly_chart(detection_delay_figure(per, k=res.k), width="stretch", key="ql_delay")
    with right:
        st.plotly_chart(
            accounts_figure(per, per_account=res.per_account), width="stretch", key="ql_accounts"
        )
    _what_it_buys(summaries)
    summary = res.summary_table()
    tabs = st.tabs(["Summary", "False alarms", "Per image", "Downloads"])
    with tabs[0]:
        st.dataframe(summary, hide_index=True, width="stretch")
        if res.has_blinding:
            st.markdown("**Query blinding** (noise on every query)")
            st.dataframe(res.blinding(), hide_index=True, width="stretch")
    with tabs[1]:
        st.plotly_chart(
            benign_distance_figure(res.benign_distances(), res.threshold),
            width="stretch",
            key="ql_benign",
        )
        st.caption(
            f"{res.benign_queries:,} queries of honest clients, each sending distinct test "
            "images. The threshold was set on one long stream of training images, whose "
            "neighbours are closer than a short stream's, so short benign streams are flagged "
            "less often than the target rate."
        )
        st.dataframe(res.benign_clients(), hide_index=True, width="stretch")
    with tabs[2]:
        st.dataframe(per, hide_index=True, width="stretch")
    with tabs[3]:
        c = st.columns(4)
        download_table(summary, "query_limit_summary.csv", label="Summary (CSV)", container=c[0])
        download_table(per, "query_limit_per_image.csv", label="Per image (CSV)", container=c[1])
        download_table(res.curves(), "query_limit_curves.csv", label="Curves (CSV)", container=c[2])
        download_json(res.as_json(), "query_limit_run.json", label="Run (JSON)", container=c[3])
        st.caption(f"Run key `{res.key}` · seed {res.seed} · computed in {res.seconds:.1f} s.")


def _what_it_buys(summaries: list[AttackSummary]) -> None:
    lines = []
    for row in summaries:
        lines.append(
            f"- **{row.attack}**: {row.caught}; success {row.success_no_defense:.0%} → "
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
