"""The Home page's robustness scorecard: settings, run, table, chart and downloads."""

from __future__ import annotations

import streamlit as st

from ..data import Dataset
from ..experiments import Target
from ..experiments.scorecard import THRESHOLDS, Scorecard, ScorecardResult
from ..viz.scorecard import VERDICT_COLORS, scorecard_figure, shown_table, verdicts_caption
from . import experiment, jobs, notes
from .downloads import download_run, download_table
from .forms import param_values
from .sanity import flagged

SLOT = "home.scorecard"


def _verdict_style(verdict: str) -> str:
    color = VERDICT_COLORS.get(verdict)
    return f"background-color: {color}33; color: {color}; font-weight: 600" if color else ""


def scorecard_section(ds: Dataset, target: Target) -> None:
    """Draw the scorecard: a form, the job's progress, then the results."""
    st.subheader("Robustness scorecard")
    st.caption(
        "One quick battery on the current model, each row answered with the workbench's own "
        "attacks: random noise, white-box PGD at a small and a large ε, whether an unbounded "
        "attack reaches chance (if not, gradients are masked and the PGD rows flatter the "
        "model; Carlini et al. 2019), SimBA within a query budget, and membership inference. "
        "The pages named in the table go deeper."
    )
    with st.form("home_scorecard"):
        with st.expander("Settings"):
            raw = param_values(Scorecard, key=f"sc.{ds.modality}", values=Scorecard.defaults(ds))
        run = st.form_submit_button("Run scorecard", type="primary")
    if run:
        exp = experiment.build(Scorecard, raw, target)
        if exp is not None:
            experiment.start(SLOT, exp, ds)
    res: ScorecardResult | None = experiment.show(SLOT, Scorecard, ds, target)
    if res is None:
        if jobs.current(SLOT) is None:
            st.info(
                "Press **Run scorecard** (the estimate above is for this machine); a scorecard "
                "run before is shown at once from the result store."
            )
        return
    table = res.table()
    cols = st.columns(4)
    cols[0].metric("Clean accuracy", f"{res.clean_accuracy:.1%}")
    cols[1].metric(
        "PGD, large ε",
        f"{res.pgd_large_accuracy:.1%}",
        **flagged(
            res.failed_checks(),
            f"{res.pgd_large_accuracy - res.clean_accuracy:+.1%}",
            delta_color="inverse",
            where="its row in the table below",
        ),
    )
    cols[2].metric("SimBA success", f"{res.simba_success:.0%}")
    cols[3].metric("Membership AUC", f"{res.membership_auc:.3f}")
    notes.accuracy_basis(res.n, ds)
    st.plotly_chart(
        scorecard_figure(table, chance=res.chance), width="stretch", key="home_scorecard_fig"
    )
    shown = shown_table(table)
    st.dataframe(
        shown.style.map(_verdict_style, subset=["verdict"]), hide_index=True, width="stretch"
    )
    st.caption(verdicts_caption(THRESHOLDS))
    c = st.columns(2)
    download_table(table, "scorecard.csv", label="Scorecard (CSV)", container=c[0])
    download_run(res, "scorecard_run.json", container=c[1])
    st.caption(f"Run key `{res.key}` · seed {res.seed} · computed in {res.seconds:.1f} s.")
