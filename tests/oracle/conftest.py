"""The peer libraries the oracle tests compare against.

torchattacks and the Adversarial Robustness Toolbox come from ``bench/requirements.txt``
and ``bench/requirements-nodeps.txt``, which CI installs. Without them these tests are
skipped locally and fail under CI (``CI`` set), like the browser tests without Chromium.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

INSTALL = (
    "python -m pip install -r bench/requirements.txt && "
    "python -m pip install --no-deps -r bench/requirements-nodeps.txt"
)


def _peer(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        msg = f"{module} is not installed ({exc}); the oracle tests need it: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def torchattacks() -> ModuleType:
    return _peer("torchattacks")


@pytest.fixture(scope="session")
def art_evasion() -> ModuleType:
    """``art.attacks.evasion``."""
    return _peer("art.attacks.evasion")


@pytest.fixture(scope="session")
def art_classifier():
    """A function wrapping a PyTorch model into ART's PyTorchClassifier on the CPU."""
    classification = _peer("art.estimators.classification")

    def wrap(model, input_shape, num_classes: int):
        from torch import nn

        return classification.PyTorchClassifier(
            model=model,
            loss=nn.CrossEntropyLoss(),
            input_shape=tuple(input_shape),
            nb_classes=num_classes,
            clip_values=(0.0, 1.0),
            device_type="cpu",
        )

    return wrap


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Run the oracle tests on one CPU thread, then restore the setting.

    Their batches are small (16-64 MNIST images), where intra-op threads add little, and on
    a busy machine (CI runners, several jobs on two cores) the waiting threads made the
    C&W comparison 15-20× slower (measured: 74 s instead of 4.6 s for robustcore's part).
    Both libraries run in the same process, so they see the same setting.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
