"""The global sidebar: pick a dataset and a model (train by recipe, or upload one)."""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from ..data import DEFAULT_DATASET, Dataset, list_datasets, load_npz
from ..defenses.inference import KINDS, InferenceDefense, defense_class
from ..errors import RobustcoreError
from ..experiments import Target
from ..experiments.estimate import format_seconds, in_zoo
from ..experiments.train import Train
from ..models import (
    ARCHITECTURES,
    TrainRecipe,
    compatible_architectures,
    default_architecture,
    lookup,
)
from ..models.onnx_upload import load_onnx
from ..models.training import METHOD_TITLES, METHODS, OPTIONAL_FIELDS
from ..models.zoo import load_user_weights
from ..runs import get_runner, spec_key
from . import jobs, state
from .forms import param_values

UPLOAD = "__upload__"
MAX_UPLOAD_MB = 200
SOURCES = {
    "zoo": "Train a built-in architecture",
    "weights": "Upload weights (state_dict .pt or .safetensors)",
    "onnx": "Upload your own architecture (ONNX)",
}
"""Where the model comes from. No format that carries code (pickle, TorchScript) is read."""


def _sources() -> list[str]:
    return list(SOURCES)


# Streamlit drops a page's widget state when another page is opened, and every page draws
# this sidebar anew; the choices are therefore also kept under these keys, which are no
# widget's, and each widget starts from them (its key alone would reset to the default).
_KEEP = "rc_keep."
_GEN = "rc_widget_generation"


def _wk(name: str) -> str:
    """The widget key ``name`` in its current generation. "Use as current model" starts a
    new one: a browser keeps showing a widget's old value while its key stays the same,
    even after the key is deleted, so only new keys show the new model's settings."""
    gen = st.session_state.get(_GEN, 0)
    return name if gen == 0 else f"{name}@{gen}"


def _kept_index(name: str, options: list[Any], default: Any) -> int:
    """Index of the value last chosen for ``name`` (or of ``default``) among ``options``."""
    value = st.session_state.get(_KEEP + name, default)
    return options.index(value if value in options else default)


def _keep(name: str, value: Any) -> None:
    st.session_state[_KEEP + name] = value


def default_arch(ds: Dataset) -> str:
    return default_architecture(ds)


def _dataset_picker() -> Dataset | None:
    infos = list_datasets()
    names = [i.name for i in infos] + [UPLOAD]
    titles = {i.name: i.title + ("" if i.offline else " (download)") for i in infos}
    titles[UPLOAD] = "Upload a .npz file…"
    choice = st.selectbox(
        "Dataset",
        names,
        index=_kept_index("dataset", names, DEFAULT_DATASET),
        format_func=titles.get,
        key="rc_dataset_choice",
    )
    _keep("dataset", choice)
    if choice == UPLOAD:
        up = st.file_uploader(
            "Dataset (.npz)",
            type=["npz"],
            key="rc_dataset_upload",
            help="Arrays x_train, y_train, x_test, y_test (optional class_names). Images as "
            "uint8 or floats in [0, 1], N×H×W, N×C×H×W or N×H×W×C; tabular as N×F. "
            f"At most {MAX_UPLOAD_MB} MB.",
        )
        if up is None:
            cached = state.uploaded_dataset()
            if cached is not None:  # uploaded before (e.g. on another page)
                st.caption(
                    f"Using **{cached.name}**, uploaded earlier; upload a file to replace it."
                )
                return cached
            st.caption("Upload a file to continue.")
            return None
        data = up.getvalue()
        digest = hashlib.sha256(data).hexdigest()[:16]
        cached = state.uploaded_dataset()
        if cached is None or st.session_state.get("rc_dataset_digest") != digest:
            try:
                cached = load_npz(data, name=up.name, max_bytes=MAX_UPLOAD_MB * 2**20)
            except RobustcoreError as exc:
                st.error(str(exc))
                return None
            state.set_uploaded_dataset(cached)
            st.session_state["rc_dataset_digest"] = digest
        return cached
    try:
        with st.spinner(f"Loading {choice}…"):
            return state.dataset_by_name(choice)
    except RobustcoreError as exc:
        st.error(str(exc))
        return None


def _describe(ds: Dataset) -> None:
    sizes = f"{ds.n_train:,} train / {ds.n_test:,} test"
    text = ds.description or ds.name
    if sizes not in text:
        text += f" · {sizes}"
    st.caption(f"{text} · {ds.num_classes} classes · input {'×'.join(map(str, ds.input_shape))}")


