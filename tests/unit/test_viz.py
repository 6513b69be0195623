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

    rates = {"adaptive": [1.0, 1.0, 1.0], "transfer": [1.0, 0.9, 1.0], "C&W": [1.0, 1.0, 0.8]}
    rows = [
        {"attack": a, "temperature": t, "success_rate": r}
        for a, rs in rates.items()
        for t, r in zip((1.0, 10.0, 100.0), rs, strict=True)
    ]
    fig = success_vs_temperature(pd.DataFrame(rows), undefended=1.0, eps=0.3)
    _serialisable(fig)
    widths = [t.line.width for t in fig.data]
    sizes = [t.marker.size for t in fig.data]
    # Drawn on top of each other where they meet, each later line is thinner: every one
    # shows; the reference line is drawn under them.
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    assert list(fig.layout.xaxis.ticktext) == ["1", "10", "100"]
    assert fig.layout.shapes[0].layer == "below"


def test_distillation_success_lines_that_are_identical_are_one_entry_that_says_so():
    from robustcore.viz.defensive_distillation import success_vs_temperature

    rows = [
        {"attack": a, "temperature": t, "success_rate": r}
        for a, rs in {"naive": [1.0, 0.9, 0.1], "adaptive": [1.0] * 3, "C&W": [1.0] * 3}.items()
        for t, r in zip((1.0, 10.0, 100.0), rs, strict=True)
    ]
    fig = success_vs_temperature(pd.DataFrame(rows))
    assert [t.name for t in fig.data] == ["naive", "identical: adaptive<br>= C&W"]
    np.testing.assert_allclose(fig.data[1].y, [1.0, 1.0, 1.0])


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


# -- legibility at the narrowest layout (issue 18; checked in a browser by
#    bench/legibility.py and tests/e2e/test_legibility_checker.py) ----------------------------


def test_wrap_text_and_captions():
    from robustcore.viz.figures import wrap_caption, wrap_text

    assert wrap_text("one two three four", 9) == "one two<br>three<br>four"
    assert wrap_text("a word-that-is-too-long b", 5) == "a<br>word-that-is-too-long<br>b"
    assert wrap_text("poison (ε = 0.3)", 8) == "poison<br>(ε = 0.3)"  # "a = b" stays whole
    assert wrap_text("x members\u00a0vs\u00a0non-members", 12) == "x<br>members vs non-members"
    assert wrap_caption("short", 20) == "short"
    # At the caption's own separators first: " · " is dropped at a break, "→" starts a line.
    assert wrap_caption("✓ true 6 · pred 6 (100%)", 13) == "✓ true 6<br>pred 6 (100%)"
    assert wrap_caption("true 1 → pred 0 (10%)", 14) == "true 1<br>→ pred 0 (10%)"
    assert wrap_caption("0 · p=0.99 · r=0.28", 10) == "0 · p=0.99<br>r=0.28"


def test_fit_title_breaks_lines_and_the_margin_holds_them():
    from robustcore.viz.figures import NARROW_PX, fit_title, title_top

    long = "Scores of LiRA online, fixed variance: members vs non-members (1st–99th percentile)"
    one, two = fit_title("Short title"), fit_title(long)
    assert one["text"] == "Short title" and two["text"].count("<br>") == 1
    assert all(len(line) * 0.5 * 16 <= NARROW_PX for line in two["text"].split("<br>"))
    assert title_top(two) > title_top(one) >= 50
    assert title_top(one, above=34) > title_top(one)  # room for subplot titles under it
    assert title_top(None, above=30) == 36


def test_image_grid_captions_wrap_to_their_column_and_rows_make_room():
    imgs = np.zeros((16, 1, 4, 4), dtype=np.float32)
    titles = [f"✓ true {i % 10} · pred {i % 10} (100%)" for i in range(16)]
    fig = image_grid(imgs, titles, ncols=8)
    texts = [a.text for a in fig.layout.annotations]
    assert texts[0] == "✓ true 0<br>pred 0 (100%)"
    one_line = image_grid(imgs, [f"{i}" for i in range(16)], ncols=8)
    # Two-line captions: more room between the rows and above the first one.
    assert fig.layout.margin.t > one_line.layout.margin.t
    assert fig.layout.height > one_line.layout.height
    # A grid drawn narrower (in a column) wraps sooner.
    narrow = image_grid(imgs[:6], ["with trigger"] * 6, ncols=6, width=340)
    assert narrow.layout.annotations[0].text == "with<br>trigger"
    assert image_grid(imgs[:6], ["with trigger"] * 6, ncols=6).layout.annotations[0].text == (
        "with trigger"
    )


def test_threat_figure_names_each_attack_once_in_horizontal_bars():
    from robustcore.viz.threat_models import threat_figure

    table = pd.DataFrame(
        {
            "threat_model": ["white-box", "gray-box", "black-box", "label-only"],
            "attack": ["PGD", "transfer (PGD)", "SimBA-DCT", "transfer (PGD)"],
            "success_rate": [0.93, 0.27, 0.8, 0.27],
            "success_within_eps": [0.93, 0.27, 0.03, 0.27],
            "queries_per_image": [0.0, 1.0, 583.0, 34.3],
            "seconds": [0.2, 0.1, 2.4, 0.1],
            "setup_seconds": [0.0, 2.4, 0.0, 2.6],
        }
    )
    fig = threat_figure(table, eps=0.2)
    _serialisable(fig)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert all(b.orientation == "h" for b in bars)
    assert list(bars[0].y) == ["white-box · PGD", "gray-box · transfer", "black-box · SimBA-DCT",
                               "label-only · transfer"]  # fmt: skip
    # One shared category axis, most knowledge at the top; only the first panel labels it.
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.yaxis2.matches == "y" or fig.layout.yaxis2.showticklabels is False
    assert fig.layout.xaxis2.type == "log" and fig.layout.xaxis2.dtick == 1  # no minor labels
    assert any(a.text == "none (gradients)" for a in fig.layout.annotations)
    assert fig.layout.margin.t >= 80  # the title above the two-line panel titles


