"""Model stealing: train a copy of a black-box model from its answers to queries.

The attacker sends ``budget`` inputs to a prediction API, keeps the answers (the class
probabilities, or only the top-1 label) and trains a *student* network of their own
choosing on those pairs. Knockoff Nets (Orekondy et al. 2019) and Copycat CNN
(Correia-Silva et al. 2018) showed this works even with queries that are not from the
target's training distribution; Tramèr et al. (2016, "Stealing Machine Learning Models
via Prediction APIs") named the two measures used here:

* **accuracy**: the stolen model's accuracy on the real test labels;
* **fidelity**: how often the stolen model agrees with the target (argmax agreement on
  the test inputs) — what matters when the copy is used as a surrogate for transfer
  attacks.

A *prediction API* is any ``Callable[[torch.Tensor], torch.Tensor]`` mapping a batch of
inputs to an (N, C) float tensor of what the service returns (probabilities; a label-only
service returns one-hot rows). :func:`model_api` builds one from a model; output
post-processing defenses (``robustcore.defenses.postprocess``) wrap one.

Stolen models are trained through the model zoo, keyed on the queries and the answers
(so a different target or defense never reuses a copy), with ``extra`` recording where
they were stolen from. Get one back later with ``robustcore.models.lookup(result.zoo_key)``
and use it as a surrogate for a transfer attack.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from ...data.dataset import Dataset
from ...errors import ValidationError
from ...models import ARCHITECTURES, TrainRecipe, compatible_architectures, predict_logits
from ...models.zoo import train_entry
from ...params import Configurable, param
from ...progress import ProgressFn, scaled, split
from .sources import QUERY_SOURCES, pool_size, query_pool

PredictionAPI = Callable[[torch.Tensor], torch.Tensor]
"""A batch of inputs → (N, C) float tensor of what the service returns."""

OUTPUTS: tuple[str, ...] = ("probabilities", "label")
"""What the API gives the attacker: the full probability vector, or the top-1 label only."""

QUERY_BATCH = 512
"""Inputs sent to the API per call."""

Cell = tuple[str, str, int]
"""One theft of a sweep: ``(query_source, output, budget)``."""


@dataclass(frozen=True)
class ModelStealing(Configurable):
    """The attacker's student network and its training (Copycat / Knockoff-style stealing).

    The student is trained from scratch on (query, answer) pairs: with ``output =
    "probabilities"`` on the API's probability vectors (cross-entropy to soft targets,
    i.e. knowledge distillation), with ``output = "label"`` on the top-1 label only. How
    many queries are sent, where they come from and what the API returns are arguments of
    each theft (:func:`steal`), not settings of the student, so one declaration is swept
    over budgets, outputs and query sources (:func:`extraction_curve`).
    """

    name = "model_stealing"
    title = "Model stealing (Copycat / Knockoff Nets)"
    paper = (
        "Orekondy et al. 2019, Knockoff Nets; Correia-Silva et al. 2018, Copycat CNN; "
        "Tramèr et al. 2016, Stealing Machine Learning Models via Prediction APIs"
    )

    student_arch: str = param(
        "mlp",
        choices=tuple(ARCHITECTURES),
        label="Student architecture",
        help="The network the attacker trains; it need not match the target's.",
    )
    epochs: int = param(
        20, low=1, high=500, step=1, help="Passes of the student's training over the queries."
    )
    lr: float = param(
        2e-3,
        low=1e-5,
        high=1.0,
        log=True,
        label="Learning rate",
        help="Adam step size for the student.",
    )
    batch_size: int = param(
        64, low=1, high=4096, step=1, help="Queries per gradient step of the student."
    )
    seed: int = param(
        0,
        low=0,
        high=2**31 - 1,
        step=1,
        help="Orders the query pool (and draws noise) and seeds the student's training.",
    )

    def recipe(self) -> TrainRecipe:
        """The student's training recipe (Adam, no weight decay or augmentation)."""
        return TrainRecipe(
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed
        )


