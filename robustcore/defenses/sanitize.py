"""Poisoning sanitization: find poisoned training points in a trained model's activations.

Two detectors, both working class by class on the penultimate activations of the model
trained on the (possibly poisoned) data (see :mod:`robustcore.models.features`):

* **Activation clustering** (Chen et al. 2018, "Detecting Backdoor Attacks on Deep Neural
  Networks by Activation Clustering"): split each class's activations in two with 2-means
  after reducing them to a few dimensions (ICA as in the paper, PCA, or both, keeping the
  split the activations support best), and call the smaller cluster poison when it is a
  clear minority of its class (*relative size*) and the split is real (*silhouette score*
  of the split, measured on the activations themselves). A decision that lies within
  ``margin`` of a threshold is reported as *marginal* instead of being acted on: such a
  decision can flip on another CPU's arithmetic. :func:`sanitize_and_retrain` then asks the
  paper's second opinion, *exclusionary reclassification*: a model trained without the
  suspect clusters classifies them; a cluster it mostly gives to another class is poison.
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
from ..progress import ProgressFn, scaled

__all__ = [
    "ActivationClustering",
    "Detection",
    "SpectralSignatures",
    "activation_clustering",
    "detect",
    "detection_scores",
    "exclusionary_reclassification",
    "project_2d",
    "remove_flagged",
    "sanitize_and_retrain",
    "spectral_signatures",
]


@dataclass(frozen=True)
class ActivationClustering(Configurable):
    """Activation clustering (Chen et al. 2018), with margins and a second opinion.

    Each class's penultimate activations are reduced, split in two by 2-means (best of
    ``n_init`` initialisations) and the split is judged by the smaller cluster's share of
    the class and by the split's silhouette score on the (unreduced) activations.
    """

    name = "activation_clustering"
    title = "Activation clustering"
    paper = "Chen et al. 2018, Detecting Backdoor Attacks on DNNs by Activation Clustering"

    reduce: str = param(
        "best",
        choices=("best", "ica", "pca"),
        help="How activations are reduced before 2-means: ICA as in the paper, PCA, or best "
        "(both, keeping the split with the higher silhouette on the activations).",
    )
    n_components: int = param(
        10, low=2, high=64, step=1, label="Dimensions", help="Dimensions kept before 2-means."
    )
    n_init: int = param(
        10,
        low=1,
        high=50,
        step=1,
        label="2-means initialisations",
        help="2-means starts this many times and keeps the split with the lowest inertia.",
    )
    rule: str = param(
        "size+silhouette",
        choices=("size+silhouette", "size", "silhouette"),
        help="size: the smaller cluster holds at most the size threshold of its class; "
        "silhouette: the split is clean (silhouette at least its threshold); "
        "size+silhouette (ART's default analysis): both.",
    )
    size_threshold: float = param(
        0.35,
        low=0.01,
        high=0.5,
        step=0.01,
        help="Largest share of a class the smaller cluster may hold to be called poison "
        "(0.35 in Chen et al.'s and ART's implementation).",
    )
    silhouette_threshold: float = param(
        0.25,
        low=-1.0,
        high=1.0,
        step=0.01,
        help="Smallest silhouette score (−1…1) of a split that counts as real structure "
        "(below 0.25: 'no substantial structure', Kaufman & Rousseeuw 1990).",
    )
    margin: float = param(
        0.03,
        low=0.0,
        high=0.2,
        step=0.01,
        help="A share or silhouette within this distance of its threshold makes the decision "
        "marginal: it is reported and the cluster kept (unless the second opinion decides).",
    )
    second_opinion: str = param(
        "report",
        choices=("report", "decides", "none"),
        help="Exclusionary reclassification (Chen et al.) of each marginal cluster: a model "
        "trained without it says whether it looks like its own class. report: its verdict is "
        "shown and the cluster kept; decides: the cluster is removed when the verdict is "
        "clearly poison; none: no extra model is trained and marginal clusters are kept.",
    )
    reclass_threshold: float = param(
        1.0,
        low=0.01,
        high=100.0,
        step=0.1,
        label="Reclassification threshold T",
        help="Exclusionary reclassification calls a cluster poison when (points classified as "
        "their label) / (points given to the most common other class) is below T; a marginal "
        "cluster is removed only below T/2 (between T/2 and 2T the second opinion is itself "
        "too close to call, and the cluster is kept).",
    )
    seed: int = param(0, low=0, high=2**31 - 1, step=1, help="Seed of 2-means.")


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
        per_class: one row per class: size, smaller cluster's share, silhouette score,
            the reduction whose split was kept and the decision (AC), how many points were
            flagged.
        marginal: bool (N,), True for the points of clusters whose decision was marginal
            (activation clustering; never set by spectral signatures). They are not in
            ``flagged``; :func:`exclusionary_reclassification` judges them.
    """

    method: str
    flagged: torch.Tensor
    cluster: torch.Tensor
    score: torch.Tensor
    per_class: pd.DataFrame
    marginal: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.marginal is None:
            self.marginal = torch.zeros_like(self.flagged)


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
    """Reduce one class's activations (n, D) to ``k`` dimensions.

    ``pca``: the first ``k`` principal components. ``ica``: the paper's ICA. Independent
    components with unit variance are a *rotation* of the whitened principal components,
    and 2-means only sees Euclidean distances, which a rotation keeps; so the split on the
    ICA components is the split on the whitened components, computed here directly. That
    is deterministic, where FastICA's iterations landed on a different split when 1e-5
    relative noise was added to the activations (see the stability test).
    """
    from sklearn.decomposition import PCA

    k = max(1, min(k, x.shape[0] - 1, x.shape[1]))
    return PCA(n_components=k, whiten=(method == "ica"), random_state=seed).fit_transform(x)


