"""Model inversion (MIFace): reconstructions, priors, metrics, the job."""

from __future__ import annotations

import pytest
import torch

from robustcore.attacks.inference.inversion import (
    MIFace,
    class_means,
    correlation_matrix,
    invert,
    total_variation,
)
from robustcore.data import load
from robustcore.errors import JobCancelled, ValidationError
from robustcore.models import train_entry
from robustcore.runs import JobRunner, ResultStore
from robustcore.runs.inversion_job import inversion_job, inversion_spec


@pytest.fixture(scope="module")
def logreg(mnist5k):
    return train_entry("logreg", mnist5k, {"epochs": 5, "seed": 0}).model


def test_correlation_and_class_means(mnist5k):
    a = torch.rand(3, 1, 4, 4)
    corr = correlation_matrix(a, torch.cat([a, -a, torch.ones(1, 1, 4, 4)]))
    assert torch.allclose(corr[:, :3].diagonal(), torch.ones(3), atol=1e-5)
    assert torch.allclose(corr[:, 3:6].diagonal(), -torch.ones(3), atol=1e-5)
    assert torch.equal(corr[:, 6], torch.zeros(3))  # a constant image has no correlation
    means = class_means(mnist5k)
    assert means.shape == (10, 1, 28, 28)
    assert torch.allclose(means[3], mnist5k.x_train[mnist5k.y_train == 3].mean(0), atol=1e-6)


def test_miface_on_logistic_regression_recovers_recognisable_class_templates(mnist5k, logreg):
    result = invert(logreg, mnist5k, MIFace())
    assert result.images.shape == (10, 1, 28, 28)
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert torch.equal(result.classes, torch.arange(10))
    assert result.confidence.min() > 0.9
    assert torch.equal(result.predicted, result.classes)
    # Every reconstruction is closest to its own class's mean (Fredrikson et al.'s result
    # for softmax regression), and clearly correlated with it.
    assert result.identification_rate == 1.0
    assert result.correlation.mean() > 0.35
    assert len(result.history) > 2 and result.history["mean_confidence"].iloc[-1] > 0.9
    table = result.table(mnist5k.class_names)
    assert list(table["class"]) == [str(i) for i in range(10)]


def test_cnn_reconstructions_are_confident_but_less_like_the_data(mnist5k, logreg, tiny_cnn):
    lin = invert(logreg, mnist5k, MIFace(steps=300))
    cnn = invert(tiny_cnn.model, mnist5k, MIFace(steps=300))
    assert cnn.confidence.min() > 0.9
    # The known result: on a CNN MIFace finds adversarial-looking patterns.
    assert cnn.correlation.mean() < lin.correlation.mean() - 0.1


def test_total_variation_prior_smooths_and_priors_change_the_result(mnist5k, logreg):
    plain = invert(logreg, mnist5k, MIFace(steps=300))
    smooth = invert(logreg, mnist5k, MIFace(steps=300, tv_weight=0.005))
    assert total_variation(smooth.images).mean() < 0.7 * total_variation(plain.images).mean()
    assert smooth.confidence.min() > 0.5
    sparse = invert(logreg, mnist5k, MIFace(steps=300, l2_weight=0.01))
    assert sparse.images.pow(2).sum() < plain.images.pow(2).sum()


def test_stopping_rule_and_subset_of_classes(mnist5k, logreg):
    r = invert(logreg, mnist5k, MIFace(steps=2000, threshold=0.5), classes=[1, 7])
    assert torch.equal(r.classes, torch.tensor([1, 7]))
    assert r.images.shape == (2, 1, 28, 28)
    assert (r.steps < 2000).all()  # each stopped once confident
    assert (r.confidence >= 0.5).all()
    with pytest.raises(ValidationError, match="indices 0..9"):
        invert(logreg, mnist5k, MIFace(), classes=[10])
    with pytest.raises(ValidationError, match="MIFace instance"):
        invert(logreg, mnist5k, {"steps": 3})
    with pytest.raises(ValidationError, match="Loss"):
        MIFace(loss="hinge")


def test_cross_entropy_loss_and_uniform_start(mnist5k, logreg):
    r = invert(logreg, mnist5k, MIFace(steps=200, loss="cross_entropy", init="uniform", seed=1))
    again = invert(logreg, mnist5k, MIFace(steps=200, loss="cross_entropy", init="uniform", seed=1))
    assert torch.equal(r.images, again.images)  # seeded
    assert r.confidence.min() > 0.9


def test_tabular_mlp_inversion_stays_in_the_feature_bounds():
    ds = load("breast_cancer")
    model = train_entry("mlp", ds, {"epochs": 10}).model
    r = invert(model, ds, MIFace(steps=200))
    lo, hi = ds.bounds
    assert r.images.shape == (2, 30)
    assert bool(((r.images >= lo - 1e-6) & (r.images <= hi + 1e-6)).all())
    assert r.confidence.min() > 0.9
    assert r.identification_rate == 1.0


def test_cancellation_stops_the_descent(mnist5k, logreg):
    calls = []

    def progress(f, m):
        calls.append(f)
        if f > 0.1:
            raise JobCancelled("stop")

    with pytest.raises(JobCancelled):
        invert(logreg, mnist5k, MIFace(steps=1000, threshold=1.0), progress=progress)
    assert 0 < len(calls) < 20


def test_inversion_job_stores_reconstructions_and_is_served_again(mnist5k, logreg, tmp_path):
    config = MIFace(steps=200)
    spec = inversion_spec(mnist5k, "run-key-of-logreg", config)
    assert spec["kind"] == "inversion.miface" and spec["attack"]["steps"] == 200
    runner = JobRunner(ResultStore(tmp_path / "runs.sqlite"), max_workers=1)
    try:
        job = runner.submit(spec, inversion_job(logreg, mnist5k, config))
        record = job.wait(120).result
        assert job.state == "done", job.error
        assert record.artifact("reconstructions").shape == (10, 1, 28, 28)
        assert record.artifact("class_means").shape == (10, 1, 28, 28)
        table = record.table("per_class")
        assert len(table) == 10
        # Real images of a class correlate with their class mean more than MIFace does.
        assert 0.4 < record.metrics["real_images_correlation"] < 0.95
        assert record.metrics["mean_correlation"] < record.metrics["real_images_correlation"]
        assert runner.submit(spec, inversion_job(logreg, mnist5k, config)).from_store
    finally:
        runner.shutdown()


def test_inversion_figures():
    import numpy as np
    import pandas as pd

    from robustcore.viz.extraction import inversion_grid, inversion_profile, inversion_progress

    rec, means = np.random.rand(12, 1, 8, 8), np.random.rand(12, 1, 8, 8)
    names = [str(i) for i in range(12)]
    fig = inversion_grid(rec, means, names, confidence=[0.9] * 12, correlation=[0.5] * 12)
    assert len(fig.data) == 2 * 2 * 10  # two row pairs of 10 (the last padded with blanks)
    titles = [a.text for a in fig.layout.annotations]
    assert "0 · p=0.90 · r=0.50" in titles and "mean of 11" in titles
    prof = inversion_profile(np.random.randn(2, 30), np.random.randn(2, 30), ["a", "b"])
    assert len(prof.data) == 2
    hist = pd.DataFrame({"step": [1, 2], "mean_confidence": [0.1, 0.9], "min_confidence": [0, 1]})
    assert len(inversion_progress(hist).data) == 2
