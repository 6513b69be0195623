"""Poisoning sanitization: find poisoned training points in a trained model's activations.

Two detectors, both working class by class on the penultimate activations of the model
trained on the (possibly poisoned) data (see :mod:`robustcore.models.features`):

* **Activation clustering** (Chen et al. 2018, "Detecting Backdoor Attacks on Deep Neural
  Networks by Activation Clustering"): reduce each class's activations to a few
  dimensions (PCA by default; ICA as in the paper), split them with 2-means, and flag a cluster
  as poison by its *relative size* (poisons are a minority of their label, so the smaller
  cluster is flagged when it holds at most ``size_threshold`` of the class) or by its
  *silhouette score* (the class splits cleanly in two: flag the smaller cluster when the
  score is at least ``silhouette_threshold``).
* **Spectral signatures** (Tran, Li & Madry 2018, "Spectral Signatures in Backdoor
  Attacks"): center each class's activations, take the top right singular vector and
  score each point by its squared projection on it; remove the ``multiplier × ε × n``
  highest-scoring points of every class, ``ε`` being the expected poison fraction.

:func:`detection_scores` compares the flagged set with the true poison indices (precision,
recall); :func:`remove_flagged` gives the cleaned dataset to retrain on, and
:func:`sanitize_and_retrain` runs the whole experiment through the model zoo.

Example::

    from robustcore.defenses.sanitize import ActivationClustering, detect, detection_scores
    from robustcore.models.features import penultimate

    acts = penultimate(poisoned_model, poisoned.dataset.x_train)
    found = detect(acts, poisoned.dataset.y_train, ActivationClustering())
    detection_scores(found.flagged, poisoned.is_poison)   # {"precision": ..., "recall": ...}
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data.dataset import Dataset
from ..errors import ValidationError
from ..params import Configurable, param

__all__ = [
    "ActivationClustering",
    "Detection",
    "SpectralSignatures",
    "activation_clustering",
    "detect",
    "detection_scores",
    "project_2d",
    "remove_flagged",
    "sanitize_and_retrain",
    "spectral_signatures",
]

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class ActivationClustering(Configurable):
    """Activation clustering (Chen et al. 2018)."""

    name = "activation_clustering"
    title = "Activation clustering"
    paper = "Chen et al. 2018, Detecting Backdoor Attacks on DNNs by Activation Clustering"

    reduce: str = param(
        "pca",
        choices=("pca", "ica"),
        help="How activations are reduced before 2-means: PCA, or ICA as in the paper "
        "(on MNIST, PCA separates the poisons far better; see the README).",
    )
    n_components: int = param(
        10, low=2, high=64, step=1, label="Dimensions", help="Dimensions kept before 2-means."
    )
    rule: str = param(
        "size",
        choices=("size", "silhouette"),
        help="size: flag the smaller cluster when it holds at most the size threshold of its "
        "class; silhouette: flag the smaller cluster when the 2-way split is clean "
        "(silhouette score at least the threshold).",
    )
    size_threshold: float = param(
        0.35,
        low=0.01,
        high=0.5,
        step=0.01,
        help="Largest share of a class the smaller cluster may hold to be called poison.",
    )
    silhouette_threshold: float = param(
        0.15,
        low=-1.0,
        high=1.0,
        step=0.01,
        help="Smallest silhouette score (−1…1) of a split that counts as a real split.",
    )
    seed: int = param(0, low=0, high=2**31 - 1, step=1, help="Seed of ICA and 2-means.")


@dataclass(frozen=True)
class SpectralSignatures(Configurable):
    """Spectral signatures (Tran, Li & Madry 2018)."""

    name = "spectral_signatures"
    title = "Spectral signatures"
    paper = "Tran, Li & Madry 2018, Spectral Signatures in Backdoor Attacks (NeurIPS)"

    expected_rate: float = param(
        0.1,
        low=0.001,
        high=0.5,
        step=0.01,
        label="Expected poison share ε",
        help="The share of a class you expect to be poisoned (an upper estimate).",
    )
    multiplier: float = param(
        1.5,
        low=0.1,
        high=5.0,
        step=0.1,
        help="Remove multiplier × ε × (class size) points per class; the paper uses 1.5.",
    )


@dataclass
class Detection:
    """Which training points a detector flags.

    Attributes:
        method: ``activation_clustering`` or ``spectral_signatures``.
        flagged: bool (N,), True for points judged poisoned.
        cluster: int (N,): for activation clustering the point's cluster within its class
            (1 = the smaller cluster, 0 = the larger); for spectral signatures 1 for removed
            points, 0 for kept ones.
        score: float (N,): spectral signatures' outlier score; for activation clustering
            the distance to the own cluster's centre minus the distance to the other's
            (positive = closer to the other cluster).
        per_class: one row per class: size, smaller cluster's share, silhouette score (AC),
            how many points were flagged.
    """

    method: str
    flagged: torch.Tensor
    cluster: torch.Tensor
    score: torch.Tensor
    per_class: pd.DataFrame


def _check_inputs(acts: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if acts.dim() != 2:
        raise ValidationError(f"Activations must be a 2-D (N, D) tensor, got {tuple(acts.shape)}.")
    if labels.shape != (acts.shape[0],):
        raise ValidationError(
            f"Need one label per activation row: {acts.shape[0]} rows but labels shaped "
            f"{tuple(labels.shape)}."
        )
    return acts.detach().float().cpu(), labels.detach().long().cpu()


def _reduce(x: np.ndarray, method: str, k: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA, FastICA

    k = max(1, min(k, x.shape[0] - 1, x.shape[1]))
    if method == "pca":
        return PCA(n_components=k, random_state=seed).fit_transform(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FastICA convergence chatter on tiny classes
        return FastICA(
            n_components=k, random_state=seed, whiten="arbitrary-variance", max_iter=400
        ).fit_transform(x)


def activation_clustering(
    acts: torch.Tensor, labels: torch.Tensor, config: ActivationClustering | None = None
) -> Detection:
    """Flag poisons class by class with 2-means on reduced activations (Chen et al. 2018).

    Args:
        acts: penultimate activations of the training points (N, D).
        labels: their (possibly poisoned) training labels (N,).
        config: reduction, flagging rule and thresholds.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    config = config or ActivationClustering()
    acts, labels = _check_inputs(acts, labels)
    n = acts.shape[0]
    flagged = torch.zeros(n, dtype=torch.bool)
    cluster = torch.zeros(n, dtype=torch.long)
    score = torch.zeros(n)
    rows = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        row: dict[str, Any] = {"class": c, "size": int(idx.numel())}
        x = acts[idx].numpy().astype(np.float64)
        if idx.numel() < 4 or float(np.ptp(x, axis=0).max()) == 0.0:
            # Too few points, or all identical: nothing to split.
            rows.append({**row, "smaller_share": np.nan, "silhouette": np.nan, "flagged": 0})
            continue
        red = _reduce(x, config.reduce, config.n_components, config.seed)
        km = KMeans(n_clusters=2, n_init=4, random_state=config.seed).fit(red)
        assign = km.labels_.astype(np.int64)
        sizes = np.bincount(assign, minlength=2)
        smaller = int(np.argmin(sizes))
        share = float(sizes[smaller] / sizes.sum())
        sil = float(silhouette_score(red, assign)) if sizes.min() > 0 else float("nan")
        if config.rule == "size":
            poison = share <= config.size_threshold
        else:
            poison = bool(sil >= config.silhouette_threshold)
        is_small = torch.from_numpy(assign == smaller)
        cluster[idx] = is_small.long()
        d = np.linalg.norm(red[:, None, :] - km.cluster_centers_[None, :, :], axis=2)
        own = d[np.arange(len(assign)), assign]
        other = d[np.arange(len(assign)), 1 - assign]
        score[idx] = torch.from_numpy((own - other).astype(np.float32))
        if poison:
            flagged[idx[is_small]] = True
        rows.append(
            {
                **row,
                "smaller_share": share,
                "silhouette": sil,
                "flagged": int(is_small.sum()) if poison else 0,
            }
        )
    return Detection("activation_clustering", flagged, cluster, score, pd.DataFrame(rows))


