"""Transfer attacks: craft adversarial inputs on a surrogate, send them to the target.

An attacker who cannot read the target's gradients can train a model of their own (a
*surrogate*), attack it with a white-box method such as PGD and hope the adversarial
inputs *transfer*: that the target misclassifies them too. Szegedy et al. (2014) first
saw that adversarial examples fool models of other architectures; Papernot, McDaniel &
Goodfellow (2016, "Transferability in Machine Learning") measured it across model
families, and Papernot et al. (2017, "Practical Black-Box Attacks against Machine
Learning") showed that a substitute trained only on the *labels* a remote API returns is
enough to fool it. Tramèr et al. (2017, "The Space of Transferable Adversarial Examples";
"Ensemble Adversarial Training") showed why: models trained on the same task share a large
subspace of adversarial directions.

Two kinds of surrogate (:func:`surrogate_entry`):

* ``source="data"`` (gray box): another architecture trained on the target's own training
  data. The attacker knows the data, not the model.
* ``source="labels"`` (black box, label-only): a network trained on the labels the target
  returns for ``budget`` training inputs the attacker sends it (model stealing with a
  label-only API, :mod:`robustcore.attacks.extraction`); those queries are the attack's
  set-up cost.

:func:`transfer_attack` crafts on the surrogate and queries the target once per
adversarial input through a :class:`~robustcore.threat.QueryModel`, so the target is only
ever *queried* and every query is counted. Like the white-box attacks it crafts with, it
takes the budget as run arguments (``eps``, ``norm``, ``goal``). The transfer matrix of
every surrogate architecture × target architecture is the ``transfer`` experiment
(:mod:`robustcore.experiments.transfer`).

Example::

    from robustcore.attacks.evasion import PGD, Goal
    from robustcore.attacks.evasion.transfer import surrogate_entry, transfer_attack
    from robustcore.data import load
    from robustcore.models import TrainRecipe, train

    ds = load("mnist5k")
    target = train("small_cnn", ds, epochs=5)
    sur = surrogate_entry(ds, "lenet5", TrainRecipe(epochs=5))            # gray box
    res = transfer_attack(sur, target, ds.x_test[:100], ds.y_test[:100], PGD(), eps=0.2,
                          goal=Goal(bounds=ds.bounds))
    res.success_rate, res.target_queries.sum()
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...data.dataset import Dataset
from ...device import model_device
from ...errors import ValidationError
from ...models import ARCHITECTURES, TrainRecipe, compatible_architectures
from ...models.zoo import ZooEntry, lookup, train_entry
from ...progress import ProgressFn, split
from ...threat import QueryModel
from .base import UNTARGETED, EvasionAttack, Goal, flat_norms, resolve_target

SOURCES: tuple[str, ...] = ("data", "labels")
"""What a surrogate is trained on: the target's training data, or the target's labels."""

SOURCE_TITLES = {
    "data": "same training data (gray box)",
    "labels": "labels queried from the target (label-only black box)",
}


@dataclass
class TransferResult:
    """The outcome of a transfer attack on a batch.

    Attributes:
        x_adv: the adversarial inputs crafted on the surrogate (same shape as ``x``).
        surrogate_success: per input, does the *surrogate* misclassify it (the white-box
            attack's own success)?
        target_success: per input, does the *target* misclassify it (targeted: answer
            the target class)?
        target_clean_correct: per input, did the target classify the original correctly?
        target_pred: the target's label for each adversarial input.
        success_rate: the fraction of inputs the target classified correctly before that
            it misclassifies now (0 when it got none right).
        l2, linf: per-input norms of the perturbation.
        seconds: wall time of crafting and querying.
        target_queries: queries sent to the target per input (one: the adversarial input).
    """

    x_adv: torch.Tensor
    surrogate_success: torch.Tensor
    target_success: torch.Tensor
    target_clean_correct: torch.Tensor
    target_pred: torch.Tensor
    success_rate: float
    l2: torch.Tensor
    linf: torch.Tensor
    seconds: float
    target_queries: torch.Tensor

    @property
    def n(self) -> int:
        """Inputs attacked."""
        return int(self.target_success.numel())

    @property
    def n_clean_correct(self) -> int:
        """Inputs the target classified correctly before the attack (the rate's base)."""
        return int(self.target_clean_correct.sum())

    @property
    def surrogate_success_rate(self) -> float:
        """Fraction of inputs that fool the surrogate (the white-box attack on it)."""
        s = self.surrogate_success
        return float(s.float().mean()) if s.numel() else 0.0


# -- surrogates ----------------------------------------------------------------------------


def _check_dataset(dataset: Dataset) -> None:
    if not isinstance(dataset, Dataset):
        raise ValidationError(f"Expected a Dataset, got {type(dataset).__name__}.")


def check_arch(dataset: Dataset, arch: str) -> None:
    """Raise :class:`ValidationError` unless ``arch`` is a built-in architecture for the data."""
    if arch not in ARCHITECTURES:
        raise ValidationError(
            f"Unknown surrogate architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}."
        )
    archs = compatible_architectures(dataset.modality, dataset.input_shape)
    if arch not in archs:
        raise ValidationError(
            f"Architecture {arch!r} does not fit {dataset.name} ({dataset.modality}, input "
            f"{'×'.join(str(d) for d in dataset.input_shape)}); choose one of {', '.join(archs)}."
        )


def as_recipe(recipe: TrainRecipe | Mapping[str, Any] | None) -> TrainRecipe:
    if recipe is None:
        return TrainRecipe()
    if isinstance(recipe, TrainRecipe):
        return recipe
    if isinstance(recipe, Mapping):
        return TrainRecipe.from_dict(recipe)
    raise ValidationError(
        f"recipe must be a TrainRecipe or a dict of its fields, got {type(recipe).__name__}."
    )


def _label_api(
    target: nn.Module | QueryModel, num_classes: int
) -> tuple[
    QueryModel, Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]
]:
    """The attacker's label-only view of ``target`` and an evaluator's reference view.

    Returns ``(api, attacker, reference)``: ``attacker(x)`` sends ``x`` as queries of one
    client (the surrogate's trainer; its session is opened on the first call, so
    ``api.queries[0]`` ends as the number of queries sent) and returns one-hot labels;
    ``reference(x)`` returns the target's labels (one-hot) for scoring the surrogate's
    fidelity and is not part of the attacker's cost: for a model it is read directly, for
    a query interface it is asked in a separate session (one client per input, one query
    each) that ends before the attacker's begins.
    """
    if isinstance(target, QueryModel):
        api = target
        model: nn.Module | None = None
    elif isinstance(target, nn.Module):
        api = QueryModel(target, output="labels")
        model = target
    else:
        raise ValidationError(
            "A label-trained surrogate needs the target: a model or a QueryModel, got "
            f"{type(target).__name__}."
        )
    session = {"open": False}

    def labels_of(answer: torch.Tensor) -> torch.Tensor:
        return answer if api.output == "labels" else answer.argmax(dim=1)

    def attacker(x: torch.Tensor) -> torch.Tensor:
        if not session["open"]:
            api.open(1)
            session["open"] = True
        clients = torch.zeros(x.shape[0], dtype=torch.long, device=api.device)
        lab = labels_of(api(x, clients))
        return F.one_hot(lab.long().cpu(), num_classes).float()

    def reference(x: torch.Tensor) -> torch.Tensor:
        if model is not None:
            with torch.inference_mode():
                lab = model(x.to(model_device(model))).argmax(dim=1)
        else:
            api.open(x.shape[0])
            session["open"] = False
            lab = labels_of(api(x))
        return F.one_hot(lab.long().cpu(), num_classes).float()

    return api, attacker, reference


def surrogate_entry(
    dataset: Dataset,
    arch: str,
    recipe: TrainRecipe | Mapping[str, Any] | None = None,
    *,
    source: str = "data",
    target: nn.Module | QueryModel | None = None,
    budget: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> ZooEntry:
    """Train (or load from the model zoo) a surrogate model for a transfer attack.

    Args:
        dataset: the target's task (shape, classes, training split).
        arch: the surrogate's architecture (any built-in that fits the data; usually not
            the target's, or the attacker would know the model).
        recipe: how to train it (:class:`TrainRecipe` or a dict of its fields; default
            ``TrainRecipe()``). With ``source="labels"`` only ``epochs``, ``lr`` and
            ``batch_size`` are used (the model-stealing trainer's settings).
        source: ``"data"``: trained on the dataset's own training images and labels (the
            gray-box attacker knows the data); ``"labels"``: trained on the labels the
            target returns for ``budget`` training images the attacker sends it (the
            label-only black-box attacker of Papernot et al. 2017; their labels, not the
            true ones).
        target: with ``source="labels"``: the model to query, or a
            :class:`QueryModel` in front of it (its answers are reduced to the top-1
            label; a session of one client is opened on it, so afterwards
            ``target.queries[0] == budget``).
        budget: with ``source="labels"``: how many queries the attacker spends (≥ 1, at
            most the training split's size).
        seed: with ``source="labels"``: which training images are queried (a seeded random
            order) and the surrogate's initialisation; with ``source="data"`` the recipe's
            own seed is used.
        progress: ``progress(fraction, message)``; it may raise to cancel.

    Returns:
        The zoo entry (model frozen, eval mode). For ``source="labels"`` its ``metrics``
        also hold ``queries`` (queries sent to the target) and ``fidelity`` (agreement with
        the target on the test split), and ``extra`` records the budget.

    Raises:
        ValidationError: unknown or incompatible architecture, unknown source, a missing
            target or budget for ``source="labels"`` (or one given for ``"data"``), a
            budget below 1 or above the training split's size.
    """
    _check_dataset(dataset)
    check_arch(dataset, arch)
    rec = as_recipe(recipe)
    if source not in SOURCES:
        raise ValidationError(
            f"Unknown surrogate source {source!r}; expected one of {', '.join(SOURCES)}."
        )
    if source == "data":
        if target is not None or budget is not None:
            raise ValidationError(
                "A surrogate trained on the data queries nothing: give target and budget "
                "only with source='labels'."
            )
        return train_entry(arch, dataset, rec, progress=progress)

    from ..extraction import ModelStealing, steal

    if target is None:
        raise ValidationError("source='labels' needs the target to query (a model or QueryModel).")
    if budget is None or isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValidationError(
            f"source='labels' needs a query budget: a whole number ≥ 1, got {budget!r}."
        )
    if budget > dataset.n_train:
        raise ValidationError(
            f"A budget of {budget:,} queries is more than the {dataset.n_train:,} training "
            f"images of {dataset.name} the attacker can send; choose at most {dataset.n_train:,}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValidationError(f"seed must be a whole number ≥ 0, got {seed!r}.")
    config = ModelStealing(
        student_arch=arch, epochs=rec.epochs, lr=rec.lr, batch_size=rec.batch_size, seed=seed
    )
    api, attacker, reference = _label_api(target, dataset.num_classes)
    result = steal(
        attacker,
        dataset,
        config,
        budget=budget,
        output="label",
        query_source="in_distribution",
        reference=reference,
        progress=progress,
    )
    entry = lookup(result.zoo_key, device=model_device(result.model))
    if entry is None:  # pragma: no cover - steal() stores the model before returning
        raise ValidationError("The label-trained surrogate was not found in the model zoo.")
    metrics = {
        **entry.metrics,
        "queries": int(result.queries),
        "fidelity": float(result.fidelity),
        "steal_seconds": float(result.seconds),
    }
    return dataclasses.replace(entry, metrics=metrics, from_cache=result.from_cache)


# -- transfer ------------------------------------------------------------------------------


def _as_model(surrogate: nn.Module | ZooEntry) -> nn.Module:
    if isinstance(surrogate, ZooEntry):
        return surrogate.model
    if isinstance(surrogate, nn.Module):
        return surrogate
    raise ValidationError(
        f"The surrogate must be a model or a zoo entry, got {type(surrogate).__name__}."
    )


def _clean_labels(target: nn.Module | QueryModel, x: torch.Tensor) -> torch.Tensor:
    """The target's labels for the clean inputs, for scoring (not the attacker's cost).

    A model is read directly; a query interface is asked in its own session (one client
    per input) that is closed before the attacker's session opens.
    """
    if isinstance(target, QueryModel):
        target.open(x.shape[0])
        ans = target(x.to(target.device))
        return ans if target.output == "labels" else ans.argmax(dim=1)
    with torch.inference_mode():
        return target(x.to(model_device(target))).argmax(dim=1)


def transfer_attack(
    surrogate: nn.Module | ZooEntry,
    target: nn.Module | QueryModel,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: EvasionAttack,
    *,
    eps: float | None = None,
    norm: str | None = None,
    goal: Goal | None = None,
    progress: ProgressFn | None = None,
) -> TransferResult:
    """Craft ``attack`` on the surrogate, then send each adversarial input to the target once.

    Args:
        surrogate: the attacker's own model (or its zoo entry); the white-box attack reads
            its gradients.
        target: the model under attack, or a :class:`QueryModel` in front of it (a model is
            wrapped in a label-only one: one label per query is all a transfer attack
            needs). Its answers are the only thing the attack learns from the target.
        x, y: inputs ``(N, …)`` and their true labels ``(N,)``.
        attack: a white-box evasion attack (e.g. ``PGD(steps=10)``).
        eps, norm: the white-box attack's budget (as in ``attack.run``; C&W takes no ε).
        goal: the target class (success = the target answers it) and the data bounds
            (default: untargeted in ``[0, 1]``).
        progress: ``progress(fraction, message)``; it may raise to cancel.

    Returns:
        A :class:`TransferResult`; ``target_queries`` is 1 per input, and when ``target`` is
        a QueryModel, ``target.queries`` holds the same counts afterwards (one client per
        input).
    """
    model = _as_model(surrogate)
    if not isinstance(attack, EvasionAttack):
        raise ValidationError(
            "A transfer attack crafts with a white-box attack (FGSM, PGD, C&W), got "
            f"{type(attack).__name__}."
        )
    if isinstance(target, QueryModel):
        api = target
    elif isinstance(target, nn.Module):
        api = QueryModel(target, output="labels")
    else:
        raise ValidationError(
            f"The target must be a model or a QueryModel, got {type(target).__name__}."
        )
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValidationError("x and y must be tensors.")
    if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
        raise ValidationError(
            f"Inputs and labels must have the same length: got {tuple(x.shape)} inputs and "
            f"{tuple(y.shape)} labels."
        )
    goal = goal or UNTARGETED
    craft, send = split(progress, {"crafting on the surrogate": 95, "querying the target": 5})
    t0 = time.perf_counter()
    clean = _clean_labels(target, x).cpu()
    res = attack.run(model, x, y, eps=eps, norm=norm, goal=goal, progress=craft)
    if send:
        send(0.0, "sending the adversarial inputs to the target")
    api.open(x.shape[0])
    answer = api(res.x_adv.to(api.device))
    pred = (answer if api.output == "labels" else answer.argmax(dim=1)).cpu()
    seconds = time.perf_counter() - t0
    y_cpu = y.detach().cpu().long()
    tgt = resolve_target(goal.targeted, goal.target, y_cpu, None)
    correct = clean == y_cpu
    fooled = pred == tgt if tgt is not None else pred != y_cpu
    base = int(correct.sum())
    rate = float((fooled & correct).sum()) / base if base else 0.0
    l2, linf = flat_norms(res.x_adv.cpu() - x.detach().cpu().float())
    if send:
        send(1.0, "done")
    return TransferResult(
        x_adv=res.x_adv,
        surrogate_success=res.success.cpu(),
        target_success=fooled,
        target_clean_correct=correct,
        target_pred=pred,
        success_rate=rate,
        l2=l2,
        linf=linf,
        seconds=seconds,
        target_queries=api.queries.detach().cpu().clone(),
    )


def transfer_success(
    target: nn.Module, x_adv: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, int]:
    """Send ``x_adv`` to ``target`` through a label-only query interface (one query per
    input) and return the share of inputs the target had right (on ``x``) that it now gets
    wrong, and how many it had right."""
    y_cpu = y.detach().cpu().long()
    clean = _clean_labels(target, x).cpu()
    api = QueryModel(target, output="labels")
    api.open(x.shape[0])
    pred = api(x_adv.to(api.device)).cpu()
    correct = clean == y_cpu
    base = int(correct.sum())
    fooled = (pred != y_cpu) & correct
    return (float(fooled.sum()) / base if base else 0.0), base


__all__ = [
    "SOURCES",
    "SOURCE_TITLES",
    "TransferResult",
    "as_recipe",
    "check_arch",
    "surrogate_entry",
    "transfer_attack",
    "transfer_success",
]
