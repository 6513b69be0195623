"""Model inversion: MIFace class representatives next to the real class means."""

import streamlit as st

from robustcore.attacks.inference.inversion import MIFace
from robustcore.runs.inversion_job import inversion_job, inversion_spec
from robustcore.ui import jobs, state
from robustcore.ui.downloads import download_bytes, download_run, download_table
from robustcore.ui.forms import param_form
from robustcore.ui.shell import page_setup
from robustcore.viz.extraction import inversion_grid, inversion_profile, inversion_progress

page_setup(
    "Model inversion",
    "Can a model give away what its training data looks like? **MIFace** (Fredrikson, Jha & "
    "Ristenpart 2015, *Model Inversion Attacks that Exploit Confidence Information*) starts "
    "from a blank input and runs gradient descent on the input until the model is confident "
    "it sees a given class; the result is the model's *class representative*. All classes "
    "are inverted at once and each reconstruction is shown above the real mean of that "
    "class's training images.",
)
ds, model, ref = state.require_model()

with st.form("inv_form"):
    st.markdown("**MIFace settings** (the defaults are the paper's: cost 1 − p, no prior)")
    cols = st.columns(2)
    with cols[0]:
        config = param_form(
            MIFace, key="inv", exclude=("tv_weight", "l2_weight", "init", "seed", "patience")
        )
    with cols[1]:
        priors = param_form(MIFace, key="inv_prior", exclude=("steps", "lr", "loss", "threshold"))
    submitted = st.form_submit_button("Run model inversion", type="primary")
if submitted and config is not None and priors is not None:
    config = config.replace(
        **{k: getattr(priors, k) for k in ("tv_weight", "l2_weight", "init", "seed", "patience")}
    )
    jobs.start(
        "inversion", inversion_spec(ds, ref.run_key, config), inversion_job(model, ds, config)
    )

record = jobs.show("inversion")
if record is None:
    if jobs.current("inversion") is None:
        st.info("Choose the settings and press **Run model inversion** (a few seconds).")
    st.stop()
if record.spec.get("model") != ref.run_key:
    st.info("The last inversion was of another model: press **Run model inversion** again.")
    st.stop()

m = record.metrics
table = record.table("per_class")
recon = record.artifact("reconstructions")
means = record.artifact("class_means")
names = [str(c) for c in ds.class_names]
cols = st.columns(4)
cols[0].metric(
    "Mean confidence",
    f"{m['mean_confidence']:.1%}",
    help="The model's probability of the target class for its reconstruction, on average.",
)
cols[1].metric(
    "Correlation with class mean",
    f"{m['mean_correlation']:.2f}",
    delta=f"real images: {m['real_images_correlation']:.2f}",
    delta_color="off",
    delta_arrow="off",
    help="Pearson correlation of each reconstruction with the mean of its class's training "
    "inputs; for comparison, the average correlation of a real training input with it.",
)
cols[2].metric(
    "Classes identified",
    f"{m['identification_rate']:.0%}",
    help="Reconstructions that are closer (by correlation) to their own class mean than to "
    "any other class's mean.",
)
cols[3].metric("Gradient steps", f"{m['mean_steps']:.0f}", help="Average per class.")

st.caption(
    "What to expect on mnist5k (a real training digit correlates about 0.67 with its class "
    "mean): on **logistic regression** and the **MLP** the reconstructions look like blurred "
    "class templates (correlation 0.5–0.6; a total-variation prior of 0.002 smooths them "
    "and raises it further); on a **CNN** MIFace finds high-confidence *adversarial-looking* "
    "strokes rather than a recognisable digit (correlation about 0.2, and the prior does not "
    "help), although each is still closest to its own class's mean."
)
tabs = st.tabs(["Reconstructions", "Descent", "Per class & downloads"])
with tabs[0]:
    if m["modality"] == "image":
        fig = inversion_grid(
            recon,
            means,
            names,
            confidence=table["confidence"].tolist(),
            correlation=table["correlation_with_class_mean"].tolist(),
        )
    else:
        fig = inversion_profile(recon, means, names)
    st.plotly_chart(fig, width="stretch", key="inv_grid")
with tabs[1]:
    st.plotly_chart(inversion_progress(record.table("history")), width="stretch", key="inv_hist")
with tabs[2]:
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(f"Run key `{record.key}` · seed {record.seed} · {record.seconds:.1f} s.")
    dl = st.columns(3)
    download_table(table, "inversion_per_class.csv", label="Per class (CSV)", container=dl[0])
    download_run(record, "inversion_run.json", container=dl[1])
    download_bytes(
        record.store.load_artifact(record.key, "reconstructions"),
        "reconstructions.npy",
        mime="application/octet-stream",
        label="Reconstructions (.npy)",
        container=dl[2],
    )