METHOD_NOTES = {
    "standard": "Plain cross-entropy training: the undefended baseline.",
    "noise": "Gaussian noise of σ on every training input: robustness to random noise, "
    "not to adversarial perturbations.",
    "fgsm_rs": "Wong et al. 2020: one FGSM step from a random start per batch (about 2× "
    "the time of standard training). The watchdog guards against catastrophic overfitting. "
    "It matches PGD-AT at ε = 0.1 but fails at ε = 0.3 on mnist5k (16 % against 63 % under "
    "PGD-40, README): use PGD-AT or TRADES for large budgets.",
    "pgd_at": "Madry et al. 2018: trains on PGD examples (about steps + 1 times the time "
    "of standard training).",
    "trades": "Zhang et al. 2019: cross-entropy plus β · KL(f(x) ‖ f(x′)) (about steps + 2 "
    "times the time of standard training).",
    "distillation": "Papernot et al. 2016: a teacher and a student at temperature T (2× "
    "the time). Known to mask gradients, not to make the model robust.",
}
GENERAL_FIELDS = tuple(
    p.name for p in TrainRecipe.params() if p.name not in ("method", *OPTIONAL_FIELDS, "noise_std")
)
"""The recipe settings every method shares (the "Training recipe" expander)."""


def recipe_controls(
    key: str, values: dict[str, Any] | None, method_default: str
) -> TrainRecipe | None:
    """The training method with its own settings, and the shared recipe in an expander;
    the recipe, or ``None`` after showing what is wrong with it."""
    values = dict(values or {})
    method = st.selectbox(
        "Training method",
        list(METHODS),
        index=list(METHODS).index(method_default) if method_default in METHODS else 0,
        format_func=METHOD_TITLES.get,
        key=f"{key}_method",
        help="How the model is trained: standard, or with a defense. A defended model is a "
        "model like any other: every page can attack it.",
    )
    st.caption(METHOD_NOTES[method])
    fields = TrainRecipe.method_fields(method)
    drawn = param_values(TrainRecipe, key=key, values=values, only=fields)
    with st.expander("Training recipe"):
        general = param_values(TrainRecipe, key=key, values=values, only=GENERAL_FIELDS)
    # Each call also returns the undrawn fields' starting values: keep only what it drew.
    chosen = {
        **values,
        **{k: general[k] for k in GENERAL_FIELDS},
        **{k: drawn[k] for k in fields},
    }
    chosen["method"] = method
    if method != "noise":
        chosen["noise_std"] = 0.0
    try:
        return TrainRecipe.from_dict(chosen)
    except RobustcoreError as exc:
        st.error(str(exc))
        return None


def _train_controls(ds: Dataset) -> None:
    archs = compatible_architectures(ds.modality, ds.input_shape)
    arch = st.selectbox(
        "Architecture",
        archs,
        index=_kept_index(f"arch.{ds.name}", archs, default_arch(ds)),
        format_func=lambda a: ARCHITECTURES[a].title,
        key=_wk("rc_arch"),
        help="Models compatible with this dataset's shape.",
    )
    _keep(f"arch.{ds.name}", arch)
    st.caption(ARCHITECTURES[arch].description)
    kept = st.session_state.get(_KEEP + "recipe")
    recipe = recipe_controls(
        _wk("rc_recipe"), kept, st.session_state.get(_KEEP + "method", "standard")
    )
    if recipe is None:
        return
    _keep("recipe", recipe.to_dict())
    _keep("method", recipe.method)
    _training_estimate(ds, arch, recipe)
    if st.button("Train / load model", type="primary", key="rc_train", width="stretch"):
        start_model(ds, arch, recipe)


def _training_estimate(ds: Dataset, arch: str, recipe: TrainRecipe) -> None:
    """Whether the zoo has this model, else how long training it should take here."""
    try:
        if in_zoo(arch, ds, recipe):
            st.caption("Time: in the model zoo, loads at once.")
            return
    except RobustcoreError:
        return
    seconds = jobs.estimated_seconds(Train().on(Target.zoo(arch, recipe)), ds)
    if seconds is not None:
        st.caption(
            f"Time: training should take about {format_seconds(seconds)} on this machine "
            f"({recipe.epochs} epochs, priced by timing this architecture here)."
        )


def start_model(ds: Dataset, arch: str, recipe: TrainRecipe) -> None:
    """Train (or load from the zoo) ``arch`` by ``recipe`` and make it the current model
    once done (the sidebar finishes it on the next run)."""
    jobs.start_experiment("model", Train().on(Target.zoo(arch, recipe)), ds)
    st.session_state["rc_pending"] = {
        "source": "zoo",
        "arch": arch,
        "dataset": ds.name,
        "recipe": recipe.to_dict(),
    }


