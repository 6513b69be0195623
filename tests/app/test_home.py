"""AppTest: every listed page runs; the Home page trains, loads, uploads and cancels."""

from __future__ import annotations

import io
import time

import numpy as np
import torch
from helpers.apptest import has_metric, metric, new_app, run_until

from robustcore.ui.shell import PAGES


def test_every_listed_page_runs_without_exception():
    for section, pages in PAGES.items():
        for path, title, _icon in pages:
            at = new_app()
            at.switch_page(path).run()
            assert not at.exception, (section, title, [e.value for e in at.exception])
            assert at.title, f"page {title} shows no title"


def test_home_trains_the_default_model_and_shows_results():
    at = new_app().run()
    assert not at.exception
    assert any("Get started" in i.value for i in at.info)
    # Before training: how long it should take here, from this machine's measured prices.
    captions = [c.value for c in at.sidebar.caption]
    assert any(c.startswith("Time: training should take about") for c in captions), captions
    at.sidebar.button(key="rc_train").click()
    run_until(at, has_metric("Clean test accuracy"))
    assert any("Time: in the model zoo, loads at once" in c.value for c in at.sidebar.caption)
    acc = float(metric(at, "Clean test accuracy").rstrip("%")) / 100
    # Training seeds 0-4 (bench/threshold_spread.py): 0.956-0.965.
    assert acc > 0.9
    assert len(at.get("plotly_chart")) == 3  # training curves, confusion matrix, samples
    assert any("Current model" in s.value for s in at.sidebar.success)
    # A new session finds the default model in the store and shows it at once.
    t0 = time.monotonic()
    again = new_app().run()
    assert has_metric("Clean test accuracy")(again)
    assert time.monotonic() - t0 < 10


def test_training_can_be_cancelled():
    at = new_app().run()
    at.sidebar.selectbox(key="rc_arch").set_value("lenet5")
    at.sidebar.slider(key="rc_recipe.epochs").set_value(60)
    at.sidebar.button(key="rc_train").click().run()
    run_until(
        at,
        lambda a: len(a.sidebar.button) > 0 and any(b.label == "Cancel" for b in a.sidebar.button),
        timeout=30,
    )
    at.sidebar.button(key="rc_cancel.model").click().run()
    run_until(at, lambda a: any("cancelled" in w.value for w in a.sidebar.warning), timeout=60)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_bad_upload_gives_a_clear_message():
    at = new_app().run()
    at.sidebar.selectbox(key="rc_dataset_choice").set_value("__upload__").run()
    at.sidebar.get("file_uploader")[0].upload("junk.npz", b"this is not a zip file").run()
    assert not at.exception
    assert at.sidebar.error, "expected an error message for a corrupt upload"
    missing = _npz(x_train=np.zeros((10, 4), np.float32))
    at.sidebar.get("file_uploader")[0].set_value(("partial.npz", missing, "application/zip"))
    at.run()
    assert any("y_train" in e.value for e in at.sidebar.error)


def test_tabular_upload_trains():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    data = _npz(x_train=x[:240], y_train=y[:240], x_test=x[240:], y_test=y[240:])
    at = new_app().run()
    at.sidebar.selectbox(key="rc_dataset_choice").set_value("__upload__").run()
    at.sidebar.get("file_uploader")[0].upload("blobs.npz", data, "application/zip").run()
    assert not at.sidebar.error
    assert at.sidebar.selectbox(key="rc_arch").options == ["Logistic regression", "MLP (256-128)"]
    at.sidebar.button(key="rc_train").click()
    run_until(at, has_metric("Clean test accuracy"))
    # The default MLP, training seeds 0-4 (bench/threshold_spread.py): 91.7-95.0 % (60 points).
    assert float(metric(at, "Clean test accuracy").rstrip("%")) > 85


def test_a_dataset_uploaded_again_with_new_content_drops_the_old_model():
    """Same file name, different labels: the model trained on the old content is no longer
    the current model, and the page says why instead of scoring it on the new data."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    first = _npz(x_train=x[:240], y_train=y[:240], x_test=x[240:], y_test=y[240:])
    second = _npz(x_train=x[:240], y_train=1 - y[:240], x_test=x[240:], y_test=1 - y[240:])
    at = new_app()
    at.session_state["rc_autoload_done"] = True  # not the default CNN from earlier tests
    at.run()
    at.sidebar.selectbox(key="rc_dataset_choice").set_value("__upload__").run()
    at.sidebar.get("file_uploader")[0].upload("same.npz", first, "application/zip").run()
    at.sidebar.button(key="rc_train").click()
    run_until(at, lambda a: any("same.npz" in s.value for s in a.sidebar.success))
    assert has_metric("Clean test accuracy")(at)
    at.sidebar.get("file_uploader")[0].set_value(("same.npz", second, "application/zip"))
    at.run()
    assert not at.exception
    assert not any("Current model" in s.value for s in at.sidebar.success)
    assert any("changed since" in w.value for w in at.sidebar.warning)
    assert not any(m.label == "Clean test accuracy" for m in at.metric)
    at.switch_page("pages/whitebox.py").run()
    assert not at.exception and not at.metric
    assert any("changed since" in w.value for w in at.warning)


def test_uploaded_weights_are_evaluated(tiny_cnn):
    buf = io.BytesIO()
    torch.save(tiny_cnn.model.state_dict(), buf)
    at = _upload_model("weights", "mine.pt", buf.getvalue(), refused="not a weights file")
    shown = float(metric(at, "Clean test accuracy").rstrip("%")) / 100
    assert abs(shown - tiny_cnn.metrics["test_acc"]) < 0.001
    assert any("no training curves" in i.value for i in at.info)


def _upload_model(source: str, name: str, data: bytes, *, refused: str):
    """A session that first uploads garbage as ``source`` (refused with ``refused``), then
    ``data``, and waits until it is the current model."""
    at = new_app().run()
    at.sidebar.radio(key="rc_source").set_value(source).run()
    at.sidebar.get("file_uploader")[0].upload(name, b"garbage").run()
    at.sidebar.button(key="rc_load_upload").click().run()
    assert any(refused in e.value for e in at.sidebar.error)
    at.sidebar.get("file_uploader")[0].set_value((name, data, "application/x"))
    at.run()
    at.sidebar.button(key="rc_load_upload").click()
    run_until(at, lambda a: any(name in s.value for s in a.sidebar.success))
    return at


def test_an_own_architecture_uploaded_as_onnx_is_evaluated(tiny_cnn, mnist5k):
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation note
        torch.onnx.export(tiny_cnn.model, (mnist5k.x_test[:1],), buf, dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "N"}})  # fmt: skip
    at = _upload_model("onnx", "own.onnx", buf.getvalue(), refused="not an ONNX file")
    shown = float(metric(at, "Clean test accuracy").rstrip("%")) / 100
    assert abs(shown - tiny_cnn.metrics["test_acc"]) < 0.001


def test_a_failing_training_job_shows_the_error_and_stores_no_model(monkeypatch):
    from robustcore.errors import ModelError
    from robustcore.experiments import Target

    def failing_training(self, dataset, progress=None):
        if progress:
            progress(0.1, "starting")
        raise ModelError("Training diverged in epoch 1 (loss is nan). Lower the learning rate.")

    monkeypatch.setattr(Target, "resolve", failing_training)
    at = new_app().run()
    at.sidebar.slider(key="rc_recipe.epochs").set_value(7)
    at.sidebar.button(key="rc_train").click()
    run_until(at, lambda a: bool(a.sidebar.error), timeout=30)
    assert "Lower the learning rate" in at.sidebar.error[0].value
    assert not at.exception