@dataclass
class _Split:
    method: str
    assign: np.ndarray  # 0/1 per point
    dist: np.ndarray  # (n, 2) distances to the two centres in the reduced space
    silhouette: float  # of the split, on the activations
    share: float  # the smaller cluster's share of the class

    @property
    def small(self) -> np.ndarray:
        return self.assign == int(np.argmin(np.bincount(self.assign, minlength=2)))


def _splits(x: np.ndarray, config: ActivationClustering) -> list[_Split]:
    """The 2-means splits of one class that the activations support best.

    With ``reduce="best"`` the ICA and the PCA split are both computed and judged by their
    silhouette on the activations; every split within ``margin`` of the best one is kept,
    because choosing between two splits whose quality differs by less than that would
    itself be a decision that rounding can flip. Sorted best first; empty when every
    reduction put all points in one cluster.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    methods = ("ica", "pca") if config.reduce == "best" else (config.reduce,)
    out: list[_Split] = []
    # One BLAS/OpenMP thread: a class is a few hundred points, and on a busy 2-core server
    # spinning OpenMP threads made this 20x slower (measured while training ran alongside).
    with threadpool_limits(limits=1):
        for method in methods:
            red = _reduce(x, method, config.n_components, config.seed)
            km = KMeans(n_clusters=2, n_init=config.n_init, random_state=config.seed).fit(red)
            assign = km.labels_.astype(np.int64)
            sizes = np.bincount(assign, minlength=2)
            if sizes.min() == 0:
                continue
            d = np.linalg.norm(red[:, None, :] - km.cluster_centers_[None, :, :], axis=2)
            sil = float(silhouette_score(x, assign))
            out.append(_Split(method, assign, d, sil, float(sizes.min() / sizes.sum())))
    out.sort(key=lambda sp: -sp.silhouette)
    return [sp for sp in out if sp.silhouette >= out[0].silhouette - config.margin]


def _decide(share: float, sil: float, config: ActivationClustering) -> str:
    """``poison``, ``clean`` or ``marginal`` for one class's split (see ``margin``)."""
    m = config.margin
    size = (
        "poison"
        if share <= config.size_threshold - m
        else ("clean" if share > config.size_threshold + m else "marginal")
    )
    silh = (
        "poison"
        if sil >= config.silhouette_threshold + m
        else ("clean" if sil < config.silhouette_threshold - m else "marginal")
    )
    if config.rule == "size":
        return size
    if config.rule == "silhouette":
        return silh
    if "clean" in (size, silh):
        return "clean"
    return "poison" if size == silh == "poison" else "marginal"


