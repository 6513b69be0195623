"""The sanity checks' words agree with their verdicts and numbers: a change is worded by its
sign and sized in points, a pass that rests on noise says so with the gap, and the names a
check quotes keep their capitals. And which failed checks put which White-box headline
number in doubt."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from robustcore.attacks.evasion import PGD
from robustcore.evaluation import sanity
from robustcore.evaluation.sanity import (
    REACHES_CHANCE,
    SanityCheck,
    check_converged,
    check_iterative_beats_single_step,
    check_monotone,
    check_whitebox_beats_blackbox,
)
from robustcore.experiments.whitebox import WORST_CASE, WhiteBoxResult
from robustcore.runs.store import RunRecord


def _sweep(fgsm: list[float], pgd: list[float], n: int = 500) -> pd.DataFrame:
    eps = [0.0, 0.1, 0.2][: len(fgsm)]
    return pd.DataFrame(
        {
            "attack": ["FGSM"] * len(fgsm) + ["PGD"] * len(pgd),
            "eps": eps + eps,
            "accuracy": fgsm + pgd,
            "n": [n] * (len(fgsm) + len(pgd)),
        }
    )


def test_monotone_words_follow_the_numbers():
    checks = {c.name: c for c in check_monotone(_sweep([0.9, 0.5, 0.3], [0.9, 0.2, 0.21]))}
    never = checks["FGSM: monotone in ε"]
    assert never.passed and never.message == "Accuracy never rises as ε grows."
    # PGD rises by one point, within the noise of 500 inputs: a pass that says it rose.
    small = checks["PGD: monotone in ε"]
    assert small.passed and "never" not in small.message
    assert "largest rise, 1.0 points from ε=0.1 to ε=0.2" in small.message
    assert "noise of 500 inputs" in small.message
    rising = check_monotone(_sweep([0.9, 0.5, 0.3], [0.9, 0.2, 0.4]))[1]
    assert rising.status == "warn" and "rises by 20.0 points from ε=0.1 to ε=0.2" in rising.message


def test_iterative_against_single_step_quotes_the_gap_it_forgives():
    strong = check_iterative_beats_single_step(_sweep([0.9, 0.5, 0.3], [0.9, 0.2, 0.1]))
    assert strong.passed and strong.message == "PGD is at least as strong as FGSM at every ε."
    close = check_iterative_beats_single_step(_sweep([0.9, 0.5, 0.3], [0.9, 0.51, 0.1]))
    assert close.passed and "within noise" in close.message
    assert "at ε=0.1, it leaves 51.0% accuracy against FGSM's 50.0%, 1.0 points more" in (
        close.message
    )
    weak = check_iterative_beats_single_step(_sweep([0.9, 0.5, 0.3], [0.9, 0.7, 0.1]))
    assert weak.status == "warn" and "PGD leaves 70.0%" in weak.message


def test_white_box_against_black_box_keeps_names_and_says_when_noise_decides():
    beaten = check_whitebox_beats_blackbox(
        0.1, 0.9, 100, whitebox="naive white-box PGD", blackbox="a transfer attack from PGD"
    )
    assert beaten.status == "warn"
    assert beaten.message.startswith("A transfer attack from PGD fools 90.0%")  # not "pgd"
    assert "naive white-box PGD only 10.0%" in beaten.message
    close = check_whitebox_beats_blackbox(0.40, 0.43, 100, whitebox="naive white-box PGD")
    assert close.passed and close.message.startswith("Naive white-box PGD (40.0%) is within")
    assert "3.0 points below it" in close.message
    ahead = check_whitebox_beats_blackbox(0.6, 0.4, 100)
    assert ahead.passed and "at least as strong as" in ahead.message


@pytest.mark.parametrize(
    ("steps", "accuracies", "status", "words"),
    [
        (
            10,
            (0.50, 0.45, 0.47),
            "warn",
            "Not converged: more effort lowers accuracy by 5.0 points",
        ),
        (10, (0.50, 0.49, 0.50), "pass", "Converged: more effort lowers accuracy by 1.0 points"),
        (10, (0.50, 0.51, 0.52), "pass", "Converged: more effort raises accuracy by 1.0 points"),
        (10, (0.50, 0.50, 0.50), "pass", "Converged: more effort leaves accuracy unchanged"),
        (1, (0.50, 0.50, 0.50), "pass", "(1 step: 50.0%; 2 steps: 50.0%; 3 restarts: 50.0%.)"),
    ],
)
def test_convergence_words_follow_the_sign_of_the_change(
    monkeypatch, steps, accuracies, status, words
):
    y = torch.zeros(100, dtype=torch.long)
    answers = iter(accuracies)

    class Result:
        def __init__(self, accuracy: float) -> None:
            self.pred = (torch.arange(100) >= round(accuracy * 100)).long()  # ≈ accuracy right

    monkeypatch.setattr(sanity, "attack_in_batches", lambda *a, **k: Result(next(answers)))
    check = check_converged(None, torch.zeros(100, 1), y, PGD(steps=steps), eps=0.1)
    assert check.status == status and words in check.message, check.message


def _result(checks: list[SanityCheck]) -> WhiteBoxResult:
    class Stub(WhiteBoxResult):
        def sanity(self) -> list[SanityCheck]:
            return checks

    record = RunRecord("k", "whitebox", {}, "done", 0, 0, 0, 0, {}, {}, None, None)
    return Stub(record)


def test_failed_checks_name_the_numbers_they_put_in_doubt():
    masked = SanityCheck(REACHES_CHANCE, "warn", "still 80%")
    fgsm_rises = SanityCheck("FGSM: monotone in ε", "warn", "rises")
    unconverged = SanityCheck("PGD convergence at ε=0.1", "warn", "lowers")
    weak = SanityCheck("PGD at least as strong as FGSM", "warn", "weaker")
    fine = SanityCheck("PGD: monotone in ε", "pass", "never rises")
    res = _result([fgsm_rises, fine, weak, masked, unconverged])
    assert res.failed_checks("FGSM") == [fgsm_rises, masked]
    assert res.failed_checks("PGD") == [weak, masked, unconverged]
    assert res.failed_checks("C&W") == [masked]
    assert res.failed_checks(WORST_CASE) == [fgsm_rises, weak, masked, unconverged]
    assert _result([fine]).failed_checks("PGD") == []
