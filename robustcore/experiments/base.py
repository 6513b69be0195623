"""The experiment contract: one class per page-level run.

An :class:`Experiment` is a :class:`~robustcore.params.Configurable` whose declared fields
are everything a person can set for the run (attack settings as :func:`~robustcore.params.nested`
configurables, ε grids as tuples…). From that one declaration come

* the **spec** (:meth:`Experiment.spec`): kind, result-layout version, dataset name and
  content fingerprint, the :class:`Target` model and the parameter values; it is never
  written by hand, so the cache key always describes exactly what runs;
* the **job** (:meth:`Experiment.job`): resolves the target model (training it through the
  zoo when needed) and calls :meth:`Experiment.run`;
* the **typed result** (:meth:`Experiment.result`): a view over the stored record with named
  accessors, so pages never look up a table or a metric by string;
* the **form** (``robustcore.ui.experiment``) and the **CLI command**
  (``python -m robustcore <name>``), both generated from the declaration.

Example (the whole of a new experiment)::

    @register
    @dataclass(frozen=True)
    class NoiseAccuracy(Experiment):
        name = "noise_accuracy"
        title = "Accuracy under Gaussian noise"
        sigma: float = param(0.1, low=0.0, high=1.0, step=0.01, help="Noise level.")

        def run(self, dataset, model, progress=None):
            ...
            return RunResult(metrics={"accuracy": acc})

    job = get_runner().submit(NoiseAccuracy(sigma=0.2).on(Target.zoo("small_cnn")), ds)
    NoiseAccuracy.result(job.wait().result).metric("accuracy")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pandas as pd
from torch import nn

from ..data import Dataset
from ..defenses.inference import InferenceDefense
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures
from ..params import Configurable
from ..progress import ProgressFn, split
from ..runs.store import ArtifactValue, RunRecord, RunResult

if TYPE_CHECKING:
    from .estimate import Estimate, Work

E = TypeVar("E", bound="Experiment")

EXPERIMENTS: dict[str, type[Experiment]] = {}
"""Every registered experiment by name (filled by :func:`register`; see ``registry``)."""


def register(cls: type[E]) -> type[E]:
    """Class decorator: add an experiment to :data:`EXPERIMENTS` (and so to the CLI)."""
    if not cls.name:
        raise ValidationError(f"{cls.__name__} needs a name to be registered.")
    if cls.name in EXPERIMENTS and EXPERIMENTS[cls.name] is not cls:
        raise ValidationError(f"Two experiments are named {cls.name!r}.")
    EXPERIMENTS[cls.name] = cls
    return cls


# -- the model an experiment works on --------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The model under attack or defence, as a spec can name it.

    Attributes:
        source: ``"zoo"`` (a built-in architecture trained by ``recipe`` through the model
            zoo, on the experiment's dataset) or ``"upload"`` (a user's model, held in
            ``model`` and named by the content ``fingerprint`` of its file).
        arch: the built-in architecture (for uploads: the one its weights fit, if known).
        recipe: how a zoo model is trained (``None`` for uploads).
        fingerprint: content hash of an uploaded file.
        label: a short description for titles and tables (of the model without its
            inference-time defense; :meth:`describe` adds the defense).
        inference: an inference-time defense in front of the model (input preprocessing,
            randomized smoothing; :mod:`robustcore.defenses.inference`), or ``None``.
        model: the uploaded module itself (never part of the spec).
    """

    source: str
    arch: str | None = None
    recipe: TrainRecipe | None = None
    fingerprint: str | None = None
    label: str = ""
    inference: InferenceDefense | None = None
    model: nn.Module | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.source not in ("zoo", "upload"):
            raise ValidationError(f"Target source must be 'zoo' or 'upload', got {self.source!r}.")
        if self.arch is not None and self.arch not in ARCHITECTURES:
            raise ValidationError(
                f"Unknown architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}."
            )
        if self.source == "zoo" and (self.arch is None or self.recipe is None):
            raise ValidationError("A zoo target needs an architecture and a training recipe.")
        if self.source == "upload" and (self.model is None or not self.fingerprint):
            raise ValidationError("An uploaded target needs its model and its fingerprint.")

    @classmethod
    def zoo(
        cls, arch: str, recipe: TrainRecipe | Mapping[str, Any] | None = None, *, label: str = ""
    ) -> Target:
        """A built-in architecture trained by ``recipe`` (default: the default recipe)."""
        if not isinstance(recipe, TrainRecipe):
            recipe = TrainRecipe.from_dict(recipe or {})
        return cls("zoo", arch=arch, recipe=recipe, label=label)

    @classmethod
    def upload(
        cls, model: nn.Module, fingerprint: str, *, arch: str | None = None, label: str = ""
    ) -> Target:
        """A user's model, identified by the fingerprint of the file it came from."""
        return cls("upload", arch=arch, fingerprint=fingerprint, label=label, model=model)

    def spec(self) -> dict[str, Any]:
        """What identifies the model in a run spec (the defense only when there is one, so
        the keys of undefended runs never change)."""
        if self.source == "zoo":
            assert self.recipe is not None
            out: dict[str, Any] = {
                "source": "zoo",
                "arch": self.arch,
                "recipe": self.recipe.to_dict(),
            }
        else:
            out = {"source": "upload", "arch": self.arch, "fingerprint": self.fingerprint}
        if self.inference is not None:
            out["inference"] = self.inference.spec()
        return out

    def defended_by(self, defense: InferenceDefense | None) -> Target:
        """This model behind an inference-time defense (``None``: without one)."""
        return dataclasses.replace(self, inference=defense)

    @property
    def base(self) -> Target:
        """The model without its inference-time defense."""
        return self.defended_by(None) if self.inference is not None else self

    @property
    def training(self) -> tuple[str | None, TrainRecipe]:
        """The architecture and recipe to copy when an experiment trains models "like" this
        one (shadow models, poisoned victims, surrogates); uploads get the default recipe."""
        return self.arch, self.recipe or TrainRecipe()

    def with_arch(self, arch: str) -> Target:
        """The same recipe (and inference-time defense) on another built-in architecture."""
        return Target.zoo(arch, self.recipe or TrainRecipe()).defended_by(self.inference)

    def with_recipe(self, **changes: Any) -> Target:
        """This zoo target with some recipe fields changed."""
        if self.source != "zoo":
            raise ValidationError("Only a model trained by recipe can be retrained with changes.")
        assert self.recipe is not None and self.arch is not None
        return Target.zoo(self.arch, self.recipe.replace(**changes)).defended_by(self.inference)

    @property
    def defended(self) -> bool:
        """A zoo model trained with a defense (its recipe's method is not standard), or any
        model behind an inference-time defense."""
        return self.inference is not None or (self.recipe is not None and self.recipe.defended)

    def undefended(self) -> Target:
        """The same architecture and recipe with standard training and no inference-time
        defense (a zoo target)."""
        if self.source != "zoo":
            raise ValidationError("Only a model trained by recipe has an undefended twin.")
        assert self.recipe is not None and self.arch is not None
        return Target.zoo(self.arch, self.recipe.undefended())

    def resolve(self, dataset: Dataset, progress: ProgressFn | None = None) -> nn.Module:
        """The model itself: the uploaded one, or the zoo's (trained now if it is new)."""
        if self.source == "upload":
            assert self.model is not None
            return self._defend(self.model, dataset)
        from ..models import train_entry

        archs = compatible_architectures(dataset.modality, dataset.input_shape)
        if self.arch not in archs:
            raise ValidationError(
                f"{self.arch!r} does not fit {dataset.name}; choose one of {', '.join(archs)}."
            )
        model = train_entry(self.arch, dataset, self.recipe, progress=progress).model
        return self._defend(model, dataset)

    def _defend(self, model: nn.Module, dataset: Dataset) -> nn.Module:
        if self.inference is None:
            return model
        return self.inference.wrap(model, bounds=dataset.bounds)

    def describe(self) -> str:
        if self.label:
            name = self.label
        elif self.source == "upload":
            name = f"uploaded model {self.fingerprint}"
        else:
            assert self.recipe is not None
            how = f", {self.recipe.describe_method()}" if self.recipe.defended else ""
            name = f"{self.arch} ({self.recipe.epochs} epochs, seed {self.recipe.seed}{how})"
        if self.inference is not None:
            return f"{name} + {self.inference.describe()}"
        return name


