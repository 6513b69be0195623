"""Black-box evasion: SimBA and ZOO through a QueryModel (robustcore.attacks.evasion)."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest
import torch
from torch import nn

from robustcore.attacks.evasion import (
    BLACKBOX_ATTACKS,
    ZOO,
    BlackBoxAttack,
    QueryModel,
    SimBA,
)
from robustcore.attacks.evasion.simba import dct_matrix, frequency_levels, idct_2d
from robustcore.attacks.evasion.zoo import upsample_matrix
from robustcore.errors import ValidationError


class SumModel(nn.Module):
    """Two classes on 1×1×2 "images": logit 1 = 10·(x₀ + x₁ − 1.05), logit 0 = 0."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 10 * (x.flatten(1).sum(1) - 1.05)
        return torch.stack([torch.zeros_like(z), z], dim=1)


class Recorder:
    """A query monitor that remembers the highest query number seen per client."""

    def open(self, n: int) -> None:
        self.last = torch.zeros(n, dtype=torch.long)
        self.calls = 0

    def observe(self, x, clients, numbers):
        self.calls += 1
        self.last.scatter_reduce_(0, clients.cpu(), numbers.cpu(), reduce="amax")
        return torch.zeros_like(clients, dtype=torch.bool)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One CPU thread: the query batches are small, and idle-waiting threads on a busy
    machine slow them down many times over (see tests/oracle/conftest.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def target(tiny_cnn, mnist5k):
    """The session's tiny CNN and 24 test images it classifies correctly."""
    model = tiny_cnn.model
    x, y = mnist5k.x_test[:60], mnist5k.y_test[:60]
    with torch.inference_mode():
        ok = model(x).argmax(1) == y
    return model, x[ok][:24], y[ok][:24]


def _model_view(model, x_adv):
    with torch.inference_mode():
        return torch.softmax(model(x_adv), dim=1)


# ------------------------------------------------------------------- exact query counts


def test_simba_pixel_counts_queries_exactly_on_a_hand_checked_case():
    x = torch.tensor([[0.5, 0.5], [0.6, 0.6], [0.0, 0.0]]).view(3, 1, 1, 2)
    y = torch.tensor([0, 0, 0])
    rec = Recorder()
    api = QueryModel(SumModel(), monitors=(rec,))
    res = SimBA(basis="pixel", eps=0.2, max_queries=6, seed=0).run(api, x, y)
    # Image 0: query 1 (original), −0.2 on a pixel helps the wrong way (query 2), +0.2 makes
    # the sum 1.2 > 1.05: success at query 3.
    # Image 1: the sum 1.2 is already misclassified: success at query 1.
    # Image 2: darkening a 0 pixel is clipped away (not sent); brightening helps (queries 2,
    # 3); the next pass tries −0.2 (query 4, worse), +0.2 (query 5, better), then one more
    # −0.2 (query 6) and the budget of 6 is spent without success.
    assert res.queries.tolist() == [3, 1, 6]
    assert res.success.tolist() == [True, True, False]
    assert api.queries.tolist() == [3, 1, 6]
    assert rec.last.tolist() == [3, 1, 6]
    assert sorted(res.x_adv[0].flatten().tolist()) == pytest.approx([0.5, 0.7])
    assert torch.equal(res.x_adv[1], x[1])
    assert sorted(res.x_adv[2].flatten().tolist()) == pytest.approx([0.2, 0.4])
    # pred/confidence are the service's answers for the returned points
    p = _model_view(SumModel(), res.x_adv)
    assert torch.equal(res.pred, p.argmax(1))
    assert torch.allclose(res.confidence, p.amax(1))
    assert res.l2[2].item() == pytest.approx(math.sqrt(0.2**2 + 0.4**2), abs=1e-6)


def test_queries_match_the_service_counts_and_stop_at_success(target):
    model, x, y = target
    for attack in (SimBA(basis="dct", max_queries=300), ZOO(max_queries=400)):
        rec = Recorder()
        api = QueryModel(model, monitors=(rec,))
        res = attack.run(api, x, y)
        assert torch.equal(res.queries.cpu(), api.queries.cpu())
        # no image was queried after its success (the service saw no later query number)
        assert torch.equal(rec.last, res.queries.cpu())
        assert bool((res.queries <= attack.max_queries).all())
        p = _model_view(model, res.x_adv)
        assert torch.equal(res.pred, p.argmax(1))
        assert torch.allclose(res.confidence, p.amax(1), atol=1e-6)
        assert torch.equal(res.success, p.argmax(1) != y)
        # With a larger budget the successful images stop at the very same query.
        res2 = attack.replace(max_queries=2 * attack.max_queries).run(QueryModel(model), x, y)
        s = res.success
        assert torch.equal(res2.queries[s], res.queries[s])
        assert torch.equal(res2.x_adv[s], res.x_adv[s])


@pytest.mark.parametrize("attack", [SimBA(basis="pixel"), SimBA(basis="dct"), ZOO()])
def test_service_budget_below_max_queries_is_respected(target, attack):
    model, x, y = target
    api = QueryModel(model, budget=40)
    res = attack.run(api, x[:8], y[:8])  # must not raise QueryBudgetExceeded
    assert bool((api.queries <= 40).all())
    assert torch.equal(res.queries, api.queries)
    # images not fooled used the whole budget (ZOO needs 3 queries per iteration: ≥ 38)
    failed = ~res.success
    assert bool((res.queries[failed] >= 38).all())


def test_label_only_service_is_refused_with_a_clear_error(target):
    model, x, y = target
    api = QueryModel(model, output="labels")
    for cls in BLACKBOX_ATTACKS.values():
        with pytest.raises(ValidationError, match="labels only"):
            cls().run(api, x[:2], y[:2])
    assert int(api.queries.sum()) == 0  # refused before any query
    with pytest.raises(ValidationError, match="QueryModel"):
        SimBA().run(model, x[:2], y[:2])


# ------------------------------------------------------------------- success on the CNN


@pytest.mark.parametrize(
    "attack",
    [
        SimBA(basis="pixel", eps=0.2, max_queries=2000),
        SimBA(basis="dct", eps=0.2, max_queries=2000),
        ZOO(max_queries=3000),
    ],
    ids=["simba-pixel", "simba-dct", "zoo"],
)
def test_high_success_on_the_cnn(target, attack):
    model, x, y = target
    res = attack.run(QueryModel(model), x, y)
    assert res.success_rate >= 0.9, (attack, res.success_rate)
    assert bool((_model_view(model, res.x_adv).argmax(1)[res.success] != y[res.success]).all())
    assert bool((res.x_adv >= 0).all() and (res.x_adv <= 1).all())
    # far fewer queries than the budget for the median image
    assert float(res.queries[res.success].float().median()) < attack.max_queries / 2


@pytest.mark.parametrize("attack", [SimBA(basis="dct", eps=0.3), ZOO()], ids=["simba", "zoo"])
def test_targeted_attacks_reach_the_target(target, attack):
    model, x, y = target
    x, y = x[:10], y[:10]
    tgt = (y + 1) % 10
    res = attack.replace(max_queries=3000).run(QueryModel(model), x, y, targeted=True, target=tgt)
    assert res.success_rate >= 0.8
    pred = _model_view(model, res.x_adv).argmax(1)
    assert torch.equal(res.success, pred == tgt)
    assert torch.equal(res.pred, pred)


def test_zoo_confidence_gives_a_margin(target):
    model, x, y = target
    x, y = x[:8], y[:8]
    res = ZOO(confidence=3.0, max_queries=3000).run(QueryModel(model), x, y)
    assert res.success_rate >= 0.75
    logp = _model_view(model, res.x_adv).log()
    s = res.success
    own = logp[s].gather(1, y[s].unsqueeze(1)).squeeze(1)
    assert bool((logp[s].amax(1) - own >= 3.0 - 1e-4).all())


def test_bounds_are_respected():
    gen = torch.Generator().manual_seed(0)
    lin = nn.Linear(5, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(3, 5, generator=gen))
        lin.bias.zero_()
    lin.requires_grad_(False)
    x = torch.rand(16, 5, generator=gen)
    lo = torch.tensor([0.0, -1.0, 0.2, 0.0, 0.5])
    hi = torch.tensor([1.0, 2.0, 0.8, 0.0, 1.5])  # feature 3 cannot move at all
    x = torch.maximum(torch.minimum(x, hi), lo)
    with torch.inference_mode():
        y = lin(x).argmax(1)
    for attack in (SimBA(basis="pixel", eps=0.5, max_queries=200), ZOO(max_queries=200)):
        api = QueryModel(lin)
        res = attack.run(api, x, y, bounds=(lo, hi))
        assert bool(((res.x_adv >= lo) & (res.x_adv <= hi)).all())
        assert torch.equal(res.x_adv[:, 3], x[:, 3])
        assert torch.equal(res.queries, api.queries)
        assert res.success_rate > 0.5
    x4, y4 = torch.full((4, 1, 1, 2), 0.4), torch.zeros(4, dtype=torch.long)
    res = SimBA(basis="pixel", eps=0.3).run(QueryModel(SumModel()), x4, y4, bounds=(0.3, 0.5))
    assert bool(((res.x_adv >= 0.3) & (res.x_adv <= 0.5)).all())
    assert not bool(res.success.any())  # the sum can reach 1.0 at most


def test_same_seed_same_result_other_seed_other_order(target):
    model, x, y = target
    x, y = x[:6], y[:6]
    for attack in (SimBA(basis="pixel", max_queries=300), ZOO(max_queries=300, resize=14)):
        a = attack.run(QueryModel(model), x, y)
        b = attack.run(QueryModel(model), x, y)
        c = attack.replace(seed=1).run(QueryModel(model), x, y)
        assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries)
        assert not torch.equal(a.x_adv, c.x_adv)