def use_model(ds: Dataset, arch: str, recipe: TrainRecipe) -> None:
    """Make a zoo model the current one from a page ("Use as current model"): the sidebar's
    controls are set to its architecture and recipe, and the page is run again."""
    _keep("source", "zoo")
    _keep(f"arch.{ds.name}", arch)
    _keep("recipe", recipe.to_dict())
    _keep("method", recipe.method)
    old = (_wk("rc_recipe"), _wk("rc_arch"), _wk("rc_source"))
    for k in list(st.session_state):
        if isinstance(k, str) and k.startswith(old):
            del st.session_state[k]
    st.session_state[_GEN] = st.session_state.get(_GEN, 0) + 1
    start_model(ds, arch, recipe)
    st.rerun()


def _set_zoo_model(ds: Dataset, arch: str, recipe: TrainRecipe, record: Any, zoo_key: str) -> None:
    """Make the zoo model of a stored Train run the current one."""
    state.set_model(
        state.ModelRef(
            source="zoo",
            dataset=ds.name,
            label=record.label or "",
            run_key=record.key,
            zoo_key=zoo_key,
            arch=arch,
            recipe=recipe.to_dict(),
            data_fingerprint=record.spec.get("fingerprint"),
        )
    )


def switch_to_zoo_model(dataset: str, arch: str, recipe: dict) -> None:
    """Make ``arch`` trained by ``recipe`` on ``dataset`` the current model, with the
    sidebar's controls set to match (opening a stored run from the run history). A model
    the store has a run of becomes current at once; otherwise it is trained or loaded from
    the zoo and becomes current when done."""
    rec = TrainRecipe.from_dict(recipe)
    _keep("dataset", dataset)
    _keep("source", "zoo")
    _keep(f"arch.{dataset}", arch)
    _keep("recipe", rec.to_dict())
    _keep("method", rec.method)
    old = (_wk("rc_recipe"), _wk("rc_arch"), _wk("rc_source"))
    for k in list(st.session_state):
        if isinstance(k, str) and (k.startswith(old) or k == "rc_dataset_choice"):
            del st.session_state[k]
    st.session_state[_GEN] = st.session_state.get(_GEN, 0) + 1
    ds = state.dataset_by_name(dataset)
    target = Target.zoo(arch, rec)
    record = get_runner().store.get(spec_key(Train().on(target).spec(ds)))
    zoo_key = Train.result(record).zoo_key if record is not None else None
    if record is not None and zoo_key and lookup(zoo_key) is not None:
        _set_zoo_model(ds, arch, rec, record, zoo_key)
        st.session_state.pop("rc_pending", None)
        jobs.forget("model")
    else:
        start_model(ds, arch, rec)


def _upload_controls(ds: Dataset, source: str) -> None:
    arch = None
    if source == "weights":
        archs = ["auto", *compatible_architectures(ds.modality, ds.input_shape)]
        arch = st.selectbox(
            "Architecture of the weights",
            archs,
            index=_kept_index("upload_arch", archs, "auto"),
            key="rc_upload_arch",
            format_func=lambda a: "Detect from the file" if a == "auto" else ARCHITECTURES[a].title,
            help="The built-in architecture these weights were trained with.",
        )
        _keep("upload_arch", arch)
    types = ["pt", "pth"]
    if source == "weights":
        kind = "state_dict saved with torch.save, or safetensors"
        how = "Read as tensors only (the weights-only loader, never unpickled)"
        types = ["pt", "pth", "safetensors"]
    else:
        kind = "torch.onnx.export file"
        how = (
            "Converted to torch layers (onnx2torch) from a fixed set of standard operators; "
            "nothing in the file runs, and a graph with any other operator is refused"
        )
        types = ["onnx"]
    up = st.file_uploader(
        f"Model file ({kind})",
        type=types,
        key=f"rc_model_{source}",
        help=f"{how}; at most {MAX_UPLOAD_MB} MB.",
    )
    if up is None or not st.button(
        "Load model", type="primary", key="rc_load_upload", width="stretch"
    ):
        return
    data = up.getvalue()
    try:
        if source == "weights":
            model = load_user_weights(arch, ds, data, max_bytes=MAX_UPLOAD_MB * 2**20)
            arch = getattr(model, "robustcore_arch", arch)
        else:
            model = load_onnx(data, ds, max_bytes=MAX_UPLOAD_MB * 2**20)
    except RobustcoreError as exc:
        st.error(str(exc))
        return
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = Target.upload(model, digest, arch=arch, label=up.name)
    jobs.start_experiment("model", Train().on(target), ds)
    st.session_state["rc_pending"] = {
        "source": source,
        "arch": arch,
        "dataset": ds.name,
        "label": up.name,
        "model": model,
        "fingerprint": digest,
    }


