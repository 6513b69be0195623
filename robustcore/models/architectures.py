"""Model architectures. Every model maps a batch shaped like the data to class logits.

* ``logreg`` – multinomial logistic regression: one linear layer on the flattened input.
* ``mlp`` – two hidden ReLU layers (256, 128) on the flattened input.
* ``small_cnn`` – two 3×3 conv blocks (32, 64 channels) with max-pooling and one hidden
  dense layer; the usual "undefended CNN" of MNIST robustness papers, scaled down.
* ``lenet5`` – LeCun et al. 1998, with ReLU and max-pooling (5×5 convolutions).
* ``resnet`` – a small pre-activation-free ResNet (He et al. 2016) with three stages of
  basic blocks (16/32/64 channels), made for 3-channel 32×32 images (CIFAR-10, GTSRB) and
  usable on any image size thanks to global average pooling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ModelError

_init_lock = threading.Lock()


@dataclass(frozen=True)
class ArchInfo:
    name: str
    title: str
    modalities: tuple[str, ...]
    description: str
    build: Callable[[tuple[int, ...], int], nn.Module]
    min_side: int = 1


def _flat_dim(input_shape: tuple[int, ...]) -> int:
    n = 1
    for d in input_shape:
        n *= int(d)
    return n


def logreg(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(_flat_dim(input_shape), num_classes))


def mlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(_flat_dim(input_shape), 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def _conv_out(model_features: nn.Module, input_shape: tuple[int, ...]) -> int:
    with torch.no_grad():
        out = model_features(torch.zeros(1, *input_shape))
    return int(out.numel())


def small_cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    c = input_shape[0]
    # Pooling before the ReLU: relu(max(·)) is max(relu(·)) exactly, with the same
    # gradients, but the ReLU then runs on a quarter of the values.
    features = nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
    )
    n = _conv_out(features, input_shape)
    return nn.Sequential(*features, nn.Linear(n, 128), nn.ReLU(), nn.Linear(128, num_classes))


def lenet5(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    c, h, _ = input_shape
    pad = 2 if h <= 28 else 0
    features = nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=pad),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(6, 16, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
    )
    n = _conv_out(features, input_shape)
    return nn.Sequential(
        *features,
        nn.Linear(n, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (or 1×1) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """ResNet-8 style network: stem, three stages of one basic block, global pooling."""

    def __init__(self, in_channels: int, num_classes: int, widths=(16, 32, 64)) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        blocks = []
        cin = widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, stride=1 if i == 0 else 2))
            cin = w
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return SmallResNet(input_shape[0], num_classes)


ARCHITECTURES: dict[str, ArchInfo] = {
    a.name: a
    for a in (
        ArchInfo(
            "logreg",
            "Logistic regression",
            ("image", "tabular"),
            "One linear layer: the simplest model, convex training.",
            logreg,
        ),
        ArchInfo(
            "mlp",
            "MLP (256-128)",
            ("image", "tabular"),
            "Fully connected network with two hidden ReLU layers.",
            mlp,
        ),
        ArchInfo(
            "small_cnn",
            "Small CNN",
            ("image",),
            "Two conv blocks (32, 64 channels) and a dense layer.",
            small_cnn,
            min_side=4,
        ),
        ArchInfo(
            "lenet5",
            "LeNet-5",
            ("image",),
            "LeCun et al. 1998: two 5×5 conv layers and three dense layers.",
            lenet5,
            min_side=12,
        ),
        ArchInfo(
            "resnet",
            "Small ResNet",
            ("image",),
            "ResNet-8 (He et al. 2016) for 3-channel 32×32 images; slowest on a CPU.",
            resnet,
            min_side=8,
        ),
    )
}


def compatible_architectures(modality: str, input_shape: tuple[int, ...]) -> list[str]:
    """Names of the architectures that can be built for data of this kind and shape."""
    out = []
    for info in ARCHITECTURES.values():
        if modality not in info.modalities:
            continue
        if modality == "image" and min(input_shape[1:]) < info.min_side:
            continue
        out.append(info.name)
    return out


def default_architecture(dataset) -> str:
    """The architecture a new session starts with: ``small_cnn`` for images it fits, else
    ``mlp``, else the first compatible one."""
    archs = compatible_architectures(dataset.modality, dataset.input_shape)
    for preferred in ("small_cnn", "mlp"):
        if preferred in archs:
            return preferred
    return archs[0]


def build_model(
    arch: str, input_shape: tuple[int, ...], num_classes: int, *, seed: int | None = None
) -> nn.Module:
    """Instantiate ``arch`` for inputs of ``input_shape`` and ``num_classes`` outputs.

    With ``seed`` the initial weights are the same on every call (the global random state
    is restored afterwards).

    Raises:
        ModelError: the architecture is unknown or cannot take this input shape.
    """
    if arch not in ARCHITECTURES:
        raise ModelError(f"Unknown architecture {arch!r}. Available: {', '.join(ARCHITECTURES)}.")
    info = ARCHITECTURES[arch]
    modality = "image" if len(input_shape) == 3 else "tabular"
    if arch not in compatible_architectures(modality, tuple(input_shape)):
        raise ModelError(
            f"Architecture {arch!r} does not fit {modality} data of shape {tuple(input_shape)}. "
            f"Use one of: {', '.join(compatible_architectures(modality, tuple(input_shape)))}."
        )
    shape = tuple(int(d) for d in input_shape)
    if seed is None:
        return info.build(shape, int(num_classes))
    with _init_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return info.build(shape, int(num_classes))