def test_progress_is_reported_and_can_cancel(target):
    model, x, y = target
    seen = []
    SimBA(max_queries=200).run(
        QueryModel(model), x[:4], y[:4], progress=lambda f, m: seen.append(f)
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)

    class Stop(Exception):
        pass

    def cancel(frac, msg):
        if frac > 0:
            raise Stop

    api = QueryModel(model)
    with pytest.raises(Stop):
        ZOO(max_queries=2000).run(api, x[:4], y[:4], progress=cancel)
    assert int(api.queries.max()) < 2000


# ------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "cls, bad",
    [
        (SimBA, {"basis": "wavelet"}),
        (SimBA, {"eps": 0.0}),
        (SimBA, {"max_queries": 0}),
        (SimBA, {"freq_dim": 0}),
        (ZOO, {"c": -1.0}),
        (ZOO, {"coords_per_step": 0}),
        (ZOO, {"h": 0.0}),
        (ZOO, {"resize": -2}),
        (ZOO, {"unknown": 1}),
    ],
)
def test_bad_parameters_are_rejected(cls, bad):
    with pytest.raises(ValidationError):
        cls.from_dict(bad)


def test_bad_inputs_are_rejected(target):
    model, x, y = target
    api = QueryModel(model)
    with pytest.raises(ValidationError, match="same length"):
        SimBA().run(api, x[:3], y[:2])
    with pytest.raises(ValidationError, match="target class"):
        SimBA().run(api, x[:3], y[:3], targeted=True)
    with pytest.raises(ValidationError, match=r"0\.\.9"):
        SimBA().run(api, x[:3], y[:3], targeted=True, target=10)
    with pytest.raises(ValidationError, match="images shaped"):
        SimBA(basis="dct").run(QueryModel(nn.Linear(4, 2)), torch.rand(2, 4), torch.zeros(2).long())