@dataclass
class StealResult:
    """What :func:`steal` returns.

    Attributes:
        model: the stolen (student) model, frozen and in eval mode; it outputs logits.
        accuracy: its accuracy on the dataset's test labels.
        fidelity: how often its argmax equals the reference's on the test inputs.
        queries: how many queries were sent to the API (the budget).
        zoo_key: the model zoo key; ``robustcore.models.lookup(zoo_key)`` gets it back.
        from_cache: True when the same queries and answers were trained on before.
        seconds: wall time of querying, training (or loading) and scoring.
        config: the student's settings.
        history: the student's training curve (one row per epoch).
        output, query_source: what the API returned and where the queries came from.
    """

    model: nn.Module
    accuracy: float
    fidelity: float
    queries: int
    zoo_key: str
    from_cache: bool
    seconds: float
    config: ModelStealing
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    output: str = "probabilities"
    query_source: str = "in_distribution"


def model_api(model: nn.Module) -> PredictionAPI:
    """The prediction API of an undefended model: softmax probabilities of its logits."""

    def api(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(predict_logits(model, x), dim=1)

    return api


def query_api(api: PredictionAPI, x: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Send ``x`` to ``api`` in batches and return the answers as an (N, C) CPU tensor.

    Raises:
        ValidationError: the API's answer is not an (n, num_classes) tensor of finite
            numbers.
    """
    if not callable(api):
        raise ValidationError(f"The prediction API must be callable, got {type(api).__name__}.")
    outs = []
    with torch.no_grad():  # not inference_mode: the answers become training targets
        for i in range(0, x.shape[0], QUERY_BATCH):
            xb = x[i : i + QUERY_BATCH]
            out = api(xb)
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != (
                xb.shape[0],
                num_classes,
            ):
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValidationError(
                    f"The prediction API must return a ({xb.shape[0]}, {num_classes}) tensor "
                    f"for a batch of {xb.shape[0]} inputs; it returned {shape}."
                )
            out = out.detach().float().cpu()
            if not torch.isfinite(out).all():
                raise ValidationError("The prediction API returned NaN or infinite values.")
            outs.append(out)
    return torch.cat(outs) if outs else torch.zeros(0, num_classes)


def _soft_targets(answers: torch.Tensor) -> torch.Tensor:
    """Rows made into probability vectors (negative parts dropped; empty rows uniform)."""
    p = answers.clamp_min(0.0)
    s = p.sum(dim=1, keepdim=True)
    uniform = torch.full_like(p, 1.0 / p.shape[1])
    return torch.where(s > 0, p / s.clamp_min(1e-12), uniform).contiguous()


def _check_budget(budget: Any) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValidationError(f"The query budget must be a whole number ≥ 1, got {budget!r}.")
    return int(budget)


def check_config(
    dataset: Dataset,
    config: ModelStealing,
    *,
    budget: int | None = None,
    query_source: str = "in_distribution",
    output: str = "probabilities",
) -> None:
    """Raise :class:`ValidationError` when a theft cannot run on ``dataset``: a student
    architecture that does not fit the data, an unknown output or query source, a budget
    that is not a whole number ≥ 1 or is larger than the query source's pool, or
    ``other_dataset`` queries for tabular data (``budget=None`` checks everything else)."""
    if not isinstance(config, ModelStealing):
        raise ValidationError(
            f"config must be a ModelStealing instance, got {type(config).__name__}."
        )
    if output not in OUTPUTS:
        raise ValidationError(f"API output must be one of {', '.join(OUTPUTS)}; got {output!r}.")
    if query_source not in QUERY_SOURCES:
        raise ValidationError(
            f"Query source must be one of {', '.join(QUERY_SOURCES)}; got {query_source!r}."
        )
    archs = compatible_architectures(dataset.modality, dataset.input_shape)
    if config.student_arch not in archs:
        raise ValidationError(
            f"Student architecture {config.student_arch!r} does not fit {dataset.name} "
            f"({dataset.modality}, input {dataset.input_shape}); choose one of "
            f"{', '.join(archs)}."
        )
    size = pool_size(dataset, query_source)
    if budget is None:
        return
    budget = _check_budget(budget)
    if size is not None and budget > size:
        raise ValidationError(
            f"A budget of {budget:,} queries is more than the {query_source} "
            f"pool of {dataset.name} holds ({size:,} distinct inputs); choose at most {size:,}."
        )


def _reference_labels(reference: PredictionAPI, dataset: Dataset) -> torch.Tensor:
    return query_api(reference, dataset.x_test, dataset.num_classes).argmax(dim=1)


def _steal(
    api: PredictionAPI,
    dataset: Dataset,
    config: ModelStealing,
    ref_labels: torch.Tensor,
    cell: Cell,
    *,
    progress: ProgressFn | None,
    target_id: str | None,
    asked: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> StealResult:
    """One theft. ``asked`` holds (queries, answers) already obtained for a larger budget
    of the same source and seed: its first ``budget`` rows are this theft's queries."""
    source, output, budget = cell
    t0 = time.perf_counter()
    ask, train, score = split(progress, [0.05, 0.9, 0.05])
    train = scaled(train, 0.0, 1.0, "training the student")
    if asked is None:
        if ask is not None:
            ask(0.0, f"querying the API {budget:,} times")
        queries = query_pool(dataset, source, budget, config.seed)
        answers = query_api(api, queries, dataset.num_classes)
    else:
        queries, answers = (t[:budget] for t in asked)
    if output == "label":
        targets = answers.argmax(dim=1)
    else:
        targets = _soft_targets(answers)
    stolen = dataclasses.replace(
        dataset,
        name=f"{dataset.name}:stolen",
        x_train=queries,
        y_train=targets,
        description=f"{budget} queries to a prediction API of {dataset.name}",
        _fingerprint=None,
    )
    extra: dict[str, Any] = {
        "stolen_from": target_id or "prediction-api",
        "query_source": source,
        "output": output,
        "budget": budget,
    }
    entry = train_entry(config.student_arch, stolen, config.recipe(), extra=extra, progress=train)
    logits = predict_logits(entry.model, dataset.x_test)
    pred = logits.argmax(dim=1)
    accuracy = float((pred == dataset.y_test.cpu()).float().mean().item())
    fidelity = float((pred == ref_labels).float().mean().item())
    if score is not None:
        score(1.0, "scored")
    return StealResult(
        model=entry.model,
        accuracy=accuracy,
        fidelity=fidelity,
        queries=int(queries.shape[0]),
        zoo_key=entry.key,
        from_cache=entry.from_cache,
        seconds=time.perf_counter() - t0,
        config=config,
        history=entry.history,
        output=output,
        query_source=source,
    )


def steal(
    api: PredictionAPI,
    dataset: Dataset,
    config: ModelStealing | None = None,
    *,
    budget: int,
    output: str = "probabilities",
    query_source: str = "in_distribution",
    reference: PredictionAPI | None = None,
    progress: ProgressFn | None = None,
    target_id: str | None = None,
) -> StealResult:
    """Steal the model behind ``api`` with ``budget`` queries.

    Args:
        api: the target's prediction API (possibly behind a defense).
        dataset: the target's task: input shape and bounds, the training split (the
            in-distribution query pool) and the test split (for scoring only).
        config: the student and its training (default ``ModelStealing()``).
        budget: how many inputs the attacker sends to the API.
        output: ``"probabilities"`` (the student learns the answers as soft targets) or
            ``"label"`` (only the argmax of each answer is kept).
        query_source: one of :data:`~.sources.QUERY_SOURCES`: natural images of the same
            task, real images of another dataset, or uniform noise inside the data bounds.
        reference: the prediction API of the *undefended* target, against which fidelity
            is measured; ``None`` measures it against ``api``.
        progress: ``progress(fraction, message)``; it may raise to cancel.
        target_id: an identifier of the target (e.g. its zoo key), recorded in the stolen
            model's zoo entry as ``stolen_from``.

    Returns:
        A :class:`StealResult`.

    Raises:
        ValidationError: the theft does not fit the dataset (student architecture, budget
            larger than the pool, ``other_dataset`` on tabular data, unknown output or
            source) or the API's answers have the wrong shape.
    """
    config = config if config is not None else ModelStealing()
    check_config(dataset, config, budget=budget, query_source=query_source, output=output)
    ref_labels = _reference_labels(reference if reference is not None else api, dataset)
    cell = (query_source, output, int(budget))
    return _steal(api, dataset, config, ref_labels, cell, progress=progress, target_id=target_id)


def grid_cells(
    budgets: Sequence[int],
    *,
    outputs: Sequence[str] = OUTPUTS,
    sources: Sequence[str] = ("in_distribution",),
) -> list[Cell]:
    """Every (query source, output, budget) of a sweep, in that order (budgets ascending,
    duplicates dropped)."""
    try:
        budget_list = sorted({int(b) for b in budgets})
    except (TypeError, ValueError):
        raise ValidationError(f"Budgets must be whole numbers, got {budgets!r}.") from None
    if not budget_list or budget_list[0] < 1:
        raise ValidationError(f"Give at least one budget, each ≥ 1; got {list(budgets)!r}.")
    if not outputs or not sources:
        raise ValidationError("Choose at least one API output and one query source.")
    return [(s, o, b) for s in sources for o in outputs for b in budget_list]


def steal_cells(
    api: PredictionAPI,
    dataset: Dataset,
    cells: Sequence[Cell],
    config: ModelStealing | None = None,
    *,
    reference: PredictionAPI | None = None,
    progress: ProgressFn | None = None,
    target_id: str | None = None,
) -> pd.DataFrame:
    """One theft per ``(query_source, output, budget)`` cell, the answers shared.

    The queries of a source are nested (a smaller budget takes a prefix of a larger one's),
    so each source is queried once, with its largest budget, and the answers are shared: a
    theft with budget b still learns from exactly b queries and answers.

    Returns:
        One row per cell with columns ``output``, ``query_source``, ``student_arch``,
        ``budget``, ``queries``, ``accuracy``, ``fidelity``, ``seconds``, ``from_cache`` and
        ``zoo_key``.
    """
    config = config if config is not None else ModelStealing()
    cells = [(str(s), str(o), int(b)) for s, o, b in cells]
    if not cells:
        raise ValidationError("Give at least one (query source, output, budget) to steal with.")
    for source, output, budget in cells:
        check_config(dataset, config, budget=budget, query_source=source, output=output)
    # Each theft's share of the progress bar is proportional to its training work; the
    # queries (one batch per source) and the reference's labels come first.
    ask, *parts = split(progress, [0.0] + [float(b * config.epochs) for _, _, b in cells])
    if ask is not None:
        ask(0.0, "asking the reference for its test-set labels")
    ref_labels = _reference_labels(reference if reference is not None else api, dataset)
    largest: dict[str, int] = {}
    for source, _, budget in cells:
        largest[source] = max(largest.get(source, 0), budget)
    asked: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for source, budget in largest.items():
        if ask is not None:
            ask(0.0, f"querying the API {budget:,} times ({source})")
        queries = query_pool(dataset, source, budget, config.seed)
        asked[source] = (queries, query_api(api, queries, dataset.num_classes))
    rows = []
    for cell, part in zip(cells, parts, strict=True):
        source, output, budget = cell
        r = _steal(
            api,
            dataset,
            config,
            ref_labels,
            cell,
            progress=scaled(part, 0.0, 1.0, f"{output}, {source}, {budget:,} queries"),
            target_id=target_id,
            asked=asked[source],
        )
        rows.append(
            {
                "output": output,
                "query_source": source,
                "student_arch": config.student_arch,
                "budget": budget,
                "queries": r.queries,
                "accuracy": r.accuracy,
                "fidelity": r.fidelity,
                "seconds": r.seconds,
                "from_cache": r.from_cache,
                "zoo_key": r.zoo_key,
            }
        )
    if progress is not None:
        progress(1.0, "done")
    return pd.DataFrame(rows)


def extraction_curve(
    api: PredictionAPI,
    dataset: Dataset,
    budgets: Sequence[int],
    config: ModelStealing | None = None,
    *,
    outputs: Sequence[str] = OUTPUTS,
    sources: Sequence[str] = ("in_distribution",),
    reference: PredictionAPI | None = None,
    progress: ProgressFn | None = None,
    target_id: str | None = None,
) -> pd.DataFrame:
    """Accuracy and fidelity of the stolen model against the query budget.

    Args:
        api, dataset, reference, progress, target_id: as in :func:`steal`.
        budgets: query budgets to try (each at least 1; duplicates are dropped).
        config: the student (default ``ModelStealing()``), the same for every theft.
        outputs, sources: the API outputs and query sources to cross with the budgets
            (default: probabilities and label-only, in-distribution queries).

    Returns:
        One row per query source × output × budget, as :func:`steal_cells` returns.
    """
    cells = grid_cells(budgets, outputs=outputs, sources=sources)
    return steal_cells(
        api, dataset, cells, config, reference=reference, progress=progress, target_id=target_id
    )
