"""A user's own architecture as an ONNX file, turned into a torch module without running code.

An ONNX file is data: a graph of standard operators and their weights. It is read with the
``onnx`` package and converted by ``onnx2torch`` into a ``torch.fx`` module built from torch
layers, so white-box attacks get real gradients. Before conversion the graph is checked:

- every operator is one of :data:`ALLOWED_OPS` (the layers of feed-forward classifiers:
  convolutions, pooling, normalisation, activations, dense layers, reshaping); anything
  else, and any operator from a custom domain or a model-local function, is refused;
- no tensor may live in external data (which would make the loader read files on the
  server), and the opset is the standard one.

Nothing in the file is executed: there is no pickle, no TorchScript, no Python.
"""

from __future__ import annotations

import logging

from torch import nn

from ..data import Dataset
from ..errors import UploadError

logger = logging.getLogger(__name__)

ALLOWED_OPS: frozenset[str] = frozenset(
    {
        # layers
        "Conv", "Gemm", "MatMul", "BatchNormalization", "InstanceNormalization",
        "LayerNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
        "GlobalMaxPool", "Dropout",
        # activations
        "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Softmax",
        "LogSoftmax", "HardSigmoid", "HardSwish", "Softplus", "Clip", "Gelu",
        # arithmetic
        "Add", "Sub", "Mul", "Div", "Neg", "Sqrt", "Pow", "ReduceMean", "ReduceSum",
        # shapes
        "Flatten", "Reshape", "Transpose", "Concat", "Squeeze", "Unsqueeze", "Identity",
        "Constant", "Shape", "Gather", "Pad", "Cast",
    }
)  # fmt: skip
"""The operators a converted model may use (ONNX's standard domain)."""

STANDARD_DOMAINS = ("", "ai.onnx")


def check_graph(model) -> None:
    """Refuse a parsed ONNX model that uses anything outside the fixed operator set.

    Raises:
        UploadError: an operator outside :data:`ALLOWED_OPS` or outside the standard
            domain, model-local functions, sub-graphs, or tensors in external files.
    """
    from onnx import TensorProto
    from onnx.external_data_helper import uses_external_data

    if list(model.functions):
        raise UploadError(
            "This ONNX file defines its own functions; only standard operators are accepted."
        )
    domains = {o.domain for o in model.opset_import} - set(STANDARD_DOMAINS)
    if domains:
        raise UploadError(
            f"This ONNX file uses operators from {', '.join(sorted(domains))[:200]}; only "
            "ONNX's standard operators are accepted."
        )
    graph = model.graph
    ops = {n.op_type for n in graph.node if n.domain in STANDARD_DOMAINS}
    custom = {n.op_type for n in graph.node if n.domain not in STANDARD_DOMAINS}
    outside = sorted((ops - ALLOWED_OPS) | custom)
    if outside:
        shown = ", ".join(o[:40] for o in outside[:8]) + (" …" if len(outside) > 8 else "")
        raise UploadError(
            f"This ONNX file uses operators outside the accepted set: {shown}. Accepted are "
            "the layers of feed-forward classifiers (convolutions, pooling, normalisation, "
            "activations, dense layers and reshaping)."
        )
    tensors = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.g.node or attr.graphs:
                raise UploadError("This ONNX file holds sub-graphs; they are not accepted.")
            if attr.HasField("t"):
                tensors.append(attr.t)
    for t in tensors:
        if uses_external_data(t) or t.data_location == TensorProto.EXTERNAL:
            raise UploadError(
                "This ONNX file keeps weights in external files; save it as one file with "
                "every tensor inside (onnx.save with save_as_external_data=False)."
            )


def load_onnx(data: bytes, dataset: Dataset | str, *, device=None, max_bytes: int) -> nn.Module:
    """An ONNX classifier (the dataset's inputs to logits) as a frozen torch module.

    Raises:
        UploadError: not ONNX, too large, or a graph outside the accepted operator set.
        ModelError: the converted model does not map the dataset's inputs to logits.
    """
    from . import zoo

    zoo._check_size(data, max_bytes)
    ds = zoo._resolve_dataset(dataset)
    try:
        import onnx
        from onnx2torch import convert
    except ImportError:  # pragma: no cover - both are in requirements.txt
        raise UploadError("ONNX support is not installed on this server.") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - any malformed protobuf lands here
        logger.info("ONNX upload refused: %s", exc)
        raise UploadError("This is not an ONNX file (save one with torch.onnx.export).") from None
    if not model.graph.node:
        raise UploadError("This is not an ONNX file (save one with torch.onnx.export).")
    check_graph(model)
    try:
        onnx.checker.check_model(model)
        module = convert(model)
    except Exception as exc:  # noqa: BLE001 - an inconsistent graph lands here
        logger.info("ONNX conversion failed: %s", exc)
        raise UploadError(
            "This ONNX graph is inconsistent or could not be converted to torch layers "
            "(check it with onnx.checker.check_model)."
        ) from None
    device = device or zoo.get_device()
    module = zoo._freeze(module, device)
    zoo._check_outputs(module, ds, device)
    return module
