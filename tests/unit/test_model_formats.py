"""Own models in formats that carry no code: safetensors weights for the built-in
architectures, and own architectures as ONNX converted from a fixed operator set. Hostile
files (custom operators, external data, local functions, garbage) get a typed error with a
plain message; library advice to disable a safety check is never relayed."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import save as save_safetensors

from robustcore.attacks.evasion import FGSM
from robustcore.data import Dataset
from robustcore.errors import ModelError, UploadError
from robustcore.models import load_onnx, load_user_weights, train_entry

MB = 2**20


def _dataset(seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(64) % 3
    x = (torch.rand(64, 1, 12, 12, generator=g) * 0.2).clamp(0, 1)
    x[:, :, :6] += (y.float() / 3).view(-1, 1, 1, 1)
    return Dataset(
        name=f"fmt{seed}", x_train=x, y_train=y, x_test=x[:16].clone(), y_test=y[:16].clone(),
        num_classes=3, class_names=["a", "b", "c"], modality="image",
        bounds=(torch.zeros(1, 12, 12), torch.ones(1, 12, 12)),
    )  # fmt: skip


def _mlp_graph(ops=None, domain: str = "", out: int = 3, **extra) -> bytes:
    """A hand-built ONNX MLP (Flatten, Gemm, Relu, Gemm) on 1×12×12 inputs."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(8, 144)).astype(np.float32), "W1"),
        numpy_helper.from_array(np.zeros(8, np.float32), "B1"),
        numpy_helper.from_array(rng.normal(size=(out, 8)).astype(np.float32), "W2"),
        numpy_helper.from_array(np.zeros(out, np.float32), "B2"),
    ]
    nodes = ops or [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "W1", "B1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"], domain=domain),
        helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out])], inits,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets, **extra)
    return model.SerializeToString()


def test_safetensors_weights_load_like_a_state_dict():
    ds = _dataset(1)
    entry = train_entry("small_cnn", ds, {"epochs": 1})
    state = {k: v.detach().contiguous() for k, v in entry.model.state_dict().items()}
    model = load_user_weights("auto", ds, save_safetensors(state), max_bytes=10 * MB)
    assert model.robustcore_arch == "small_cnn"
    with torch.no_grad():
        assert torch.allclose(model(ds.x_test), entry.model(ds.x_test), atol=1e-6)
    data = save_safetensors(state)
    with pytest.raises(UploadError, match="safetensors file is damaged"):
        load_user_weights("auto", ds, data[: len(data) // 2], max_bytes=10 * MB)


def test_weights_errors_never_relay_torchs_advice():
    ds = _dataset(2)
    buf = io.BytesIO()
    torch.save({"w": torch.nn.Linear(2, 2)}, buf)  # a module object, not tensors
    for data in (buf.getvalue(), b"\x00junk" + buf.getvalue(), b"PK\x03\x04bogus"):
        with pytest.raises(UploadError) as err:
            load_user_weights("mlp", ds, data, max_bytes=MB)
        message = str(err.value)
        assert "weights_only" not in message and "unsafe" not in message.lower()
        assert len(message) < 300 and "state_dict" in message


def test_an_own_architecture_from_onnx_has_gradients():
    ds = _dataset(3)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 3),
    ).eval()  # fmt: skip
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation note
        torch.onnx.export(net, (ds.x_test[:1],), buf, dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "N"}})  # fmt: skip
    model = load_onnx(buf.getvalue(), ds, device=torch.device("cpu"), max_bytes=MB)
    with torch.no_grad():
        assert torch.allclose(model(ds.x_test), net(ds.x_test), atol=1e-5)
    x = ds.x_test.clone().requires_grad_(True)
    model(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    res = FGSM().run(model, ds.x_test, ds.y_test, eps=0.3)
    assert float((res.x_adv - ds.x_test).abs().max()) <= 0.3 + 1e-6
    # The hand-built MLP converts too.
    mlp = load_onnx(_mlp_graph(), ds, device=torch.device("cpu"), max_bytes=MB)
    assert mlp(ds.x_test).shape == (16, 3)


def test_hostile_or_broken_onnx_files_are_refused():
    ds = _dataset(4)
    load = lambda data: load_onnx(data, ds, device=torch.device("cpu"), max_bytes=MB)  # noqa: E731
    with pytest.raises(UploadError, match="com.evil"):
        load(_mlp_graph(domain="com.evil"))
    loop = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("RandomNormalLike", ["f"], ["y"]),
    ]
    with pytest.raises(UploadError, match="outside the accepted set: RandomNormalLike"):
        load(_mlp_graph(ops=loop))
    # A weight kept in an external file: the loader must not read files on the server.
    model = onnx.load_model_from_string(_mlp_graph())
    w = model.graph.initializer[0]
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    w.ClearField("float_data")
    entry = w.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    with pytest.raises(UploadError, match="external files"):
        load(model.SerializeToString())
    # A model-local function.
    fn = helper.make_function("local", "f", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                              [helper.make_opsetid("", 17)])  # fmt: skip
    with pytest.raises(UploadError, match="own functions"):
        load(_mlp_graph(functions=[fn]))
    for junk in (b"not onnx at all", b"\x08\x07"):
        with pytest.raises(UploadError, match="not an ONNX file"):
            load(junk)
    with pytest.raises(UploadError, match="limit"):
        load_onnx(_mlp_graph(), ds, max_bytes=100)
    with pytest.raises(ModelError, match="logits of shape"):
        load(_mlp_graph(out=5))


def test_weights_that_would_be_silently_cast_or_give_nan_are_refused():
    ds = _dataset(5)
    entry = train_entry("mlp", ds, {"epochs": 1})
    good = {k: v.detach().clone() for k, v in entry.model.state_dict().items()}
    key = next(k for k, v in good.items() if v.is_floating_point())

    def saved(state) -> bytes:
        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.getvalue()

    with pytest.raises(ModelError, match="complex numbers"):
        load_user_weights(
            "mlp", ds, saved({**good, key: good[key].to(torch.complex64)}), max_bytes=MB
        )
    with pytest.raises(ModelError, match="needs floating-point weights"):
        load_user_weights("mlp", ds, saved({**good, key: good[key].to(torch.int64)}), max_bytes=MB)
    nan = good[key].clone()
    nan[0] = float("nan")
    with pytest.raises(ModelError, match="NaN or infinite logits"):
        load_user_weights("mlp", ds, saved({**good, key: nan}), max_bytes=MB)
    # An ONNX graph with NaN weights is refused the same way.
    with pytest.raises(ModelError, match="NaN or infinite logits"):
        model = onnx.load_model_from_string(_mlp_graph())
        w = numpy_helper.to_array(model.graph.initializer[0]).copy()
        w[:] = np.nan
        model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "W1"))
        load_onnx(model.SerializeToString(), ds, device=torch.device("cpu"), max_bytes=MB)
