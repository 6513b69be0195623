"""Report sections of the Home (model and scorecard), Threat models, White-box and
Black-box (query attacks and transfer matrix) pages: each kind is run once with the
smallest settings that still produce every block, then drawn as its report section with
and without its dataset, and once as HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustcore.attacks.evasion import PGD, CarliniWagnerL2
from robustcore.evaluation.sanity import SanityCheck
from robustcore.experiments import Target
from robustcore.experiments.blackbox import BlackBox
from robustcore.experiments.scorecard import Scorecard
from robustcore.experiments.threat_models import ThreatModels
from robustcore.experiments.train import Train
from robustcore.experiments.transfer import Transfer
from robustcore.experiments.whitebox import WhiteBox
from robustcore.reports import build_report, to_html
from robustcore.reports import document as doc
from robustcore.reports.blocks import Checks, Metrics
from robustcore.reports.document import ATTACK_CATALOGUE, run_section
from robustcore.reports.sections import flagged_note
from robustcore.runs import get_runner

TARGET = {"epochs": 1, "seed": 0}

EXPECTED = {
    # kind: (chart ids, metric labels, attacks tried)
    "train": (
        ["curves", "confusion", "samples"],
        ["Clean test accuracy", "Chance level", "Training accuracy", "Training time"],
        set(),
    ),
    "scorecard": (
        ["scorecard"],
        ["Clean accuracy", "PGD, large ε", "SimBA success", "Membership AUC"],
        {"PGD", "SimBA", "Membership inference"},
    ),
    "whitebox": (
        ["sweep", "cw_curve", "gallery", "norms"],
        [
            "Clean accuracy",
            "FGSM accuracy at ε=0.3",
            "PGD accuracy at ε=0.3",
            "Worst case accuracy at ε=0.3",
            "C&W success",
        ],
        {"FGSM", "PGD", "C&W"},
    ),
    "blackbox": (
        ["queries", "query_counts", "gallery"],
        ["SimBA (DCT) success", "ZOO success"],
        {"SimBA", "ZOO"},
    ),
    "transfer": (
        ["matrix"],
        ["White-box (diagonal), mean", "Transfer (off-diagonal), mean", "Best transfer pair"],
        {"Transfer", "PGD"},
    ),
    "threat_models": (
        ["threats", "gallery"],
        [
            "Clean accuracy",
            "White-box success",
            "Gray-box success",
            "Black-box success within ε",
            "Label-only success",
        ],
        {"PGD", "Transfer", "SimBA", "ZOO"},
    ),
}


def _experiments(target: Target) -> dict:
    return {
        "train": Train(),
        "scorecard": Scorecard(n=20, pgd_steps=2, n_query=5, query_budget=20, members=20),
        "whitebox": WhiteBox(
            n=20,
            n_cw=10,
            eps=(0.0, 0.3),
            pgd=PGD(steps=2, early_stop=True),
            cw=CarliniWagnerL2(binary_search_steps=1, max_iter=5),
        ),
        "blackbox": BlackBox(attacks=("simba_dct", "zoo"), n=5, simba_queries=300, zoo_queries=20),
        "transfer": Transfer(archs=("small_cnn", "logreg"), n=20, pgd=PGD(steps=2)),
        "threat_models": ThreatModels(
            n=10, pgd_steps=2, query_budget=20, label_budget=50, label_epochs=1
        ),
    }


@pytest.fixture(scope="module")
def records(mnist5k, tiny_cnn):
    """One stored run of each kind (the model is the session's tiny CNN, from the zoo)."""
    target = Target.zoo("small_cnn", TARGET)
    out = {}
    for kind, exp in _experiments(target).items():
        job = get_runner().submit(exp.on(target), mnist5k).wait()
        assert job.state == "done", job.error
        out[kind] = job.result
    return out


def _ids(section) -> list[str]:
    return [c.id for c in section.charts]


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_section_draws_what_the_page_draws(records, kind):
    charts, labels, tried = EXPECTED[kind]
    section = run_section(records[kind])
    assert section.kind == kind
    assert _ids(section) == charts
    for chart in section.charts:
        assert len(chart.figure.data) > 0, chart.id
    metrics = [b for b in section.blocks if isinstance(b, Metrics)]
    assert [m.label for m in metrics[0].items] == labels
    assert all(m.value and m.value != "–" for m in metrics[0].items)
    assert section.tried == tried and section.tried <= set(ATTACK_CATALOGUE)
    assert section.threat


def test_builders_do_not_import_streamlit():
    from robustcore.reports import sections

    for name in ("home", "threat_models", "whitebox", "blackbox"):
        source = (Path(sections.__file__).parent / f"{name}.py").read_text()
        assert "streamlit" not in source, name


def test_sections_hold_the_runs_sanity_checks(records):
    wb = run_section(records["whitebox"])
    names = [c.name for c in wb.checks]
    assert "Unbounded attack reaches chance" in names and "PGD at least as strong as FGSM" in names
    assert [c.name for c in run_section(records["scorecard"]).checks] == [
        "Unbounded PGD reaches chance"
    ]
    tm = run_section(records["threat_models"]).checks
    assert len(tm) == 1 and tm[0].status in ("pass", "warn")
    # The caption under the accuracies says on how many of the test images they were made.
    caption = next(b for b in wb.blocks if isinstance(b, Metrics)).caption
    assert "20 of the 1,000 test images" in caption


def test_sections_work_without_their_dataset(records, monkeypatch):
    """An uploaded dataset this session does not hold: the same charts, class names and
    totals taken from the result."""
    monkeypatch.setattr(doc, "_dataset", lambda *args, **kwargs: None)
    for kind, (charts, labels, tried) in EXPECTED.items():
        section = run_section(records[kind], {})
        assert _ids(section) == charts, kind
        assert [m.label for m in section.blocks[0].items] == labels
        assert section.tried == tried
    wb = run_section(records["whitebox"], {})
    assert wb.blocks[0].caption == "Accuracies on 20 test images."
    assert any(isinstance(b, Checks) for b in wb.blocks)


def test_html_report_draws_every_chart(records):
    store = get_runner().store
    keys = [records[kind].key for kind in EXPECTED]
    report = build_report(store, keys)
    page = to_html(report)
    total = sum(len(ids) for ids, _, _ in EXPECTED.values())
    assert page.count('class="plotly-graph-div"') == total
    for i, (kind, (charts, _, _)) in enumerate(EXPECTED.items(), 1):
        assert report.sections[i - 1].kind == kind
        for j in range(1, len(charts) + 1):
            assert f'id="chart-{i}-{j}"' in page
    untried = " ".join(dict(report.limitations)["Attacks not tried"])
    assert "BadNets" in untried and "SimBA (" not in untried and "C&W (" not in untried


def test_flagged_note_says_a_failed_check_next_to_its_number():
    conv = SanityCheck("PGD convergence at ε=0.3", "warn", "more steps lower it")
    other = SanityCheck("PGD: monotone in ε", "warn", "rises")
    assert flagged_note([], "-40.0%") == "-40.0%"
    assert flagged_note([other], "-40.0%") == "-40.0% · ⚠ sanity check failed"
    assert flagged_note([conv, other]) == "⚠ not converged (+1 failed check)"
