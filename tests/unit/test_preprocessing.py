"""Input preprocessing (robustcore.defenses.preprocessing) and feature squeezing
(robustcore.defenses.squeezing): the transforms, BPDA and EOT, the detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robustcore.attacks.evasion import PGD, Goal
from robustcore.defenses.inference import InferenceDefense
from robustcore.defenses.preprocessing import (
    EOT,
    JPEG,
    BitDepth,
    GaussianBlur,
    GaussianNoise,
    MedianFilter,
    PreprocessedModel,
    Preprocessing,
    RandomResizePad,
    quantisation_table,
)
from robustcore.defenses.squeezing import (
    AdaptiveSqueezing,
    FeatureSqueezing,
    SqueezingDetector,
    detection_metrics,
    threshold_for_fpr,
)
from robustcore.errors import ValidationError


@pytest.fixture(autouse=True)
def _one_thread():
    """The attacks here run on a handful of images: one thread is fastest for them, and
    steady on a machine shared with other jobs (restored after each test)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ALL = [
    BitDepth(bits=1),
    BitDepth(bits=4),
    MedianFilter(size=2),
    MedianFilter(size=3),
    GaussianBlur(sigma=1.0),
    JPEG(quality=50),
    GaussianNoise(sigma=0.3),
    RandomResizePad(shrink=4),
]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("t", ALL, ids=lambda t: t.short())
def test_each_transform_keeps_shape_and_bounds_and_is_deterministic(t, mnist5k):
    x = mnist5k.x_test[:16]
    out = t(x, bounds=mnist5k.bounds, generator=_gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    again = t(x, bounds=mnist5k.bounds, generator=_gen())
    assert torch.equal(out, again)  # the same draws for a random transform
    # Non-unit bounds (per pixel, as tensors) are kept as well.
    lo, hi = torch.full((1, 28, 28), -2.0), torch.full((1, 28, 28), 3.0)
    z = t(x * 5 - 2, bounds=(lo, hi), generator=_gen())
    assert float(z.min()) >= -2.0 and float(z.max()) <= 3.0


def test_one_bit_depth_maps_to_the_nearer_bound():
    x = torch.tensor([[[[0.0, 0.2, 0.49, 0.51], [0.8, 1.0, 0.5, 0.7]]]])
    out = BitDepth(bits=1)(x)
    assert out.tolist() == [[[[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0]]]]
    # On other bounds the levels are the bounds themselves; tabular vectors work too.
    v = torch.tensor([[-1.0, 0.9, 2.0], [0.4, 1.6, -0.9]])
    got = BitDepth(bits=1)(
        v, bounds=(torch.tensor([-1.0, 0.0, 0.0]), torch.tensor([1.0, 2.0, 2.0]))
    )
    assert got.tolist() == [[-1.0, 0.0, 2.0], [1.0, 2.0, 0.0]]  # -0.9 is clipped to 0 first


def test_the_2x2_median_is_xu_et_al_s_window():
    x = torch.arange(16, dtype=torch.float32).pow(1.3).view(1, 1, 4, 4)
    out = MedianFilter(size=2)(x, bounds=(0.0, 100.0))
    # Window: the pixel, the one above, the one left, the one above-left, edges repeated;
    # the upper of the two middle values (scipy.ndimage.median_filter(size=2)).
    win = [x[0, 0, 0, 0], x[0, 0, 0, 1], x[0, 0, 1, 0], x[0, 0, 1, 1]]
    assert out[0, 0, 1, 1] == sorted(win)[2]
    assert out[0, 0, 0, 0] == x[0, 0, 0, 0]
    from scipy.ndimage import median_filter

    img = torch.rand(2, 3, 9, 7, generator=_gen())
    for size, mode in ((2, "reflect"), (3, "nearest")):
        ref = median_filter(img.numpy(), size=(1, 1, size, size), mode=mode)
        assert np.allclose(MedianFilter(size=size)(img).numpy(), ref)


def test_jpeg_quality_100_is_nearly_the_identity_and_low_quality_distorts_more(mnist5k):
    x = mnist5k.x_test[:32]
    err = {q: float((JPEG(quality=q)(x) - x).abs().mean()) for q in (100, 75, 10)}
    assert err[100] < 0.002 < err[75] < err[10]
    assert quantisation_table(100).eq(1).all() and quantisation_table(50)[0, 0] == 16
    # Per-channel RGB at an odd size (padded to 8×8 blocks and cut back).
    rgb = torch.rand(2, 3, 13, 10, generator=_gen())
    assert JPEG(quality=20)(rgb).shape == rgb.shape
    with pytest.raises(ValidationError, match="between 1 and 100"):
        quantisation_table(0)


def test_blur_is_a_normalised_low_pass_filter():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    out = GaussianBlur(sigma=1.0)(x)
    assert abs(float(out.sum()) - 1.0) < 1e-5 and out[0, 0, 4, 4] < 0.2
    flat = torch.full((1, 1, 9, 9), 0.3)
    assert torch.allclose(GaussianBlur(sigma=2.0)(flat), flat)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    xg = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(xg), y)
    (g,) = torch.autograd.grad(loss, xg)
    return g