NO_DEFENSE = "none"
DEFENSE_NOTES = {
    NO_DEFENSE: "Every page attacks the model as it is.",
    "preprocessing": "Every page attacks the model behind these input transforms, with "
    "gradients through them as written (the naive attacker: rounding has no gradient). "
    "The **Input preprocessing** page shows the adaptive attacks (BPDA, EOT) that break it.",
    "smoothing": "Every page attacks the soft smoothed classifier: the average of the "
    "model's probabilities over Gaussian noise of σ (costs that many forward passes per "
    "query). Train the model with input noise of the same σ. The **Certified robustness** "
    "page certifies it.",
}


def _defense_controls() -> None:
    """The inference-time defense in front of the current model (kept across pages and
    model changes until set back to none)."""
    kinds = [NO_DEFENSE, *KINDS]
    kind = st.selectbox(
        "Inference-time defense",
        kinds,
        index=_kept_index("defense", kinds, NO_DEFENSE),
        format_func=lambda k: "None" if k == NO_DEFENSE else KINDS[k][2],
        key=_wk("rc_defense"),
        help="A defense applied when the model is asked, not trained in: every page then "
        "attacks the defended model.",
    )
    _keep("defense", kind)
    st.caption(DEFENSE_NOTES[kind])
    defense = None
    if kind != NO_DEFENSE:
        with st.expander("Defense settings", expanded=False):
            raw = param_values(
                defense_class(kind),
                key=_wk(f"rc_defense_{kind}"),
                values=st.session_state.get(_KEEP + f"defense.{kind}"),
            )
        try:
            defense = InferenceDefense.of(kind, raw)
        except RobustcoreError as exc:
            st.error(str(exc))
            return
        _keep(f"defense.{kind}", defense.config.to_dict())
    ref = state.current_ref()
    if ref is not None and ref.inference != (defense.spec() if defense else None):
        state.set_inference(defense)


def _finish_pending() -> None:
    record = jobs.show("model")
    pending = st.session_state.get("rc_pending")
    if record is None or pending is None:
        return
    source = pending["source"]
    ref = state.ModelRef(
        source=source,
        dataset=pending["dataset"],
        label=record.label or pending.get("label", ""),
        run_key=record.key,
        zoo_key=Train.result(record).zoo_key,
        arch=pending.get("arch"),
        recipe=pending.get("recipe"),
        fingerprint=pending.get("fingerprint"),
        data_fingerprint=record.spec.get("fingerprint"),
    )
    state.set_model(ref, pending.get("model"))
    st.session_state.pop("rc_pending", None)
    jobs.forget("model")


def _autoload_default(ds: Dataset) -> None:
    """On a first visit, reuse the default model if it was trained before (instant)."""
    if st.session_state.get("rc_autoload_done") or state.current_ref() is not None:
        return
    st.session_state["rc_autoload_done"] = True
    if ds.name != DEFAULT_DATASET:
        return
    arch, recipe = default_arch(ds), TrainRecipe()
    record = get_runner().store.get(spec_key(Train().on(Target.zoo(arch, recipe)).spec(ds)))
    zoo_key = Train.result(record).zoo_key if record is not None else None
    if not zoo_key:
        return
    _set_zoo_model(ds, arch, recipe, record, zoo_key)


def model_sidebar() -> None:
    """Draw the dataset/model picker in the sidebar (called once by ``app.py``)."""
    with st.sidebar:
        st.subheader("Data & model")
        ds = _dataset_picker()
        if ds is not None:
            state.drop_if_stale(ds)
            _describe(ds)
            _autoload_default(ds)
            source = st.radio(
                "Model",
                _sources(),
                index=_kept_index("source", _sources(), "zoo"),
                format_func=SOURCES.get,
                key=_wk("rc_source"),
            )
            _keep("source", source)
            if source == "zoo":
                _train_controls(ds)
            else:
                _upload_controls(ds, source)
        _finish_pending()
        if ds is not None:
            state.drop_if_stale(ds)  # a model that finished on data this run replaced
        if state.current_ref() is not None:
            _defense_controls()
        ref = state.current_ref()
        if ref is not None:
            st.success(f"Current model: **{ref.title}**")
        elif ds is not None and state.stale_message(ds.name):
            st.warning(state.stale_message(ds.name))
