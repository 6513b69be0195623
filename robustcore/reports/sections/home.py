"""Report sections of the Home page: the current model ("train") and its robustness
scorecard ("scorecard")."""

from __future__ import annotations

from ...data import Dataset
from ...evaluation.sanity import SanityCheck
from ...experiments.scorecard import THRESHOLDS, ScorecardResult
from ...experiments.train import TrainResult
from ...viz import confusion_matrix_figure, image_grid, training_curves
from ...viz.home import TRAINING_SET, sample_titles, train_name
from ...viz.scorecard import scorecard_figure, shown_table, verdicts_caption
from ..blocks import Block, Chart, Checks, Metric, Metrics, Table, Text, accuracy_basis, num, pct
from . import Part, builder, flagged_note

SAMPLES_CAPTION = (
    "Test images: the model's most confident mistakes first (up to half the grid), then "
    "correctly classified ones; ✓/✗ marks whether the prediction is right."
)


@builder("train")
def train(res: TrainResult, dataset: Dataset | None) -> Part:
    """Home's view of the current model: accuracy, curves, confusion, samples, per class."""
    cm = res.confusion()
    classes = dataset.num_classes if dataset is not None else len(cm.columns)
    items = [
        Metric(
            "Clean test accuracy",
            pct(res.clean_accuracy),
            f"On {res.n_test:,} held-out test examples.",
        ),
        Metric("Chance level", pct(1.0 / classes), "Accuracy of guessing the class."),
    ]
    if res.train_accuracy is not None:
        if res.training_inputs == TRAINING_SET:
            gap = res.train_accuracy - res.clean_accuracy
            items.append(Metric("Training accuracy", pct(res.train_accuracy), f"gap {gap:+.1%}"))
        else:
            items.append(
                Metric(
                    "Training accuracy (perturbed)",
                    pct(res.train_accuracy),
                    f"On {res.training_inputs}, not on clean images.",
                )
            )
        items.append(Metric("Training time", f"{num(res.train_seconds, '.1f')} s"))
    else:
        items.append(Metric("Test examples", f"{res.n_test:,}"))
    n_test = dataset.n_test if dataset is not None else res.n_test
    blocks: list[Block] = [
        Metrics(tuple(items), caption=accuracy_basis(res.n_test, n_test, home=True))
    ]
    if res.method_label:
        blocks.append(Text(f"Trained by **{res.method_label}**."))
    if res.watchdog:
        blocks.append(Text(f"**Watchdog** — {res.watchdog}"))
    history = res.history()
    if history is not None and len(history):
        blocks.append(
            Chart("curves", training_curves(history, train_name=train_name(res.training_inputs)))
        )
    else:
        blocks.append(Text("An uploaded model has no training curves."))
    blocks.append(Chart("confusion", confusion_matrix_figure(cm.to_numpy(), list(cm.columns))))
    samples = res.samples()
    imgs = res.sample_images()  # stored for image data only
    if imgs is not None and (dataset is None or dataset.modality == "image"):
        blocks.append(
            Chart(
                "samples",
                image_grid(imgs, sample_titles(samples), ncols=8),
                caption=SAMPLES_CAPTION,
            )
        )
        blocks.append(Table("samples", "Sample predictions", samples))
    else:
        blocks.append(Table("samples", "Sample predictions", samples, caption=SAMPLES_CAPTION))
    blocks.append(Table("per_class", "Per-class accuracy", res.per_class()))
    return Part(
        blocks,
        threat=(
            "No attacker: the model's accuracy on clean held-out test data, which says "
            "nothing about its robustness to changed inputs, poisoned data or privacy attacks."
        ),
        tried=set(),
    )


def _reaches_chance(res: ScorecardResult) -> list[SanityCheck]:
    """The scorecard's sanity check (the unbounded PGD row) with its verdict."""
    failed = res.failed_checks()
    if failed:
        return failed
    rows = res.table()
    row = rows[rows["area"] == "evaluation"]
    if not len(row):
        return []
    return [SanityCheck(str(row["check"].iloc[0]), "pass", str(row["meaning"].iloc[0]))]


@builder("scorecard")
def scorecard(res: ScorecardResult, dataset: Dataset | None) -> Part:
    """Home's robustness scorecard: headline numbers, the accuracy chart, the table."""
    table = res.table()
    n_test = dataset.n_test if dataset is not None else None
    pgd_delta = f"{res.pgd_large_accuracy - res.clean_accuracy:+.1%}"
    blocks: list[Block] = [
        Metrics(
            (
                Metric("Clean accuracy", pct(res.clean_accuracy)),
                Metric(
                    "PGD, large ε",
                    pct(res.pgd_large_accuracy),
                    flagged_note(res.failed_checks(), pgd_delta),
                ),
                Metric("SimBA success", pct(res.simba_success, 0)),
                Metric("Membership AUC", f"{res.membership_auc:.3f}"),
            ),
            caption=accuracy_basis(res.n, n_test),
        ),
        Chart("scorecard", scorecard_figure(table, chance=res.chance)),
        Table("scorecard", "Scorecard", shown_table(table), caption=verdicts_caption(THRESHOLDS)),
    ]
    checks = _reaches_chance(res)
    if checks:
        blocks.append(Checks(tuple(checks)))
    p = res.params()
    return Part(
        blocks,
        threat=(
            f"Four attackers on {res.n:,} test images: random Gaussian noise "
            f"(σ = {p.get('noise_std', '?')}); a white-box attacker with the model's "
            f"gradients (PGD-{p.get('pgd_steps', '?')}, L∞ ε = {p.get('eps_small', '?')} and "
            f"{p.get('eps_large', '?')}); a black-box attacker who reads only probabilities "
            f"(SimBA, at most {p.get('query_budget', 0):,} queries per image); and a "
            "membership attacker who thresholds the loss. Measured by accuracy, success "
            "rate and AUC."
        ),
        tried={"PGD", "SimBA", "Membership inference"},
    )