# -- typed results ----------------------------------------------------------------------------


class ExperimentResult:
    """A stored run read back through its experiment's typed accessors.

    Subclasses add one property or method per thing a page draws; the table and metric
    names stay private to the experiment module that writes them.
    """

    def __init__(self, record: RunRecord) -> None:
        self.record = record

    # what every run has
    @property
    def key(self) -> str:
        return self.record.key

    @property
    def spec(self) -> dict[str, Any]:
        return self.record.spec

    @property
    def seed(self) -> int | None:
        return self.record.seed

    @property
    def seconds(self) -> float:
        return self.record.seconds

    @property
    def label(self) -> str:
        return self.record.label or self.record.key[:8]

    @property
    def versions(self) -> dict[str, str]:
        return self.record.versions

    @property
    def target(self) -> dict[str, Any] | None:
        """The target's spec (``Target.spec()``) this result was computed on."""
        return self.record.spec.get("target")

    @property
    def fingerprint(self) -> str | None:
        """The content fingerprint of the dataset this result was computed on."""
        return self.record.spec.get("fingerprint")

    def params(self) -> dict[str, Any]:
        """The experiment's parameter values of this run."""
        return dict(self.record.spec.get("params", {}))

    def as_json(self) -> dict[str, Any]:
        """Key, spec, metrics, seed and versions: what a run download holds."""
        r = self.record
        return {
            "key": r.key,
            "kind": r.kind,
            "label": r.label,
            "spec": r.spec,
            "metrics": r.metrics,
            "seed": r.seed,
            "seconds": r.seconds,
            "versions": r.versions,
        }

    def summary(self) -> dict[str, Any]:
        """The headline numbers (the CLI prints them; run lists show them)."""
        return {k: v for k, v in self.record.metrics.items() if isinstance(v, int | float | str)}

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        """Tables the CLI prints after the run (default: none)."""
        return {}

    # for subclasses
    def _metric(self, name: str, default: Any = None) -> Any:
        return self.record.metrics.get(name, default)

    def _has_table(self, name: str) -> bool:
        return name in self.record.table_names

    def _table(self, name: str) -> pd.DataFrame:
        return self.record.table(name)

    def _has_artifact(self, name: str) -> bool:
        return name in self.record.artifact_names

    def _artifact(self, name: str) -> ArtifactValue:
        return self.record.artifact(name)


