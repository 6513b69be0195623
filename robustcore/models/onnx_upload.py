"""A user's own architecture as an ONNX file, turned into a torch module without running code.

An ONNX file is data: a graph of standard operators and their weights. It is read with the
``onnx`` package and converted by ``onnx2torch`` into a ``torch.fx`` module built from torch
layers, so white-box attacks get real gradients. Before conversion the graph is checked:

- every operator is one of :data:`ALLOWED_OPS` (the layers of feed-forward classifiers:
  convolutions, pooling, normalisation, activations, dense layers, reshaping); anything
  else, and any operator from a custom domain or a model-local function, is refused;
- no tensor may live in external data (which would make the loader read files on the
  server), and the opset is the standard one;
- the size of every intermediate tensor follows from the dataset's input shape (ONNX shape
  inference), and together they fit the upload memory budget for a check batch: a few
  operators of the set (padding, concatenation, broadcasting) can otherwise turn a tiny file
  into a forward pass of any size.

Nothing in the file is executed: there is no pickle, no TorchScript, no Python.
"""

from __future__ import annotations

import logging

from torch import nn

from ..data import Dataset
from ..errors import ModelError, UploadError, shown

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
        named = ", ".join(shown(d) for d in sorted(domains)[:3])
        raise UploadError(
            f"This ONNX file uses operators from {named}; only ONNX's standard operators are "
            "accepted."
        )
    graph = model.graph
    ops = {n.op_type for n in graph.node if n.domain in STANDARD_DOMAINS}
    custom = {n.op_type for n in graph.node if n.domain not in STANDARD_DOMAINS}
    outside = sorted((ops - ALLOWED_OPS) | custom)
    if outside:
        named = ", ".join(shown(o) or "''" for o in outside[:4])
        named += " …" if len(outside) > 4 else ""
        raise UploadError(
            f"This ONNX file uses operators outside the accepted set: {named}. Accepted are "
            "the layers of feed-forward classifiers (convolutions, pooling, normalisation, "
            "activations, dense layers and reshaping)."
        )
    tensors = list(graph.initializer)
    sparse = list(graph.sparse_initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.g.node or attr.graphs:
                raise UploadError("This ONNX file holds sub-graphs; they are not accepted.")
            if attr.HasField("t"):
                tensors.append(attr.t)
            tensors.extend(attr.tensors)
            if attr.HasField("sparse_tensor"):
                sparse.append(attr.sparse_tensor)
            sparse.extend(attr.sparse_tensors)
    for st in sparse:
        tensors += [st.values, st.indices]
    for t in tensors:
        if uses_external_data(t) or t.data_location == TensorProto.EXTERNAL:
            raise UploadError(
                "This ONNX file keeps weights in external files; save it as one file with "
                "every tensor inside (onnx.save with save_as_external_data=False)."
            )


def _numel(value_info) -> int | None:
    """Elements of a tensor whose inferred shape is fully known, else ``None``."""
    if value_info is None or not value_info.type.tensor_type.HasField("shape"):
        return None
    n = 1
    for d in value_info.type.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        n *= d.dim_value
    return n


def check_memory(model, dataset: Dataset, batch: int) -> None:
    """Refuse a graph whose intermediate tensors, for ``batch`` inputs of the dataset's
    shape, would take more than the upload memory budget, sized by ONNX shape inference
    before anything runs; a tensor whose size cannot be inferred is refused too (padding
    computed from the input's values could make it any size).

    Raises:
        ModelError: the graph takes other inputs, or is too large to run or to size.
    """
    import onnx
    from onnx import TensorProto, helper, shape_inference

    from ..limits import size_text, upload_memory_budget

    m = onnx.ModelProto()
    m.CopyFrom(model)
    given = {t.name for t in m.graph.initializer} | {
        t.values.name for t in m.graph.sparse_initializer
    }
    inputs = [i for i in m.graph.input if i.name not in given]
    dims = ", ".join(map(str, dataset.input_shape))
    if len(inputs) != 1:
        raise ModelError(
            f"This ONNX graph takes {len(inputs)} inputs; a classifier takes one, a batch of "
            f"shape (N, {dims})."
        )
    tensor = inputs[0].type.tensor_type
    floats = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)
    if tensor.elem_type not in floats:
        kind = shown(TensorProto.DataType.Name(tensor.elem_type).lower(), 20)
        raise ModelError(
            f"This ONNX graph takes {kind} inputs; the dataset's inputs are float32 images "
            "or features, so export the model with float inputs."
        )
    tensor.shape.ClearField("dim")
    for d in (1, *dataset.input_shape):
        tensor.shape.dim.add().dim_value = d
    del m.graph.value_info[:]
    for out in m.graph.output:
        out.type.tensor_type.ClearField("shape")
    try:
        inferred = shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - any inconsistency in the graph lands here
        logger.info("ONNX shape inference failed: %s", exc)
        raise ModelError(
            f"This ONNX graph does not fit inputs of shape (N, {dims}), the dataset's: its "
            "operators' shapes disagree for them. Export the model for that input shape."
        ) from None
    values = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    per_input = 0
    for node in inferred.graph.node:
        for name in filter(None, node.output):
            n = _numel(values.get(name))
            if n is None:
                raise ModelError(
                    f"The size of this ONNX graph's {shown(node.op_type)} output cannot be "
                    f"worked out from the input shape (N, {dims}), so its memory cannot be "
                    "checked; export the model with fixed sizes apart from the batch."
                )
            elem = values[name].type.tensor_type.elem_type
            try:
                itemsize = helper.tensor_dtype_to_np_dtype(elem).itemsize
            except Exception:  # noqa: BLE001 - an unknown type counts as 8 bytes
                itemsize = 8
            per_input += n * itemsize
    need, budget = per_input * batch, upload_memory_budget()
    if need > budget:
        raise ModelError(
            f"This ONNX graph's intermediate tensors take about {size_text(need)} for a batch "
            f"of {batch} inputs, more than the limit per upload of {size_text(budget)}; "
            "upload a smaller model."
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
    except Exception as exc:  # noqa: BLE001 - an inconsistent graph lands here
        logger.info("ONNX check failed: %s", exc)
        raise UploadError(
            "This ONNX graph is inconsistent or could not be converted to torch layers "
            "(check it with onnx.checker.check_model)."
        ) from None
    check_memory(model, ds, zoo.CHECK_BATCH)
    try:
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