def activation_clustering(
    acts: torch.Tensor, labels: torch.Tensor, config: ActivationClustering | None = None
) -> Detection:
    """Flag poisons class by class with 2-means on reduced activations (Chen et al. 2018).

    A cluster is flagged only when its decision is clear; a marginal one (share or
    silhouette within ``config.margin`` of its threshold) is reported in ``per_class`` and
    marked in ``Detection.marginal``, for :func:`exclusionary_reclassification` to decide.

    Args:
        acts: penultimate activations of the training points (N, D).
        labels: their (possibly poisoned) training labels (N,).
        config: reduction, flagging rule, thresholds and margin.
    """
    config = config or ActivationClustering()
    acts, labels = _check_inputs(acts, labels)
    n = acts.shape[0]
    flagged = torch.zeros(n, dtype=torch.bool)
    marginal = torch.zeros(n, dtype=torch.bool)
    cluster = torch.zeros(n, dtype=torch.long)
    score = torch.zeros(n)
    rows = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        row: dict[str, Any] = {"class": c, "size": int(idx.numel())}
        # float64: the split must not depend on float32 rounding (see the stability test).
        x = acts[idx].numpy().astype(np.float64)
        splits = (
            _splits(x, config) if idx.numel() >= 4 and float(np.ptp(x, axis=0).max()) > 0 else []
        )
        if not splits:
            # Too few points, all identical, or no reduction splits them: nothing to judge.
            rows.append(
                {
                    **row,
                    "reduce": "",
                    "smaller_share": np.nan,
                    "silhouette": np.nan,
                    "decision": "too small" if idx.numel() < 4 else "clean",
                    "flagged": 0,
                }
            )
            continue
        decisions = [_decide(sp.share, sp.silhouette, config) for sp in splits]
        decision = next((d for d in ("poison", "marginal") if d in decisions), "clean")
        # The points that every equally good split with this decision isolates (the union).
        chosen = [sp for sp, d in zip(splits, decisions, strict=True) if d == decision]
        best = chosen[0]
        member = torch.from_numpy(np.logical_or.reduce([sp.small for sp in chosen]))
        cluster[idx] = torch.from_numpy(best.small).long()
        own = best.dist[np.arange(len(best.assign)), best.assign]
        other = best.dist[np.arange(len(best.assign)), 1 - best.assign]
        score[idx] = torch.from_numpy((own - other).astype(np.float32))
        if decision == "poison":
            flagged[idx[member]] = True
        elif decision == "marginal":
            marginal[idx[member]] = True
        rows.append(
            {
                **row,
                "reduce": "+".join(sp.method for sp in chosen),
                "smaller_share": best.share,
                "silhouette": best.silhouette,
                "decision": decision,
                "flagged": int(member.sum()) if decision == "poison" else 0,
            }
        )
    return Detection("activation_clustering", flagged, cluster, score, pd.DataFrame(rows), marginal)