def test_empty_batch_and_declarations():
    res = SimBA().run(QueryModel(SumModel()), torch.zeros(0, 1, 1, 2), torch.zeros(0).long())
    assert res.x_adv.shape == (0, 1, 1, 2) and res.queries.numel() == 0
    assert set(BLACKBOX_ATTACKS) == {"simba", "zoo"}
    for cls in BLACKBOX_ATTACKS.values():
        assert issubclass(cls, BlackBoxAttack)
        assert cls.paper and cls.title
        assert all(p.help for p in cls.params())
        assert {"max_queries", "seed"} <= set(cls().to_dict())


# ------------------------------------------------------------------- building blocks


def test_dct_basis_is_orthonormal_and_matches_scipy():
    fftpack = pytest.importorskip("scipy.fftpack")
    d = dct_matrix(7)
    assert torch.allclose(d @ d.T, torch.eye(7), atol=1e-6)
    z = torch.randn(2, 1, 7, 5, generator=torch.Generator().manual_seed(0))
    ref = fftpack.idct(fftpack.idct(z.numpy(), axis=3, norm="ortho"), axis=2, norm="ortho")
    assert torch.allclose(idct_2d(z), torch.from_numpy(ref).float(), atol=1e-5)
    lv = frequency_levels(6, 6, freq_dim=2, stride=2)
    assert lv[:2, :2].eq(0).all() and lv[0, 2] == 1 and lv[3, 1] == 1 and lv[5, 5] == 2