def test_bpda_gradients_flow_where_the_exact_ones_are_zero(mnist5k):
    net = _net()
    x, y = mnist5k.x_test[:8], mnist5k.y_test[:8]
    for pre in (Preprocessing(bits=1, median=2), Preprocessing(bits=0, median=0, jpeg=50)):
        exact = pre.wrap(net, bounds=mnist5k.bounds)
        bpda = pre.wrap(net, backward="bpda", bounds=mnist5k.bounds)
        assert torch.allclose(exact(x), bpda(x), atol=1e-6)  # the same forward values
        assert _input_grad(exact, x, y).abs().max() == 0  # rounding: no gradient at all
        assert (_input_grad(bpda, x, y) != 0).float().mean() > 0.5
    # Blur has a gradient of its own, which BPDA keeps.
    blur = Preprocessing(bits=0, median=0, blur=1.0)
    g = _input_grad(blur.wrap(net), x, y)
    assert torch.allclose(g, _input_grad(blur.wrap(net, backward="bpda"), x, y))


def test_bpda_breaks_what_the_naive_attack_cannot(mnist5k, tiny_cnn):
    # 2-bit depth + 2×2 median in front of the 1-epoch CNN, PGD-5 at ε = 0.2 on 32 images.
    # Seeds 0-2 of the model: naive accuracy 0.97-1.00, BPDA 0.00.
    x, y = mnist5k.x_test[:32], mnist5k.y_test[:32]
    pre, goal = Preprocessing(bits=2, median=2), Goal(bounds=mnist5k.bounds)
    acc = {}
    for bw in ("exact", "bpda"):
        res = PGD(steps=5).run(pre.wrap(tiny_cnn.model, backward=bw), x, y, eps=0.2, goal=goal)
        acc[bw] = float((res.pred == y).float().mean())
    assert acc["exact"] > 0.7 and acc["bpda"] < 0.2, acc


def test_the_wrapped_model_behaves_like_a_model(mnist5k):
    net = _net()
    net.train()
    pre = InferenceDefense.of("preprocessing", {"bits": 1, "median": 2})
    m = pre.wrap(net, bounds=mnist5k.bounds)
    assert isinstance(m, PreprocessedModel) and not m.training
    m.train()
    assert not m.training  # never trained: train() keeps eval mode
    assert m(mnist5k.x_test[:5]).shape == (5, 10)
    assert next(m.parameters()) is next(net.parameters())  # shared, on its device
    assert m.lo.device == next(net.parameters()).device
    assert pre.describe() == "1-bit depth + 2×2 median"
    assert InferenceDefense.from_spec(pre.spec()) == pre


def test_random_transforms_repeat_per_seed_and_eot_averages_probabilities(mnist5k):
    net = _net()
    x = mnist5k.x_test[:6]
    pre = Preprocessing(bits=0, median=0, random="resize_pad", shrink=4, seed=3)
    a, b = pre.wrap(net), pre.wrap(net)
    first = a(x)
    assert torch.equal(first, b(x))  # a fresh wrapper repeats the sequence of draws
    assert not torch.equal(first, a(x))  # each call draws anew
    eot = pre.wrap(net, backward="bpda", eot=5)
    assert isinstance(eot, EOT)
    out = eot(x)
    assert out.shape == (6, 10)
    assert torch.allclose(out.exp().sum(1), torch.ones(6), atol=1e-5)
    # By hand: the mean of the softmax over the five draws of each input.
    ref = pre.wrap(net, backward="bpda")
    probs = torch.softmax(ref(x.repeat_interleave(5, dim=0)), 1).view(6, 5, 10).mean(1)
    assert torch.allclose(out.exp(), probs, atol=1e-5)
    with pytest.raises(ValidationError, match="random transform"):
        Preprocessing(bits=1).wrap(net, eot=4)


