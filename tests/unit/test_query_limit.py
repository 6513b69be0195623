"""Query limitation: the stateful detector (Chen, Carlini & Wagner 2020), its calibration,
the query budget with it, the adaptive attacker's accounts and the page's measurement."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.report_check import check_section

from robustcore.attacks.evasion import QueryModel, SimBA
from robustcore.attacks.evasion.adaptive import AccountRotation, AdaptiveAttacker, BlindedQueryModel
from robustcore.defenses.query_limit import (
    BenignStreams,
    QueryLimit,
    StatefulDetector,
    benign_false_alarms,
)
from robustcore.errors import ValidationError
from robustcore.evaluation import success_within
from robustcore.experiments import Target
from robustcore.experiments.query_limitation import QueryLimitation


def reference_scores(calls, k: int, history: int) -> list[float]:
    """One query at a time, in order: the mean distance to the k nearest of the client's
    previous queries numbered in [N - history, N - 1] (inf with fewer than k)."""
    seen: dict[int, list[tuple[int, torch.Tensor]]] = {}
    out = []
    for x, clients, numbers in calls:
        for xi, c, n in zip(x, clients.tolist(), numbers.tolist(), strict=True):
            prev = [v for m, v in seen.get(c, []) if n - history <= m <= n - 1]
            if len(prev) < k:
                out.append(math.inf)
            else:
                d = sorted(float(torch.linalg.vector_norm(xi - v)) for v in prev)
                out.append(sum(d[:k]) / k)
            seen.setdefault(c, []).append((n, xi.flatten()))
    return out


def random_calls(n_clients=4, n_calls=40, dim=5, seed=0):
    """Interleaved calls: several queries per client per call, in random client order."""
    gen = torch.Generator().manual_seed(seed)
    count = [0] * n_clients
    calls = []
    for _ in range(n_calls):
        m = int(torch.randint(1, 9, (1,), generator=gen))
        clients = torch.randint(0, n_clients, (m,), generator=gen)
        numbers = []
        for c in clients.tolist():
            count[c] += 1
            numbers.append(count[c])
        calls.append((torch.randn(m, dim, generator=gen), clients, torch.tensor(numbers)))
    return calls


def test_vectorised_scores_match_one_query_at_a_time():
    calls = random_calls()
    det = StatefulDetector(3, history=7, ban=False)  # a short ring: old queries drop out
    det.open(4)
    got = torch.cat([det.score(*call) for call in calls]).tolist()
    want = reference_scores(calls, k=3, history=7)
    assert len(got) == len(want) > 100
    for g, w in zip(got, want, strict=True):
        assert (math.isinf(g) and math.isinf(w)) or abs(g - w) < 1e-4, (g, w)
    assert sum(math.isfinite(w) for w in want) > 20  # the comparison is not all inf


def test_queries_of_one_call_see_only_earlier_ones():
    det = StatefulDetector(1, threshold=0.5, history=10, ban=False)
    det.open(2)
    a = torch.zeros(1, 4)
    far = torch.full((1, 4), 10.0)
    # client 0: a, then a copy of a in the same call; client 1: far, then a
    x = torch.cat([a, a + 0.01, far, a])
    flags = det.observe(x, torch.tensor([0, 0, 1, 1]), torch.tensor([1, 2, 1, 2]))
    assert flags.tolist() == [False, True, False, False]  # clients never share history
    assert det.detected_at.tolist() == [2, 0]


def test_ring_buffer_forgets_what_is_older_than_history():
    history = 6
    det = StatefulDetector(1, threshold=0.5, history=history, ban=False)
    det.open(1)
    x0 = torch.zeros(1, 3)
    det.observe(x0, torch.tensor([0]), torch.tensor([1]))
    for i in range(history):  # far-apart queries push x0 out of the ring
        det.observe(torch.full((1, 3), 10.0 * (i + 1)), torch.tensor([0]), torch.tensor([i + 2]))
    assert det._buf.shape == (1, history, 3)  # memory is bounded
    assert not bool(det.observe(x0, torch.tensor([0]), torch.tensor([history + 2]))[0])
    det2 = StatefulDetector(1, threshold=0.5, history=history + 1, ban=False)
    det2.open(1)
    det2.observe(x0, torch.tensor([0]), torch.tensor([1]))
    for i in range(history):
        det2.observe(torch.full((1, 3), 10.0 * (i + 1)), torch.tensor([0]), torch.tensor([i + 2]))
    assert bool(det2.observe(x0, torch.tensor([0]), torch.tensor([history + 2]))[0])


def test_calibration_hits_its_false_positive_rate(mnist5k):
    det = StatefulDetector(10, history=500)
    benign = mnist5k.x_train[:2000]
    thr = det.calibrate(benign, 0.01, seed=3)
    scores = det.calibration_scores
    assert scores.numel() == 2000 - 10  # every query with 10 earlier ones is judged
    rate = float((scores < thr).float().mean())
    assert 0.01 - 1.0 / scores.numel() <= rate <= 0.01
    # the same stream again, scored by the calibrated detector, flags that share
    order = torch.randperm(2000, generator=torch.Generator().manual_seed(3))
    again = det.stream_scores(benign[order])
    assert float((again[torch.isfinite(again)] < thr).float().mean()) == pytest.approx(rate)


@pytest.fixture(scope="module")
def calibrated(mnist5k):
    det = StatefulDetector(20, history=400)
    det.calibrate(mnist5k.x_train[:1500], 0.001)
    return det


def test_simba_is_caught_quickly_and_benign_clients_rarely(calibrated, tiny_cnn, mnist5k):
    model = tiny_cnn.model
    x, y = mnist5k.x_test[:12], mnist5k.y_test[:12]
    naive = calibrated.clone(ban=True)
    api = QueryModel(model, budget=300, monitors=[naive])
    res = SimBA(basis="dct").run(api, x, y, eps=0.2, max_queries=300)
    long = res.queries > 21  # attacks that sent more than k queries
    # Seeds 0-4 of the model, SimBA and the calibration (bench/threshold_spread.py): 11-12
    # such images, every one flagged at query 21; no benign query flagged.
    assert int(long.sum()) >= 8
    # every such attacker is flagged at the first query the detector can judge
    assert api.detected_at[long].tolist() == [21] * int(long.sum())
    assert torch.equal(api.detected_at.cpu(), naive.detected_at.cpu())
    table, m, _ = benign_false_alarms(
        calibrated, mnist5k.x_test, BenignStreams(clients=5, queries=120)
    )
    assert m["benign_judged"] == 5 * 100
    assert m["benign_fpr"] <= 0.01
    assert table["flagged"].sum() <= 5


def test_budget_and_detector_together(calibrated, tiny_cnn, mnist5k):
    x, y = mnist5k.x_test[20:30], mnist5k.y_test[20:30]
    api = QueryModel(tiny_cnn.model, budget=100, monitors=[calibrated.clone()])
    res = SimBA(basis="pixel").run(api, x, y, eps=0.2, max_queries=10_000)
    assert int(api.queries.max()) <= 100 and torch.equal(api.queries.cpu(), res.queries.cpu())
    caught = api.detected_at.cpu()
    plain = success_within(res.success, res.queries, 100)
    defended = success_within(res.success, res.queries, 100, caught_at=caught)
    assert bool((defended <= plain).all())
    assert int((caught == 21).sum()) == int((res.queries > 20).sum())


def test_account_rotation_counts_accounts_exactly():
    k, n = 5, 1000
    det = StatefulDetector(k, threshold=0.5, history=100)
    base = torch.zeros(1, 4)
    stream = base + 1e-3 * torch.arange(n, dtype=torch.float32).unsqueeze(1)  # near duplicates
    resume, rotate = AccountRotation(det, None), AccountRotation(det, k)
    api = QueryModel(torch.nn.Sequential(torch.nn.Linear(4, 2)), monitors=[resume, rotate])
    api.open(1)
    for i in range(0, n, 64):  # several bans inside one call
        api(stream[i : i + 64], 0)
    # after each ban a new account: k unjudgeable queries, then the (k+1)-th is flagged
    assert resume.bans.tolist() == [n // (k + 1)]
    assert resume.accounts.tolist() == [math.ceil(n / (k + 1))]
    # switching every k queries is never caught
    assert rotate.bans.tolist() == [0] and rotate.accounts.tolist() == [n // k]
    assert api.detected_at.tolist() == [0]  # what-if monitors never flag


def test_query_blinding_adds_noise_inside_bounds():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    seen = []

    class Spy:
        def open(self, n):
            pass

        def observe(self, x, clients, numbers):
            seen.append(x.clone())
            return torch.zeros(x.shape[0], dtype=torch.bool)

    api = BlindedQueryModel(model, sigma=0.3, seed=1, monitors=[Spy()])
    api.open(1)
    x = torch.full((2, 1, 2, 2), 0.5)
    api(x, 0)
    assert not torch.equal(seen[0], x) and float(seen[0].min()) >= 0 and float(seen[0].max()) <= 1


def test_features_encoder_uses_penultimate_activations(tiny_cnn, mnist5k):
    det = StatefulDetector(5, history=50, encoder="features", model=tiny_cnn.model)
    assert det.encode(mnist5k.x_test[:3]).shape == (3, 128)
    assert det.calibrate(mnist5k.x_train[:300], 0.05) > 0


def test_bad_parameters_are_refused():
    with pytest.raises(ValidationError, match="k"):
        QueryLimit(k=0)
    with pytest.raises(ValidationError, match="smaller than the history"):
        QueryLimit(k=200, history=100)
    with pytest.raises(ValidationError, match="one of"):
        QueryLimit(encoder="hashes")
    with pytest.raises(ValidationError, match="at least"):
        AdaptiveAttacker(per_account=-1)
    with pytest.raises(ValidationError, match="smaller than history"):
        StatefulDetector(5, history=5)
    with pytest.raises(ValidationError, match="model"):
        StatefulDetector(5, encoder="features")
    det = StatefulDetector(2, history=10)
    det.open(1)
    with pytest.raises(ValidationError, match="calibrate"):
        det.observe(torch.zeros(1, 3), torch.tensor([0]), torch.tensor([1]))
    with pytest.raises(ValidationError, match="fpr"):
        det.calibrate(torch.rand(20, 3), 0.0)
    with pytest.raises(ValidationError, match="more than k"):
        det.calibrate(torch.rand(2, 3), 0.1)
    with pytest.raises(ValidationError, match="Client ids"):
        _open_and_observe_bad_client()
    with pytest.raises(ValidationError, match="σ"):
        BlindedQueryModel(torch.nn.Linear(2, 2), sigma=-1.0)
    with pytest.raises(ValidationError, match="Attacks must be one of"):
        QueryLimitation(attacks=("boundary",))


def _open_and_observe_bad_client():
    det = StatefulDetector(1, threshold=1.0, history=4)
    det.open(2)
    det.observe(torch.zeros(1, 2), torch.tensor([3]), torch.tensor([1]))


def test_run_reports_delay_success_false_alarms_and_accounts(tiny_cnn, mnist5k):
    exp = QueryLimitation(
        limit=QueryLimit(budget=300, k=20, history=200, calibration=800),
        attacks=("simba_dct",),
        adaptive=AdaptiveAttacker(),
        benign=BenignStreams(clients=3, queries=60),
        n=8,
    )
    spec = exp.on(Target.zoo("small_cnn", {"epochs": 1, "seed": 0})).spec(mnist5k)
    assert "zoo" not in spec["params"]  # what does not run stays out of the key
    assert spec["params"]["limit"]["budget"] == 300  # the one query budget
    res = exp.run(mnist5k, tiny_cnn.model)
    m, t = res.metrics, res.tables
    assert int(t["per_image"]["queries"].max()) <= 300  # the budget ends the attack
    assert m["k"] == 20 and m["budget"] == 300 and m["benign_queries"] == 180
    row = t["summary"].iloc[0]
    assert row["success_before_detection"] <= row["success_no_defense"]
    per = t["per_image"]
    assert len(per) == 8 and set(per["detected_at"]) <= {0, 21}
    assert (per["accounts_rotate"] == (per["queries"] / 20).apply(math.ceil)).all()
    curves = t["curves"]
    with_det = curves[curves["defense"] == "stateful detector"]["success_rate"].to_numpy()
    without = curves[curves["defense"] == "no defense"]["success_rate"].to_numpy()
    assert (with_det <= without + 1e-12).all()
    assert {"benign", "scores"} <= set(t)


def test_experiment_result_reads_back_through_the_runner(tiny_cnn, mnist5k):
    """The page's experiment through the runner and the store, read by its typed result."""
    from robustcore.runs import get_runner

    exp = QueryLimitation(
        limit=QueryLimit(budget=150, k=10, history=100, calibration=300),
        attacks=("zoo",),
        adaptive=AdaptiveAttacker(blinding=0.02),
        benign=BenignStreams(clients=2, queries=40),
        n=4,
    ).on(Target.zoo("small_cnn", {"epochs": 1, "seed": 0}))
    assert "simba" not in exp.to_dict() and "eps" not in exp.to_dict()  # SimBA does not run
    job = get_runner().submit(exp, mnist5k)
    job.wait()
    assert job.state == "done", job.error
    res = QueryLimitation.result(job.result)
    check_section(job.result, {"budget", "delay", "accounts", "benign"})
    assert res.attacks == ["ZOO"] and res.budget == 150 and res.k == 10 and res.n == 4
    (row,) = res.attack_summaries()
    assert row.attack == "ZOO" and row.success_before_detection <= row.success_no_defense
    assert row.per_account == res.per_account == 10  # 0 queries per account means k
    assert res.has_blinding and list(res.blinding()["attack"]) == ["ZOO"]
    defenses = set(res.curves()["defense"])
    assert defenses == {"no defense", "stateful detector", "blinded, stateful detector"}
    assert res.benign_queries == 80 and len(res.benign_clients()) == 2
    assert len(res.benign_distances()) == res.benign_judged == 2 * (40 - 10)
    assert 0 <= res.benign_fpr <= 1 and res.threshold > 0
    assert set(res.cli_tables()) == {"summary", "blinding"}
    assert res.summary()["budget"] == 150
