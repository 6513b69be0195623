"""Model extraction: steal the current model through its prediction API."""

import streamlit as st

from robustcore.attacks.extraction import (
    OUTPUTS,
    QUERY_SOURCES,
    ModelStealing,
    check_config,
    describe_source,
    grid_configs,
)
from robustcore.errors import ValidationError
from robustcore.runs.extraction_job import extraction_job, extraction_spec
from robustcore.ui import jobs, state
from robustcore.ui.downloads import download_run, download_table
from robustcore.ui.forms import param_form
from robustcore.ui.shell import page_setup
from robustcore.viz.extraction import SOURCE_TITLES, extraction_curves

BUDGETS = [50, 100, 250, 500, 1000, 1500, 2000, 3000, 4000, 8000]
DEFAULT_BUDGETS = [100, 250, 500, 1000]

page_setup(
    "Model extraction",
    "Anyone who can query a model can copy it. The attacker sends inputs to the prediction "
    "API, keeps the answers and trains a *student* network on them (Copycat CNN, "
    "Correia-Silva et al. 2018; Knockoff Nets, Orekondy et al. 2019; Tramèr et al. 2016). "
    "**Accuracy** is the copy's accuracy on the real test labels; **fidelity** is how often "
    "it agrees with the target, which is what a transfer attack needs from a surrogate.",
)
ds, model, ref = state.require_model()
sources = [s for s in QUERY_SOURCES if ds.modality == "image" or s != "other_dataset"]
defaults = [b for b in DEFAULT_BUDGETS if b <= ds.n_train] or [min(ds.n_train, 100)]

with st.form("ext_form"):
    cols = st.columns(3)
    budgets = cols[0].multiselect(
        "Query budgets",
        sorted({*BUDGETS, *defaults}),
        default=defaults,
        help="One stolen model per budget (and per output × source).",
    )
    outputs = cols[1].multiselect(
        "API outputs", list(OUTPUTS), default=list(OUTPUTS), help="Probabilities or top-1 label."
    )
    chosen = cols[2].multiselect(
        "Query sources",
        sources,
        default=sources[:2],
        format_func=lambda s: SOURCE_TITLES[s],
        help="Where the attacker's inputs come from.",
    )
    with st.expander("Student (the attacker's network and its training)"):
        base = param_form(ModelStealing, key="ext", exclude=("budget", "query_source", "output"))
    submitted = st.form_submit_button("Run model stealing", type="primary")
for s in chosen:
    st.caption(f"**{SOURCE_TITLES[s]}**: {describe_source(ds, s)}.")

if submitted and base is not None:
    try:
        configs = grid_configs(base, outputs=outputs, sources=chosen)
        if not budgets:
            raise ValidationError("Choose at least one query budget.")
        check_config(ds, configs[0].replace(budget=min(budgets)))
        spec = extraction_spec(ds, ref.run_key, budgets, configs)
    except ValidationError as exc:
        st.error(str(exc))
    else:
        target = ref.zoo_key or ref.run_key
        jobs.start(
            "extraction", spec, extraction_job(model, ds, budgets, configs, target_id=target)
        )

record = jobs.show("extraction")
if record is None:
    if jobs.current("extraction") is None:
        st.info(
            "Choose budgets, outputs and sources and press **Run model stealing**. The "
            "default trains 16 small students (an MLP, 20 epochs each): 10–20 seconds on a "
            "quiet 2-core CPU, then served from the run store."
        )
    st.stop()
if record.spec.get("model") != ref.run_key:
    st.info("The last run stole another model: press **Run model stealing** again.")
    st.stop()

m = record.metrics
curve = record.table("curve")
top = curve.loc[curve["fidelity"].idxmax()]
cols = st.columns(4)
cols[0].metric("Target accuracy", f"{m['target_accuracy']:.1%}", help="The model being stolen.")
cols[1].metric(
    "Best fidelity",
    f"{top['fidelity']:.1%}",
    help=f"{top['output']}, {SOURCE_TITLES[top['query_source']]}, {top['budget']:,} queries.",
)
cols[2].metric("Its accuracy", f"{top['accuracy']:.1%}", help="The same stolen model's accuracy.")
cols[3].metric("Stolen models", f"{m['n_students']}", help=f"Computed in {record.seconds:.1f} s.")
for src, skipped in m.get("skipped_budgets", {}).items():
    st.warning(
        f"Budgets {', '.join(f'{b:,}' for b in skipped)} skipped for {SOURCE_TITLES[src]}: "
        f"its pool holds fewer distinct inputs ({describe_source(ds, src)})."
    )
fig = extraction_curves(curve, target_accuracy=m["target_accuracy"], chance=1 / ds.num_classes)
st.plotly_chart(fig, width="stretch", key="ext_curves")
st.caption(
    "Solid lines: the API returns probabilities; dashed: only the top-1 label. A label "
    "carries less information per query, which shows most with queries far from the "
    "target's data (other dataset, noise); on in-distribution images the target is so "
    "confident that its probabilities are nearly one-hot and the two lines almost meet."
)
st.dataframe(curve, hide_index=True, width="stretch")
st.caption(
    "Every stolen model is stored in the model zoo: `robustcore.models.lookup(zoo_key)` "
    "returns it, e.g. as a surrogate for a transfer attack."
)
dl = st.columns(2)
download_table(curve, "extraction_curve.csv", label="Curve (CSV)", container=dl[0])
download_run(record, "extraction_run.json", container=dl[1])