def spectral_signatures(
    acts: torch.Tensor, labels: torch.Tensor, config: SpectralSignatures | None = None
) -> Detection:
    """Flag the top-scoring points of each class along its top singular vector (Tran et al.).

    Args:
        acts: penultimate activations of the training points (N, D).
        labels: their (possibly poisoned) training labels (N,).
        config: expected poison share and removal multiplier.
    """
    config = config or SpectralSignatures()
    acts, labels = _check_inputs(acts, labels)
    n = acts.shape[0]
    flagged = torch.zeros(n, dtype=torch.bool)
    score = torch.zeros(n)
    rows = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        x = acts[idx].double()
        centred = x - x.mean(0, keepdim=True)
        if idx.numel() < 2 or float(centred.abs().max()) == 0.0:
            rows.append({"class": c, "size": int(idx.numel()), "flagged": 0})
            continue
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        s = (centred @ vh[0]) ** 2
        score[idx] = s.float()
        k = min(idx.numel(), int(round(config.multiplier * config.expected_rate * idx.numel())))
        if k:
            top = torch.topk(s, k).indices
            flagged[idx[top]] = True
        rows.append({"class": c, "size": int(idx.numel()), "flagged": int(k)})
    return Detection("spectral_signatures", flagged, flagged.long(), score, pd.DataFrame(rows))