def test_upsample_matrix_is_torch_bilinear():
    small = torch.randn(3, 2, 7, 7, generator=torch.Generator().manual_seed(0))
    ref = torch.nn.functional.interpolate(small, size=(28, 28), mode="bilinear")
    uh = upsample_matrix(7, 28)
    assert torch.allclose(uh @ small @ uh.T, ref, atol=1e-5)
    assert torch.equal(upsample_matrix(5, 5), torch.eye(5))


# ------------------------------------------------------------------- CLI


def test_cli_blackbox_command():
    from robustcore.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["blackbox", "simba", "--arch", "logreg", "--dataset", "digits", "--n", "6"]
    argv += ["--basis", "pixel", "--eps", "0.5", "--max-queries", "300", "--budget", "250"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    assert rc == 0, err.getvalue()
    text = out.getvalue()
    summary = json.loads(text[text.index("{") :])
    assert summary["attack"] == "simba" and summary["images"] == 6
    assert summary["params"]["basis"] == "pixel" and summary["params"]["max_queries"] == 300
    assert summary["total_queries"] <= 6 * 250
    assert "success_rate" in text.splitlines()[0]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["blackbox", "zoo", "--c", "-3"]) == 2
    assert "at least" in err.getvalue()


def test_zoo_probe_groups_change_nothing(target, monkeypatch):
    """Large runs send ZOO's probes in groups of whole images to bound memory; the result
    and every client's query stream must equal the one-batch run."""
    import robustcore.attacks.evasion.zoo as zoo_module

    model, x, y = target
    attack = ZOO(resize=0, max_queries=600)
    whole = attack.run(QueryModel(model), x[:8], y[:8])
    monkeypatch.setattr(zoo_module, "MAX_PROBE_BYTES", 1)  # one image per group
    rec = Recorder()
    grouped = attack.run(QueryModel(model, monitors=[rec]), x[:8], y[:8])
    assert torch.equal(whole.queries, grouped.queries)
    assert torch.equal(whole.success, grouped.success)
    assert torch.equal(whole.x_adv, grouped.x_adv)
    assert torch.equal(rec.last, grouped.queries.cpu())


def test_blackbox_job_explains_dct_on_tabular_data():
    from robustcore.data import load
    from robustcore.errors import ValidationError
    from robustcore.models import build_model
    from robustcore.runs.blackbox_job import BlackBoxPlan, run_blackbox

    ds = load("breast_cancer")
    model = build_model("mlp", ds.input_shape, ds.num_classes)
    plan = BlackBoxPlan(attacks={"simba_dct": SimBA()}, n=5)
    with pytest.raises(ValidationError, match="DCT basis needs images"):
        run_blackbox(model, ds, plan)
