"""The black-box threat model as a type: query counting, budgets, label-only answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustcore.defenses.postprocess import Rounding
from robustcore.errors import ValidationError
from robustcore.evaluation import success_vs_queries, success_within
from robustcore.threat import QueryBudgetExceeded, QueryModel, QueryMonitor


@pytest.fixture()
def linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()


class FlagFromThird:
    """A monitor that flags every query from the third of its client's stream on."""

    def __init__(self) -> None:
        self.seen: list[tuple[list[int], list[int]]] = []

    def open(self, n: int) -> None:
        self.seen.clear()

    def observe(self, x, clients, numbers):
        self.seen.append((clients.tolist(), numbers.tolist()))
        return numbers >= 3


def test_counts_every_query_per_client(linear):
    api = QueryModel(linear)
    api.open(3)
    out = api(torch.rand(5, 1, 2, 2), torch.tensor([0, 2, 0, 0, 1]))
    assert out.shape == (5, 3)
    assert torch.allclose(out.sum(dim=1), torch.ones(5))
    assert api.queries.tolist() == [3, 1, 1]
    api(torch.rand(3, 1, 2, 2))  # one per client, in order
    assert api.queries.tolist() == [4, 2, 2]
    assert api.num_classes == 3


def test_budget_is_enforced_before_answering(linear):
    api = QueryModel(linear, budget=3)
    api.open(2)
    api(torch.rand(2, 1, 2, 2), 0)
    with pytest.raises(QueryBudgetExceeded, match="client"):
        api(torch.rand(2, 1, 2, 2), torch.tensor([0, 0]))
    assert api.queries.tolist() == [2, 0]  # the refused call counted nothing
    assert api.remaining().tolist() == [1, 3]
    api(torch.rand(1, 1, 2, 2), 0)
    assert api.remaining().tolist() == [0, 3]


def test_label_only_never_returns_probabilities(linear):
    api = QueryModel(linear, output="labels")
    api.open(4)
    x = torch.rand(4, 1, 2, 2)
    out = api(x)
    assert out.dtype == torch.long and out.shape == (4,)
    assert torch.equal(out, linear(x).argmax(dim=1))


def test_output_defense_applies_and_answers_carry_no_gradient(linear):
    api = QueryModel(linear, defense=Rounding(decimals=1))
    api.open(2)
    x = torch.rand(2, 1, 2, 2, requires_grad=True)
    out = api(x)
    assert not out.requires_grad
    assert torch.allclose(out * 10, (out * 10).round(), atol=1e-5)


def test_monitor_sees_stream_positions_and_records_first_detection(linear):
    mon = FlagFromThird()
    api = QueryModel(linear, monitors=[mon])
    api.open(2)
    api(torch.rand(4, 1, 2, 2), torch.tensor([1, 0, 1, 1]))
    assert mon.seen[-1] == ([1, 0, 1, 1], [1, 1, 2, 3])
    assert api.detected_at.tolist() == [0, 3]
    api(torch.rand(3, 1, 2, 2), 0)
    assert api.detected_at.tolist() == [3, 3]  # client 0 caught at its 3rd query
    assert api.detected.tolist() == [True, True]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"output": "logits"}, "output must be"),
        ({"budget": 0}, "budget"),
        ({"defense": "round"}, "output defense"),
        ({"monitors": [object()]}, "monitor"),
    ],
)
def test_bad_arguments_are_explained(linear, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        QueryModel(linear, **kwargs)


def test_bad_queries_are_explained(linear):
    api = QueryModel(linear)
    with pytest.raises(ValidationError, match="open"):
        api(torch.rand(1, 1, 2, 2), 0)
    api.open(2)
    with pytest.raises(ValidationError, match="0..1"):
        api(torch.rand(1, 1, 2, 2), 5)
    with pytest.raises(ValidationError, match="one client per query"):
        api(torch.rand(3, 1, 2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValidationError, match="clients="):
        api(torch.rand(3, 1, 2, 2))


def test_success_within_budget_and_before_detection():
    success = torch.tensor([True, True, True, False])
    queries = torch.tensor([5, 50, 500, 1000])
    assert success_within(success, queries, 50).tolist() == [True, True, False, False]
    caught = torch.tensor([0, 20, 600, 3])
    assert success_within(success, queries, 1000, caught_at=caught).tolist() == [
        True,
        False,
        True,
        False,
    ]
    table = success_vs_queries(success, queries, [1, 5, 50, 500], label="simba")
    assert table["success_rate"].tolist() == [0.0, 0.25, 0.5, 0.75]
    assert set(table["label"]) == {"simba"}
    default = success_vs_queries(success, queries)
    assert default["budget"].iloc[-1] == 1000
    assert default["success_rate"].is_monotonic_increasing
    with pytest.raises(ValidationError):
        success_within(success, queries[:2], 10)


def test_the_query_interface_lives_below_attacks_and_defenses():
    """robustcore.threat imports neither attacks nor defenses; attacks re-export it."""
    import subprocess
    import sys
    from pathlib import Path

    import robustcore.attacks.evasion as evasion

    assert evasion.QueryModel is QueryModel and evasion.QueryMonitor is QueryMonitor
    code = (
        "import sys, robustcore.threat; "
        "print(sorted(m for m in sys.modules if m.startswith(('robustcore.attacks', "
        "'robustcore.defenses'))))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"


def test_forward_seconds_time_the_model_only_and_reset_on_open():
    class Slow(nn.Module):
        def forward(self, x):
            import time

            time.sleep(0.02)
            return x.flatten(1)[:, :3]

    api = QueryModel(Slow(), batch_size=2)
    api.open(2)
    assert api.forward_seconds == 0.0
    api(torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]))  # two forward passes
    assert 0.04 <= api.forward_seconds < 1.0
    api.open(2)
    assert api.forward_seconds == 0.0


def test_simba_pixel_moves_one_feature_per_accepted_direction(linear):
    from robustcore.attacks.evasion import SimBA

    api = QueryModel(linear)
    x = torch.full((3, 1, 2, 2), 0.5)
    x[0, 0, 0, 0] = 1.0  # at the upper bound: only the − step can move it
    res = SimBA(basis="pixel").run(api, x, torch.zeros(3, dtype=torch.long), eps=0.2, max_queries=9)
    delta = (res.x_adv - x).flatten(1)
    # Every feature moved by 0 or ±0.2, none beyond the bounds.
    assert torch.all(torch.isclose(delta.abs(), torch.tensor(0.2)) | (delta == 0))
    assert float(res.x_adv.max()) <= 1.0 and float(res.x_adv.min()) >= 0.0
    assert torch.equal(res.queries, api.queries)