def detect(
    acts: torch.Tensor,
    labels: torch.Tensor,
    config: ActivationClustering | SpectralSignatures,
) -> Detection:
    """Run the detector that ``config`` declares."""
    if isinstance(config, ActivationClustering):
        return activation_clustering(acts, labels, config)
    if isinstance(config, SpectralSignatures):
        return spectral_signatures(acts, labels, config)
    raise ValidationError(
        f"Unknown detector configuration {type(config).__name__}: expected "
        "ActivationClustering or SpectralSignatures."
    )


def detection_scores(flagged: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Precision, recall and F1 of the flagged set against the true poison mask.

    Precision is the share of flagged points that are poisons (NaN when nothing is
    flagged); recall is the share of poisons that were flagged (NaN without poisons).
    """
    flagged = flagged.bool().cpu()
    truth = truth.bool().cpu()
    if flagged.shape != truth.shape:
        raise ValidationError(
            f"flagged and truth must have the same shape, got {tuple(flagged.shape)} and "
            f"{tuple(truth.shape)}."
        )
    tp = int((flagged & truth).sum())
    n_flag = int(flagged.sum())
    n_true = int(truth.sum())
    precision = tp / n_flag if n_flag else float("nan")
    recall = tp / n_true if n_true else float("nan")
    f1 = (
        2 * precision * recall / (precision + recall)
        if n_flag and n_true and (precision + recall) > 0
        else float("nan")
    )
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_flagged": n_flag,
        "n_poison": n_true,
        "true_positives": tp,
    }


def remove_flagged(ds: Dataset, flagged: torch.Tensor) -> Dataset:
    """``ds`` without the flagged training points (name ``<name>+sanitized``)."""
    keep = ~flagged.bool().cpu()
    if keep.shape != (ds.n_train,):
        raise ValidationError(
            f"The flag mask has {keep.numel()} entries but the training set has {ds.n_train}."
        )
    if not bool(keep.any()):
        raise ValidationError("The detector flagged every training point: nothing left to train.")
    return dataclasses.replace(
        ds,
        name=f"{ds.name}+sanitized",
        x_train=ds.x_train[keep],
        y_train=ds.y_train[keep],
        _fingerprint=None,
    )


def project_2d(acts: torch.Tensor) -> torch.Tensor:
    """The first two principal components of ``acts`` (N, D) → (N, 2), for plotting."""
    x = acts.detach().float().cpu()
    if x.shape[0] == 0:
        return torch.zeros(0, 2)
    centred = x - x.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    out = centred @ vh[:2].T
    if out.shape[1] < 2:
        out = torch.cat([out, torch.zeros(out.shape[0], 2 - out.shape[1])], dim=1)
    return out


def sanitize_and_retrain(
    poisoned: Any,
    poisoned_model: nn.Module,
    arch: str,
    recipe: Any,
    config: ActivationClustering | SpectralSignatures,
    *,
    evaluate: Callable[[nn.Module], dict[str, float]],
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Detect poisons with ``config``, retrain ``arch`` on the cleaned set, measure again.

    Args:
        poisoned: a :class:`~robustcore.attacks.poisoning.PoisonedData`.
        poisoned_model: the model trained on ``poisoned.dataset`` (its activations are used).
        arch, recipe: how the retrained model is trained (through the model zoo).
        config: the detector.
        evaluate: ``model -> {"clean_accuracy": ..., "attack_success": ...}``.
        progress: ``progress(fraction, message)``; may raise to cancel.

    Returns:
        ``detection`` (:class:`Detection`), ``scores`` (:func:`detection_scores`),
        ``activations`` (N, D), ``cleaned`` (the dataset), ``model`` (retrained on it; the
        poisoned model itself when nothing was flagged), ``after`` (its metrics),
        ``seconds``.
    """
    from ..models import train_entry
    from ..models.features import penultimate

    t0 = time.perf_counter()
    ds = poisoned.dataset
    if progress:
        progress(0.0, "computing activations of the training set")
    acts = penultimate(poisoned_model, ds.x_train)
    if progress:
        progress(0.05, f"running {config.title.lower()}")
    found = detect(acts, ds.y_train, config)
    scores = detection_scores(found.flagged, poisoned.is_poison)
    if not bool(found.flagged.any()):
        # Nothing removed: the "retrained" model is the poisoned one (no need to train it again).
        cleaned, model = ds, poisoned_model
    else:
        cleaned = remove_flagged(ds, found.flagged)
        extra = {"poisoning": poisoned.description, "sanitize": {config.name: config.to_dict()}}
        model = train_entry(
            arch,
            cleaned,
            recipe,
            extra=extra,
            progress=(lambda f, m: progress(0.1 + 0.85 * f, f"retraining on the cleaned set · {m}"))
            if progress
            else None,
        ).model
    after = evaluate(model)
    return {
        "detection": found,
        "scores": scores,
        "activations": acts,
        "cleaned": cleaned,
        "model": model,
        "after": after,
        "seconds": time.perf_counter() - t0,
    }
