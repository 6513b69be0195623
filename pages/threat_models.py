"""Threat models: the same model and budget attacked by white-, gray-, black-box and
label-only attackers."""

import streamlit as st

from robustcore.errors import ValidationError
from robustcore.runs.threat_job import threat_job, threat_spec
from robustcore.ui import jobs, state
from robustcore.ui.downloads import download_run, download_table
from robustcore.ui.shell import page_setup
from robustcore.ui.threat import explanations, plan_form, surrogate_recipe
from robustcore.viz.threat import threat_figure, threat_gallery

page_setup(
    "Threat models",
    "How much an attacker knows decides how well it does. The same images of the current "
    "model are attacked with one budget by a **white-box** attacker (PGD with the model's "
    "gradients; Madry et al. 2018), a **gray-box** one (PGD on its own surrogate trained on "
    "the same data, transferred; Papernot et al. 2016), a **black-box** one that only reads "
    "the API's probabilities (SimBA, Guo et al. 2019; ZOO, Chen et al. 2017) and a "
    "**label-only** one that trains its surrogate on the API's labels (Papernot et al. "
    "2017). Less knowledge should mean less success, or more cost.",
)

ds, model, ref = state.require_model()
plan = plan_form(ds, ref)
if plan is not None:
    recipe = surrogate_recipe(ref)
    try:
        spec = threat_spec(ds, ref.run_key, plan, recipe, target_arch=ref.arch)
    except ValidationError as exc:
        st.error(str(exc))
    else:
        fn = threat_job(model, ds, plan, recipe, target_arch=ref.arch, label=ref.label)
        jobs.start("threat", spec, fn)

record = jobs.show("threat")
if record is None:
    if jobs.current("threat") is None:
        st.info(
            "Press **Run threat models**. The default attacks 30 correctly classified test "
            "images at L∞ ε = 0.2 with a budget of 1,000 queries per image; it trains two "
            "small surrogates (kept in the model zoo) and takes well under 30 s on a quiet "
            "2-core CPU, then is served from the run store."
        )
    st.stop()
if record.spec.get("model") != ref.run_key:
    st.info("The last run attacked another model: press **Run threat models** again.")
    st.stop()

m = record.metrics
table = record.table("threats")
by = table.set_index("threat_model")
cols = st.columns(5)
cols[0].metric("Clean accuracy", f"{m['clean_accuracy']:.1%}", help="On the whole test split.")
labels = {"white-box": "White-box", "gray-box": "Gray-box", "label-only": "Label-only"}
for col, (threat, title) in zip([cols[1], cols[2], cols[4]], labels.items(), strict=True):
    if threat in by.index:
        r = by.loc[[threat]].iloc[0]
        col.metric(f"{title} success", f"{r['success_rate']:.0%}", help=r["attack"])
bb = table[table["threat_model"] == "black-box"]
if len(bb):
    top = bb.loc[bb["success_within_eps"].idxmax()]
    cols[3].metric(
        "Black-box success within ε",
        f"{top['success_within_eps']:.0%}",
        help=f"{top['attack']}; {top['success_rate']:.0%} with any perturbation size.",
    )
st.plotly_chart(threat_figure(table, eps=m["eps"]), width="stretch", key="tm_chart")
if m["whitebox_beats_all"]:
    st.success(
        "White-box PGD fools at least as many images as every attacker who knows less, at "
        "the same ε, as an honest evaluation must show (Carlini et al. 2019)."
    )
else:
    st.warning(
        f"{', '.join(m['beats_whitebox'])} beat white-box PGD within the same ε: the "
        "white-box attack is not converged (raise PGD steps) or the gradients are masked."
    )
for title, text in explanations(table, m):
    with st.expander(title, expanded=True):
        st.markdown(text)
st.dataframe(table, hide_index=True, width="stretch")
st.caption(
    "success_rate: images the model classified correctly that it misclassifies after the "
    "attack; success_within_eps: the same, counting only perturbations inside the L∞ "
    "ε-ball; queries_total includes the label-only attacker's training queries; "
    "setup_seconds is the surrogate's training time, paid once (recorded when it was "
    "trained, even if it is loaded from the model zoo now)."
)
advs = {k[4:]: record.artifact(k) for k in record.artifact_names if k.startswith("adv.")}
if advs and ds.modality == "image":
    order = [k for k in ("white", "gray", "simba", "simba_pixel", "zoo", "label") if k in advs]
    fig = threat_gallery(record.artifact("clean"), advs, record.table("gallery"), order=order)
    st.plotly_chart(fig, width="stretch", key="tm_gallery")
dl = st.columns(2)
download_table(table, "threat_models.csv", label="Table (CSV)", container=dl[0])
download_run(record, "threat_models_run.json", container=dl[1])
