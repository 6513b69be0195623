"""Architectures, the training loop and the on-disk model zoo."""

from .architectures import (
    ARCHITECTURES,
    ArchInfo,
    build_model,
    compatible_architectures,
    default_architecture,
)
from .onnx_upload import load_onnx
from .training import TrainRecipe, evaluate, fit, predict_logits
from .zoo import (
    ZooEntry,
    list_zoo,
    load_user_weights,
    lookup,
    model_accuracy,
    recipe_key,
    train,
    train_entry,
)

__all__ = [
    "ARCHITECTURES",
    "ArchInfo",
    "TrainRecipe",
    "ZooEntry",
    "build_model",
    "compatible_architectures",
    "default_architecture",
    "evaluate",
    "fit",
    "list_zoo",
    "load_onnx",
    "load_user_weights",
    "lookup",
    "model_accuracy",
    "predict_logits",
    "recipe_key",
    "train",
    "train_entry",
]