# -- the experiment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Experiment(Configurable):
    """Base class of every page-level experiment.

    Class attributes of a subclass: ``name`` (registry, CLI command and spec kind),
    ``title``, ``paper``, ``layout`` (bump it whenever what :meth:`run` stores changes, so
    runs stored by older code are not served as results), ``result_class`` (the typed view),
    ``model_share`` (how much of the progress bar training the target may take).

    ``target`` is not a parameter: it says which model the experiment works on
    (:meth:`on`). Experiments that do not need one (they train their own models from the
    target's recipe, or none) still record it in the spec.
    """

    layout: ClassVar[int] = 1
    result_class: ClassVar[type[ExperimentResult]] = ExperimentResult
    headline: ClassVar[str] = ""
    """The metric a list of runs shows for this experiment (``runs`` on the command line);
    ``prefix.*`` or ``*.suffix``: the largest of the metrics that match."""
    model_share: ClassVar[float] = 0.1
    needs_model: ClassVar[bool] = True
    page_target: ClassVar[str] = "session"
    """The model the page starts on: ``"session"`` (the sidebar's current model) or
    ``"overfit"`` (the privacy pages' deliberately overfit model, :mod:`.overfit`)."""

    target: Target | None = field(default=None, kw_only=True)

    def on(self: E, target: Target | None) -> E:
        """The same experiment on another model."""
        return dataclasses.replace(self, target=target)

    # dataset-dependent defaults and checks
    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        """Parameter values that suit ``dataset`` better than the declared defaults."""
        return {}

    @classmethod
    def default_target(cls, dataset: Dataset, session: Target | None) -> Target | None:
        """The model the page's default run works on: the session's, or for the privacy
        pages (``page_target = "overfit"``) the overfitting control's."""
        if cls.page_target == "overfit":
            from .overfit import overfit_target

            return overfit_target(dataset)
        return session

    @classmethod
    def page_default(cls: type[E], dataset: Dataset, session: Target | None) -> E:
        """The run the page's untouched form makes: the dataset's defaults on
        :meth:`default_target`. A page shows its stored result to a new session at once;
        ``bench/page_defaults.py`` times it."""
        return cls.for_dataset(dataset).on(cls.default_target(dataset, session))

    @classmethod
    def for_dataset(cls: type[E], dataset: Dataset, **values: Any) -> E:
        """An instance with the dataset's defaults, overridden by ``values``."""
        return cls.from_dict({**cls.defaults(dataset), **values})

    def check_data(self, dataset: Dataset) -> None:
        """Raise ValidationError when these settings cannot run on ``dataset``."""

    # spec, job, result
    def spec(self, dataset: Dataset) -> dict[str, Any]:
        """The run's spec, derived from the fields; checks the settings against the data."""
        self.check_data(dataset)
        if self.needs_model and self.target is None:
            raise ValidationError(f"{self.title}: choose a model first (the experiment's target).")
        return {
            "kind": self.name,
            "layout": self.layout,
            "dataset": dataset.name,
            "fingerprint": dataset.fingerprint(),
            "target": self.target.spec() if self.target is not None else None,
            "params": self.to_dict(),
            "seed": self.run_seed(),
        }

    def run_seed(self) -> int:
        """The seed recorded with the run: the ``seed`` parameter, else the target's."""
        seed = getattr(self, "seed", None)
        if isinstance(seed, int):
            return seed
        if self.target is not None and self.target.recipe is not None:
            return self.target.recipe.seed
        return 0

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        """Compute the experiment on ``model`` (the resolved target) and return its outputs."""
        raise NotImplementedError

    def work(self, dataset: Dataset) -> Work | None:
        """What the run computes, besides getting its target: images through forward
        passes, input gradients and training steps per model (see :mod:`.estimate`, which
        prices them on this machine). ``None``: the experiment gives no estimate."""
        return None

    def estimate(self, dataset: Dataset) -> Estimate | None:
        """How long the run should take here, from this machine's measured prices (the
        target's training included when the zoo does not hold it yet)."""
        from .estimate import estimate

        return estimate(self, dataset)

    def describe(self, dataset: Dataset) -> str:
        """The run's label in lists: the experiment and the model it ran on."""
        on = f" · {self.target.describe()}" if self.target is not None else ""
        return f"{self.title}{on} on {dataset.name}"

    def job(self, dataset: Dataset) -> Callable[[Any], RunResult]:
        """The job function the runner calls: resolve the model, then :meth:`run`."""
        self.spec(dataset)  # validate now, not inside the job

        def fn(ctx: Any) -> RunResult:
            need = self.needs_model and self.target is not None
            get_model, body = split(ctx.progress, [self.model_share if need else 0.0, 1.0])
            model = self.target.resolve(dataset, get_model) if need else None
            result = self.run(dataset, model, body)
            if not result.label:
                result.label = self.describe(dataset)
            return result

        return fn

    @classmethod
    def result(cls, record: RunRecord) -> Any:
        """The typed view of a stored run of this experiment."""
        kind = record.spec.get("kind")
        if kind != cls.name:
            raise ValidationError(f"Run {record.key} is a {kind!r} run, not {cls.name!r}.")
        return cls.result_class(record)
