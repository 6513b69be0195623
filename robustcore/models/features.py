"""Penultimate-layer activations ("features") of every built-in architecture.

Many attacks and defenses look at what a network computes just before its last linear
layer: the hidden-trigger backdoor (Saha et al. 2020) matches poisons to triggered images
there, activation clustering (Chen et al. 2018) and spectral signatures (Tran et al. 2018)
separate poisoned from clean training points there, and membership or transfer-learning
experiments reuse the same split.

Where the split is, per architecture (see :mod:`robustcore.models.architectures`):

* ``nn.Sequential`` models (``logreg``, ``mlp``, ``small_cnn``, ``lenet5``): everything
  before the **last** ``nn.Linear`` is the *body*, the last ``nn.Linear`` (and anything
  after it) is the *head*. For ``small_cnn`` the features are the 128 ReLU units of the
  hidden dense layer, for ``lenet5`` the 84 units of the second dense layer, for ``mlp``
  the 128 units of the second hidden layer. ``logreg`` has no hidden layer: its features
  are the flattened input.
* :class:`~robustcore.models.architectures.SmallResNet` (``resnet``): stem, residual
  stages and global average pooling are the body (64 features); ``fc`` is the head.

The body and head *share* the model's parameters (no copy): ``head(body(x))`` equals
``model(x)``. Anything else (an own architecture from ONNX, a custom module) raises
:class:`~robustcore.errors.ModelError`, because its layers cannot be read safely.

Example::

    from robustcore.models import train
    from robustcore.models.features import penultimate, split_model

    model = train("small_cnn", ds, epochs=5)
    acts = penultimate(model, ds.x_train)          # (4000, 128) tensor on the CPU
    body, head = split_model(model)                # head(body(x)) == model(x)
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError
from .architectures import SmallResNet

__all__ = ["ResNetBody", "feature_dim", "penultimate", "split_model"]


class ResNetBody(nn.Module):
    """The body of a :class:`SmallResNet`: stem, stages, pooling, flatten (shared modules)."""

    def __init__(self, net: SmallResNet) -> None:
        super().__init__()
        self.stem = net.stem
        self.stages = net.stages
        self.pool = net.pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)


def split_model(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Split ``model`` into ``(body, head)`` at its penultimate layer.

    Args:
        model: a built-in architecture (an ``nn.Sequential`` with at least one
            ``nn.Linear``, or a ``SmallResNet``), trained or not.

    Returns:
        ``body`` maps inputs to the penultimate activations (N, D); ``head`` maps those to
        logits. Both share the model's parameters and keep its train/eval mode.

    Raises:
        ModelError: the model is not one of the built-in architectures.
    """
    if isinstance(model, SmallResNet):
        return ResNetBody(model), model.fc
    if isinstance(model, nn.Sequential) and not isinstance(model, torch.jit.ScriptModule):
        layers = list(model.children())
        linear = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
        if linear:
            i = linear[-1]
            # A model that starts with its only Linear layer sees flat inputs: its
            # features are the (flattened) inputs themselves.
            body = nn.Sequential(*layers[:i]) if i > 0 else nn.Sequential(nn.Flatten())
            head = layers[i] if i == len(layers) - 1 else nn.Sequential(*layers[i:])
            return body, head
    kind = type(model).__name__
    raise ModelError(
        f"Cannot find the penultimate layer of a {kind} model: penultimate features need "
        "one of the built-in architectures (logreg, mlp, small_cnn, lenet5, resnet), "
        "trained here or uploaded as weights (an own architecture from ONNX has no known "
        "penultimate layer)."
    )


def feature_dim(model: nn.Module) -> int:
    """Number of penultimate features (the input size of the model's last linear layer)."""
    _, head = split_model(model)
    last = (
        head
        if isinstance(head, nn.Linear)
        else next(m for m in head.modules() if isinstance(m, nn.Linear))
    )
    return int(last.in_features)


def penultimate(
    model: nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Penultimate activations of ``model`` for ``x``, in batches, without gradients.

    Args:
        model: a built-in architecture (see :func:`split_model`); it is put in eval mode
            for the call and restored afterwards.
        x: inputs shaped like the data (N, ...).
        batch_size: rows per forward pass.
        device: where to compute (default: where the model's parameters are).

    Returns:
        A float32 tensor (N, D) on the CPU.
    """
    body, _ = split_model(model)
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.inference_mode():
            for i in range(0, x.shape[0], batch_size):
                outs.append(body(x[i : i + batch_size].to(device)).float().cpu())
    finally:
        model.train(was_training)
    if not outs:
        return torch.zeros(0, feature_dim(model))
    return torch.cat(outs)