def test_settings_are_validated_and_tabular_data_gets_what_fits(mnist5k):
    with pytest.raises(ValidationError, match="at least one transform"):
        Preprocessing(bits=0, median=0)
    with pytest.raises(ValidationError):
        Preprocessing(median=4)
    assert "noise_sigma" not in Preprocessing().to_dict()
    assert Preprocessing(random="noise").to_dict()["noise_sigma"] == 0.1
    v = torch.rand(4, 30, generator=_gen())
    bounds = (torch.zeros(30), torch.ones(30))
    ok = Preprocessing(bits=2, median=0, random="noise", noise_sigma=0.2)
    assert ok.apply(v, bounds=bounds, generator=_gen()).shape == v.shape
    ok.check_modality("tabular")
    with pytest.raises(ValidationError, match="images only"):
        Preprocessing(bits=1, median=2).check_modality("tabular")
    with pytest.raises(ValidationError, match="images only"):
        Preprocessing(bits=1, median=2).wrap(_net(), bounds=bounds)
    with pytest.raises(ValidationError, match=r"\(N, C, H, W\)"):
        MedianFilter(size=2)(v, bounds=bounds)
    with pytest.raises(ValidationError, match="backward"):
        Preprocessing().wrap(_net(), backward="magic")


def test_the_threshold_gives_about_the_target_fpr_on_clean_data(mnist5k, tiny_cnn):
    # Calibrated on 500 clean test images, measured on the other 500 (seeds 0-2 of the
    # 1-epoch CNN: 5.6-6.6 % flagged; ±2 points is two standard errors on 500 images).
    det = SqueezingDetector(tiny_cnn.model, FeatureSqueezing(fpr=0.05), bounds=mnist5k.bounds)
    tau = det.calibrate(mnist5k.x_test[:500])
    assert abs(float(det.scores(mnist5k.x_test[:500]).gt(tau).float().mean()) - 0.05) < 0.005
    held_out = float(det.flags(mnist5k.x_test[500:]).float().mean())
    assert abs(held_out - 0.05) < 0.03, held_out
    s = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert threshold_for_fpr(s, 0.2) == pytest.approx(0.7)  # flags 0.8 and 0.9


def test_feature_squeezing_beats_chance_and_the_adaptive_attacker_evades_it(mnist5k, tiny_cnn):
    model = tiny_cnn.model
    det = SqueezingDetector(model, FeatureSqueezing(), bounds=mnist5k.bounds)
    tau = det.calibrate(mnist5k.x_test[:500])
    x, y = mnist5k.x_test[500:560], mnist5k.y_test[500:560]
    res = PGD(steps=10).run(model, x, y, eps=0.3, goal=Goal(bounds=mnist5k.bounds))
    ok = res.success & (model(x).argmax(1) == y)
    m = detection_metrics(det.scores(x), det.scores(res.x_adv)[ok], tau)
    # Seeds 0-2 of the 1-epoch CNN: AUC 0.952-0.984, detection 82-87 % at 5 % FPR.
    assert m["auc"] > 0.85 and m["detection_rate"] > 0.6, m
    # The adaptive attacker (small budget: 6 images, 2 × 40 steps) stays under the
    # threshold on what it fools. Seeds 0-2: it fools 4-6 of the 6, none of them detected.
    xs, ys = x[ok][:6], y[ok][:6]
    adv = AdaptiveSqueezing(lam=1.0, binary_search_steps=2, max_iter=40).run(det, xs, ys)
    assert int(adv.fooled.sum()) >= 3 and int(adv.detected[adv.fooled].sum()) <= 1, adv
    assert torch.equal(adv.success, adv.fooled & ~adv.detected)
    assert float(adv.x_adv.min()) >= 0.0 and float(adv.x_adv.max()) <= 1.0


def test_the_experiment_refuses_image_transforms_on_tabular_data():
    from robustcore.data import load
    from robustcore.experiments.input_preprocessing import InputPreprocessing

    ds = load("breast_cancer")
    InputPreprocessing.for_dataset(ds).check_data(ds)  # its defaults fit tabular data
    with pytest.raises(ValidationError, match="images only"):
        InputPreprocessing.for_dataset(ds, defense={"bits": 1, "median": 2}).check_data(ds)