Judge = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``judge(excluded, points)``: train a model without the ``excluded`` training points (a
bool mask) and return its predicted class for each of the ``points`` (a bool mask), in
index order."""


def exclusionary_reclassification(
    detection: Detection,
    labels: torch.Tensor,
    judge: Judge,
    *,
    threshold: float = 1.0,
    decides: bool = False,
) -> Detection:
    """The paper's second opinion on the suspect clusters (Chen et al. 2018, section 4).

    For a suspect cluster of class ``c``, a model trained *without* it classifies its
    points; with ``l`` the points given their own label and ``p`` the points given the most
    common other class, the paper calls the cluster legitimate when ``l / p >= threshold``
    and poison otherwise. Here, as for the clustering, a ratio near the threshold decides
    nothing: the verdict is "poison" only when ``l / p < threshold / 2``, "legitimate" when
    it is at least ``2 × threshold``, and "undecided" between (a clean style of a digit
    that the model confuses with one other class gave 0.94 on one seed, poison clusters 0
    to 0.46). By default (``decides=False``) the verdict is only reported and marginal
    clusters are kept: on one seed of ten, a genuine style of 7s (36 % of the class) was
    given its own label for only 26 % of its points and would have been removed.

    Each marginal cluster is judged by its own model, trained without it and without the
    clearly flagged clusters (so a backdoor they carry cannot vouch for it). The flagged
    clusters are judged together by the model trained without all of them, which is the
    retrained model anyway; they stay flagged, and their ratio is reported (a high one can
    also mean some poisons stayed behind and kept the backdoor alive in the judging model).

    Args:
        detection: an :func:`activation_clustering` result.
        labels: the training labels (N,).
        judge: trains without a mask of points and predicts others (see :data:`Judge`).
        threshold: T in the rule above (the paper uses 1).

    Returns:
        A new :class:`Detection` whose ``flagged`` includes, with ``decides``, the marginal
        clusters judged poison, and whose ``per_class`` gains ``reclass_own`` (share of the
        cluster given its own label), ``reclass_ratio`` (l / p) and the final ``decision``.
    """
    labels = labels.detach().long().cpu()
    clear = detection.flagged.cpu().clone()
    flagged = clear.clone()
    per = detection.per_class.copy()
    own_col, ratio_col, decisions, counts = [], [], [], []
    for row in per.itertuples(index=False):
        c = int(row[0])
        in_class = labels == c
        decision = row.decision
        cluster = (clear if decision == "poison" else detection.marginal.cpu()) & in_class
        if decision not in ("poison", "marginal") or not bool(cluster.any()):
            own_col.append(np.nan)
            ratio_col.append(np.nan)
            decisions.append(decision)
            counts.append(int((flagged & in_class).sum()))
            continue
        predicted = judge(clear if decision == "poison" else clear | cluster, cluster)
        predicted = predicted.detach().long().cpu().flatten()
        if predicted.numel() != int(cluster.sum()):
            raise ValidationError(
                f"The judge must predict every point it is asked about: {int(cluster.sum())} "
                f"points but {predicted.numel()} predictions."
            )
        l_own = int((predicted == c).sum())
        others = predicted[predicted != c]
        p_other = int(torch.bincount(others).max()) if others.numel() else 0
        ratio = l_own / p_other if p_other else float("inf")
        own_col.append(l_own / predicted.numel())
        ratio_col.append(ratio)
        if decision == "marginal":
            if ratio < threshold / 2:
                verdict = "poison"
            elif ratio >= 2 * threshold:
                verdict = "legitimate"
            else:  # the second opinion is itself within a factor of 2 of its threshold
                verdict = "undecided"
            if decides and verdict == "poison":
                flagged |= cluster
                decision = "marginal: removed (second opinion: poison)"
            else:
                decision = f"marginal: kept (second opinion: {verdict})"
        counts.append(int((flagged & in_class).sum()))
        decisions.append(decision)
    per["reclass_own"] = own_col
    per["reclass_ratio"] = ratio_col
    per["decision"] = decisions
    per["flagged"] = counts
    return Detection(
        detection.method,
        flagged,
        detection.cluster,
        detection.score,
        per,
        torch.zeros_like(flagged),
    )


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

    With activation clustering and ``second_opinion`` "report" or "decides",
    :func:`exclusionary_reclassification` judges the marginal clusters (and, with
    "decides", removes those it clearly calls poison): one extra model per marginal cluster
    (trained without it and the flagged clusters); the model trained without the flagged
    clusters is the retrained one, so judging those costs nothing. Every model goes
    through the zoo.

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
    from ..models.training import predict_logits

    t0 = time.perf_counter()
    ds = poisoned.dataset
    if progress:
        progress(0.0, "computing activations of the training set")
    acts = penultimate(poisoned_model, ds.x_train)
    if progress:
        progress(0.05, f"running {config.title.lower()}")
    found = detect(acts, ds.y_train, config)
    extra = {"poisoning": poisoned.description, "sanitize": {config.name: config.to_dict()}}
    trained = [0]
    # Models to train: the one without the flagged clusters, one per marginal cluster.
    planned = int(bool(found.flagged.any())) + int(
        (found.per_class["decision"] == "marginal").sum() if "decision" in found.per_class else 0
    )

    def without(excluded: torch.Tensor, what: str) -> nn.Module:
        share = 0.9 / max(1, planned + 1)
        lo = 0.05 + share * trained[0]
        trained[0] += 1
        return train_entry(
            arch,
            remove_flagged(ds, excluded),
            recipe,
            extra=extra,
            progress=scaled(progress, lo, lo + share, what),
        ).model

    def judge(excluded: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        model = without(excluded, "second opinion: training without the suspect cluster")
        return predict_logits(model, ds.x_train[points]).argmax(1)

    if (
        isinstance(config, ActivationClustering)
        and config.second_opinion != "none"
        and bool((found.flagged | found.marginal).any())
    ):
        found = exclusionary_reclassification(
            found,
            ds.y_train,
            judge,
            threshold=config.reclass_threshold,
            decides=config.second_opinion == "decides",
        )
    scores = detection_scores(found.flagged, poisoned.is_poison)
    if not bool(found.flagged.any()):
        # Nothing removed: the "retrained" model is the poisoned one (no need to train it again).
        cleaned, model = ds, poisoned_model
    else:
        # Served from the zoo when the second opinion trained on exactly this set already.
        cleaned = remove_flagged(ds, found.flagged)
        model = without(found.flagged, "retraining on the cleaned set")
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
