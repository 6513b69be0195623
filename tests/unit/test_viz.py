"""Plotly figures (robustcore.viz.figures): structure and serialisability."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from robustcore.viz.figures import (
    accuracy_vs_eps,
    confusion_matrix_figure,
    image_grid,
    training_curves,
)


def _serialisable(fig: go.Figure) -> dict:
    data = json.loads(fig.to_json())
    assert "data" in data and "layout" in data
    return data


def _curve(acc: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"eps": np.linspace(0.0, 0.3, len(acc)), "accuracy": acc})


# -- accuracy_vs_eps ------------------------------------------------------------------------


def test_accuracy_vs_eps_two_curves_and_chance():
    curves = {"FGSM": _curve([0.99, 0.6, 0.3, 0.1]), "PGD-40": _curve([0.99, 0.4, 0.05, 0.0])}
    fig = accuracy_vs_eps(curves, chance=0.1)
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 2
    assert [t.name for t in fig.data] == ["FGSM", "PGD-40"]
    assert all(isinstance(t, go.Scatter) for t in fig.data)
    assert fig.data[0].line.color != fig.data[1].line.color
    np.testing.assert_allclose(fig.data[1].y, [0.99, 0.4, 0.05, 0.0])
    # the chance line is a shape (not a trace) with its annotation
    assert len(fig.layout.shapes) == 1
    assert fig.layout.shapes[0].y0 == fig.layout.shapes[0].y1 == 0.1
    assert any(a.text == "chance" for a in fig.layout.annotations)
    assert fig.layout.yaxis.range == (0, 1.02)
    _serialisable(fig)


def test_coinciding_curves_stay_visible():
    # PGD and the worst case are often the same curve: the earlier one is drawn wider, so
    # its colour shows around the later one and every legend entry is on the chart.
    same = _curve([0.96, 0.3, 0.0])
    fig = accuracy_vs_eps({"FGSM": _curve([0.96, 0.5, 0.1]), "PGD": same, "Worst case": same})
    widths = [t.line.width for t in fig.data]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    assert fig.data[2].line.width >= 2


def test_accuracy_vs_eps_single_frame_no_chance():
    fig = accuracy_vs_eps(_curve([0.9, 0.5]))
    assert len(fig.data) == 1
    assert fig.data[0].name == "accuracy"  # unnamed curve falls back to the y column
    assert len(fig.layout.shapes) == 0
    _serialisable(fig)


def test_accuracy_vs_eps_custom_columns():
    df = pd.DataFrame({"sigma": [0.0, 0.5], "robust_acc": [0.9, 0.7]})
    fig = accuracy_vs_eps({"noise": df}, x="sigma", y="robust_acc", x_title="σ", chance=0.0)
    assert list(fig.data[0].x) == [0.0, 0.5]
    assert fig.layout.yaxis.title.text == "robust acc"
    assert fig.layout.xaxis.title.text == "σ"
    assert len(fig.layout.shapes) == 1  # chance=0.0 is still drawn
    _serialisable(fig)


# -- image_grid -----------------------------------------------------------------------------


def _images(traces, kind):
    return [t for t in traces if isinstance(t, kind)]


def test_image_grid_grayscale_tensor():
    imgs = torch.rand(5, 1, 8, 8)
    fig = image_grid(imgs, titles=[f"label {i}" for i in range(5)], ncols=3, title="Samples")
    assert isinstance(fig, go.Figure)
    images = _images(fig.data, go.Image)
    assert len(images) == len(fig.data) == 5
    z = np.asarray(images[0].z)
    assert z.shape == (8, 8, 3) and z.dtype == np.uint8
    assert (z[..., 0] == z[..., 1]).all()  # grey repeated on the three channels
    texts = [a.text for a in fig.layout.annotations]
    assert texts[:3] == ["label 0", "label 1", "label 2"]
    assert fig.layout.title.text == "Samples"
    _serialisable(fig)


def test_image_grid_rgb_numpy_values_clipped():
    imgs = np.full((2, 3, 4, 4), 2.0, dtype=np.float32)
    imgs[1] = -1.0
    fig = image_grid(imgs)
    images = _images(fig.data, go.Image)
    assert len(images) == 2
    assert np.asarray(images[0].z).max() == 255
    assert np.asarray(images[1].z).max() == 0
    _serialisable(fig)


def test_image_grid_with_perturbations():
    imgs = torch.rand(5, 3, 6, 6)
    pert = torch.zeros_like(imgs)
    pert[0, :, 0, 0] = 0.01
    pert[1, 0, 2, 2] = -0.02
    fig = image_grid(imgs, titles=list("abcde"), ncols=3, perturbations=pert)
    images = _images(fig.data, go.Image)
    heatmaps = _images(fig.data, go.Heatmap)
    assert len(images) == len(heatmaps) == 5
    # 2 image rows -> 4 subplot rows (image row + perturbation row each), 3 columns
    rows, cols = fig._get_subplot_rows_columns()
    assert (len(rows), len(cols)) == (4, 3)
    texts = [a.text for a in fig.layout.annotations]
    assert texts.count("perturbation") == 5
    # amplify=None scales the largest |perturbation| (summed over channels) to 1
    # (image 0: 3 x 0.01 = 0.03 at one pixel; image 1: -0.02), so image 1 peaks at 2/3.
    peaks = [np.abs(np.asarray(h.z)).max() for h in heatmaps]
    assert peaks[0] == pytest.approx(1.0, rel=1e-5)
    assert peaks[1] == pytest.approx(2 / 3, rel=1e-5)
    assert peaks[2:] == [0.0, 0.0, 0.0]
    assert all(h.zmin == -1 and h.zmax == 1 for h in heatmaps)
    _serialisable(fig)


def test_image_grid_all_zero_perturbation_no_division_by_zero():
    imgs = torch.rand(2, 1, 4, 4)
    with np.errstate(all="raise"):
        fig = image_grid(imgs, perturbations=torch.zeros_like(imgs))
    heatmaps = _images(fig.data, go.Heatmap)
    assert len(heatmaps) == 2
    for h in heatmaps:
        z = np.asarray(h.z, dtype=float)
        assert np.isfinite(z).all() and (z == 0).all()
    _serialisable(fig)


def test_image_grid_explicit_amplify():
    imgs = torch.zeros(1, 1, 2, 2)
    pert = torch.full((1, 1, 2, 2), 0.01)
    fig = image_grid(imgs, perturbations=pert, amplify=10.0)
    z = np.asarray(_images(fig.data, go.Heatmap)[0].z)
    np.testing.assert_allclose(z, 0.1, rtol=1e-5)


def test_image_grid_ncols_larger_than_n():
    fig = image_grid(torch.rand(2, 1, 4, 4), ncols=8)
    rows, cols = fig._get_subplot_rows_columns()
    assert (len(rows), len(cols)) == (1, 2)


# -- confusion matrix and training curves ---------------------------------------------------


def test_confusion_matrix_figure():
    cm = np.array([[5, 1, 0], [0, 4, 2], [1, 0, 6]])
    fig = confusion_matrix_figure(cm, ["cat", "dog", 7])
    assert len(fig.data) == 1
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    np.testing.assert_array_equal(np.asarray(heat.z), cm)
    assert list(heat.x) == list(heat.y) == ["cat", "dog", "7"]
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.xaxis.title.text == "predicted class"
    assert fig.layout.yaxis.title.text == "true class"
    _serialisable(fig)


def test_training_curves():
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "train_loss": [1.0, 0.5, 0.3],
            "train_acc": [0.6, 0.8, 0.9],
            "test_loss": [1.1, 0.6, 0.4],
            "test_acc": [0.55, 0.75, 0.85],
        }
    )
    fig = training_curves(history)
    assert len(fig.data) == 4
    assert all(isinstance(t, go.Scatter) for t in fig.data)
    assert [t.xaxis for t in fig.data] == ["x", "x2", "x", "x2"]
    assert [t.legendgroup for t in fig.data] == ["train", "train", "test", "test"]
    shown = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in shown] == ["training set", "test set"]
    np.testing.assert_allclose(fig.data[3].y, [0.55, 0.75, 0.85])
    _serialisable(fig)


def test_evasion_figures():
    import numpy as np
    import pandas as pd

    from robustcore.viz.figures import adversarial_gallery
    from robustcore.viz.whitebox import norm_histogram, success_vs_budget

    clean = np.random.default_rng(0).random((3, 1, 8, 8)).astype(np.float32)
    adv = np.clip(clean + 0.1, 0, 1)
    rows = pd.DataFrame(
        {
            "true": ["1", "2", "3"],
            "predicted": ["7", "2", "8"],
            "confidence": [0.9, 0.8, 0.7],
            "success": [True, False, True],
            "l2": [0.5, 0.4, 0.3],
        }
    )
    fig = adversarial_gallery(clean, adv, rows)
    assert len(fig.data) == 9  # original, adversarial, heat map per input
    assert any("pred 7" in a.text for a in fig.layout.annotations)
    curve = pd.DataFrame({"l2_budget": [0, 1, 2], "success_rate": [0, 0.5, 1]})
    assert success_vs_budget({"C&W": curve}).data[0].name == "C&W"
    assert len(norm_histogram({"a": [1, 2], "b": [3]}).data) == 2


def test_distillation_success_lines_that_coincide_stay_visible():
    from robustcore.viz.defensive_distillation import success_vs_temperature

    rows = [
        {"attack": a, "temperature": t, "success_rate": 1.0}
        for a in ("adaptive", "transfer", "C&W")
        for t in (1.0, 10.0, 100.0)
    ]
    fig = success_vs_temperature(pd.DataFrame(rows), undefended=1.0, eps=0.3)
    _serialisable(fig)
    widths = [t.line.width for t in fig.data]
    sizes = [t.marker.size for t in fig.data]
    # Drawn on top of each other, each later line is thinner: every one shows.
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    assert list(fig.layout.xaxis.ticktext) == ["1", "10", "100"]


def test_gradient_norm_zeros_are_drawn_left_of_every_nonzero_norm():
    from robustcore.viz.defensive_distillation import gradient_norm_histogram

    norms = pd.DataFrame(
        {"model": ["T=1"] * 3 + ["T=100"] * 3, "norm": [1e-3, 1e-2, 0.1, 0.0, 1e-21, 0.0]}
    )
    fig = gradient_norm_histogram(norms)
    _serialisable(fig)
    t100 = np.asarray(fig.data[1].x, dtype=float)
    zero_at = t100[[0, 2]]
    assert (zero_at == zero_at[0]).all() and zero_at[0] < np.log10(1e-21)
    assert f"{zero_at[0]:g}" in fig.layout.xaxis.title.text
