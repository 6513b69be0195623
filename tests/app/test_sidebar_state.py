"""AppTest: the sidebar's choices (dataset, model source, architecture, training recipe) are
still there after switching to another page; Streamlit would otherwise reset them."""

from __future__ import annotations

from helpers.apptest import new_app


def test_sidebar_choices_survive_page_switches():
    at = new_app()
    at.session_state["rc_autoload_done"] = True  # no default model from earlier tests
    at.run()
    at.sidebar.selectbox(key="rc_arch").set_value("mlp").run()
    at.sidebar.slider(key="rc_recipe.epochs").set_value(3).run()
    at.switch_page("pages/whitebox.py").run()
    assert not at.exception
    assert at.sidebar.selectbox(key="rc_arch").value == "mlp"
    assert at.sidebar.slider(key="rc_recipe.epochs").value == 3

    at.sidebar.selectbox(key="rc_dataset_choice").set_value("digits").run()
    at.sidebar.radio(key="rc_source").set_value("weights").run()
    at.switch_page("pages/blackbox.py").run()
    assert not at.exception
    assert at.sidebar.selectbox(key="rc_dataset_choice").value == "digits"
    assert at.sidebar.radio(key="rc_source").value == "weights"
    at.sidebar.radio(key="rc_source").set_value("zoo").run()
    at.switch_page("pages/home.py").run()
    assert at.sidebar.radio(key="rc_source").value == "zoo"
    assert at.sidebar.slider(key="rc_recipe.epochs").value == 3


def test_the_model_sources_carry_no_code():
    """Weights (state_dict or safetensors) and ONNX only: no TorchScript, no pickle."""
    at = new_app()
    at.session_state["rc_autoload_done"] = True
    at.run()
    assert not at.exception
    assert at.sidebar.radio(key="rc_source").options == [
        "Train a built-in architecture",
        "Upload weights (state_dict .pt or .safetensors)",
        "Upload your own architecture (ONNX)",
    ]


def test_an_inference_time_defense_stays_on_the_current_model_across_pages():
    from helpers.apptest import trained_app

    at = trained_app()
    assert at.sidebar.selectbox(key="rc_defense").value == "none"
    at.sidebar.selectbox(key="rc_defense").set_value("smoothing").run()
    assert not at.exception, [e.value for e in at.exception]
    ref = at.session_state["rc_model_ref"]
    assert ref.inference["kind"] == "smoothing" and ref.inference["sigma"] == 0.25
    assert any("smoothing σ=0.25" in s.value for s in at.sidebar.success)
    assert any("without its inference-time defense" in c.value for c in at.caption)  # Home
    at.switch_page("pages/whitebox.py").run()
    assert not at.exception
    assert at.session_state["rc_model_ref"].inference["kind"] == "smoothing"
    assert at.sidebar.selectbox(key="rc_defense").value == "smoothing"
    at.sidebar.selectbox(key="rc_defense").set_value("none").run()
    assert at.session_state["rc_model_ref"].inference is None