def test_defense_effects_puts_the_auc_on_its_own_axis():
    from robustcore.viz.postprocessing import defense_effects_figure

    summary = pd.DataFrame(
        {
            "defense": ["No defense", "Ensemble ×3 (reject < 100% agree)"],
            "accuracy": [0.85, 0.82],
            "mi_auc": [0.74, 0.62],
            "mi_tpr@1%fpr": [0.09, 0.13],
            "extraction_fidelity": [0.92, 0.88],
        }
    )
    fig = defense_effects_figure(summary)
    _serialisable(fig)
    by_name = {t.name: t for t in fig.data}
    auc = by_name["membership AUC (strongest attack)"]
    rates = [t for t in fig.data if t is not auc]
    assert auc.xaxis == "x2" and all(t.xaxis == "x" for t in rates)
    assert all(t.orientation == "h" for t in fig.data)  # long defense names on the left
    assert fig.layout.xaxis.tickformat == ".0%"
    assert tuple(fig.layout.xaxis2.range) == (0.5, 1.0) and fig.layout.xaxis2.tickformat == ".1f"
    assert not fig.layout.shapes  # no "AUC of guessing" line drawn across the rates


def test_overfitting_figure_puts_the_auc_on_its_own_axis():
    from robustcore.viz.membership_inference import overfitting_figure

    sweep = pd.DataFrame(
        {
            "value": [1, 5, 40],
            "advantage": [0.15, 0.2, 0.36],
            "auc": [0.57, 0.6, 0.65],
            "gap": [0.1, 0.13, 0.16],
        }
    )
    fig = overfitting_figure(sweep, knob_title="Epochs")
    _serialisable(fig)
    axes = {t.name.split(",")[0].split(":")[0]: t.yaxis for t in fig.data}
    assert axes == {"gap": "y", "membership advantage": "y", "AUC": "y2"}
    assert fig.layout.yaxis.tickformat == ".0%" and fig.layout.yaxis2.tickformat == ".1f"
    assert fig.layout.yaxis2.range[0] == 0.5 and fig.layout.yaxis2.range[1] == 1.0


def test_a_degenerate_detection_delay_is_a_number_not_a_flat_box():
    from robustcore.viz.query_limitation import detection_delay_figure

    per = pd.DataFrame(
        {
            "attack": ["SimBA"] * 4 + ["ZOO"] * 4,
            "detected_at": [51, 51, 51, 0, 51, 60, 75, 90],
        }
    )
    fig = detection_delay_figure(per, k=50)
    _serialisable(fig)
    simba, zoo = fig.data
    assert isinstance(simba, go.Scatter) and simba.mode == "markers+text"
    assert simba.text == ("all 3 at<br>query 51",) and list(simba.y) == [51]
    assert isinstance(zoo, go.Box)  # a real spread keeps its box
    assert fig.layout.title.text.count("<br>") == 1  # fits a half-width column


def test_defended_query_curves_that_coincide_stay_visible():
    from robustcore.viz.query_limitation import budget_defense_figure

    rows = [
        {"attack": a, "defense": d, "budget": b, "success_rate": 0.08 if d != "no defense" else r}
        for a, r in (("SimBA (pixel)", 0.9), ("SimBA (DCT)", 0.95))
        for d in ("no defense", "stateful detector")
        for b in (1, 10, 100, 1000)
    ]
    fig = budget_defense_figure(pd.DataFrame(rows))
    widths = {t.name: t.line.width for t in fig.data}
    # The two defended lines lie on each other: the first attack's is wider.
    assert widths["SimBA (pixel) · stateful detector"] > widths["SimBA (DCT) · stateful detector"]
    assert widths["SimBA (pixel) · no defense"] == widths["SimBA (pixel) · stateful detector"]


def test_extraction_ticks_are_the_budgets():
    from robustcore.viz.model_extraction import extraction_curves

    rows = [
        {"output": "label", "query_source": "noise", "budget": b, "accuracy": 0.5, "fidelity": 0.6}
        for b in (100, 250, 500, 1000)
    ]
    fig = extraction_curves(pd.DataFrame(rows))
    assert list(fig.layout.xaxis.tickvals) == [100, 250, 500, 1000]
    assert list(fig.layout.xaxis.ticktext) == ["100", "250", "500", "1,000"]


def test_scorecard_chance_label_stands_above_the_bars():
    from robustcore.viz.scorecard import scorecard_figure

    table = pd.DataFrame(
        {
            "area": ["accuracy", "white-box evasion"],
            "check": ["Clean accuracy", "PGD"],
            "value": [0.96, 0.0],
            "verdict": ["good", "poor"],
        }
    )
    fig = scorecard_figure(table, chance=0.1)
    (note,) = fig.layout.annotations
    assert note.text == "chance 10%"
    assert note.yref == "y domain" and note.y == 1 and note.yanchor == "bottom"
