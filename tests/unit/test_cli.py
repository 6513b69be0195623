"""The command line: ``python -m robustcore <command>`` (robustcore.cli)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robustcore.cli import main

# An unusual seed so that no other test's in-memory zoo entry can answer for this recipe,
# and a learning rate at which one epoch of logistic regression learns something.
TRAIN_ARGS = ["train", "--arch", "logreg", "--dataset", "digits", "--recipe.epochs", "1"]
TRAIN_ARGS += ["--recipe.seed", "4321", "--recipe.lr", "0.05"]


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    """A private ROBUSTCORE_HOME for this module, so stored runs start empty."""
    home = tmp_path_factory.mktemp("cli-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROBUSTCORE_HOME", str(home))
        mp.setenv("ROBUSTCORE_DEVICE", "cpu")
        yield home


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(cli_home):
    """Run the same ``train`` command twice; the second must come from the store."""
    first = _run(TRAIN_ARGS)
    second = _run(TRAIN_ARGS)
    return first, second


def test_datasets_lists_mnist5k_first(capsys, cli_home):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[0] == "mnist5k"
    assert "offline" in lines[0].split()
    names = [line.split()[0] for line in lines]
    assert {"digits", "breast_cancer", "cifar10"} <= set(names)
    assert "download" in lines[names.index("cifar10")].split()


def test_module_entry_point_subprocess(cli_home):
    env = dict(os.environ)
    assert env["ROBUSTCORE_HOME"] == str(cli_home)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "robustcore", "datasets"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0].split()
    assert first[0] == "mnist5k" and "offline" in first


def test_bad_flag_value_exits_2(capsys, cli_home):
    rc = main(["train", "--arch", "logreg", "--dataset", "digits", "--recipe.lr", "5"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.strip() == "error: Learning rate must be at most 1.0; got 5.0."
    assert captured.out == ""


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--recipe.epochs", "1.5", "Epochs must be a whole number, got '1.5'."),
        ("--recipe.batch-size", "0", "Batch size must be at least 1; got 0."),
        ("--recipe.weight-decay", "nan", "Weight decay must be a finite number, got nan."),
    ],
)
def test_other_bad_flag_values(capsys, cli_home, flag, value, message):
    rc = main(["train", "--arch", "logreg", "--dataset", "digits", flag, value])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_argparse_errors_exit_2(capsys, cli_home):
    for argv in (["train", "--arch", "nope"], ["train", "--recipe.optimizer", "rmsprop"], []):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "invalid choice: 'rmsprop'" in capsys.readouterr().err


def test_unknown_dataset_exits_2(capsys, cli_home):
    rc = main(["train", "--arch", "logreg", "--dataset", "nope", "--recipe.epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "error: Unknown dataset 'nope'. Known datasets: mnist5k, digits" in err
    assert "cifar10" in err


def test_train_prints_json(trained):
    (rc, out, _err), _ = trained
    assert rc == 0
    result = json.loads(out)
    assert len(result["run_key"]) == 20
    assert result["from_store"] is False
    assert 0.5 < result["clean_accuracy"] <= 1.0
    assert result["arch"] == "logreg" and result["dataset"] == "digits"
    assert result["n_test"] == 360


def test_second_identical_train_is_from_store(trained):
    (_, out1, _), (rc, out2, _) = trained
    assert rc == 0
    first, second = json.loads(out1), json.loads(out2)
    assert second["from_store"] is True
    assert second["run_key"] == first["run_key"]
    assert second["clean_accuracy"] == first["clean_accuracy"]
    assert second["zoo_key"] == first["zoo_key"]


def test_zoo_lists_trained_model(capsys, trained):
    key = json.loads(trained[0][1])["zoo_key"]
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert key in out
    row = next(line for line in out.splitlines() if key in line)
    assert "logreg" in row and "digits" in row


def test_runs_lists_trained_run(capsys, trained):
    run_key = json.loads(trained[0][1])["run_key"]
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if run_key in line)
    assert "train" in row and "done" in row
    assert main(["runs", "--kind", "train"]) == 0
    assert run_key in capsys.readouterr().out
    assert main(["runs", "--kind", "no-such-kind"]) == 0
    assert capsys.readouterr().out.strip() == "No stored runs."


def test_empty_zoo_and_runs(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ROBUSTCORE_HOME", str(tmp_path))
    assert main(["zoo"]) == 0
    assert capsys.readouterr().out.strip() == "The zoo is empty."
    assert main(["runs"]) == 0
    assert capsys.readouterr().out.strip() == "No stored runs."


def test_whitebox_command_sweeps_with_flags_from_the_declaration(cli_home):
    argv = ["whitebox", "--arch", "logreg", "--dataset", "digits", "--n", "40"]
    argv += ["--attacks", "pgd", "--eps", "0,0.5,2", "--pgd.steps", "5", "--sanity", "false"]
    rc, out, _ = _run(argv)
    assert rc == 0, out
    assert "# sweep" in out and "PGD" in out
    result = json.loads(out[out.index("{") :])
    assert result["n"] == 40 and result["eps_max"] == 2.0
    assert result["robust_accuracy"] < result["clean_accuracy"]
    out = _run(argv)[1]
    again = json.loads(out[out.index("{") :])
    assert again["from_store"] is True and again["run_key"] == result["run_key"]
    rc, out, err = _run([*argv, "--pgd.steps", "0"])
    assert rc == 2 and "at least 1" in err
    rc, out, err = _run([*argv, "--eps", "0,abc"])
    assert rc == 2 and "ε grid must be a number" in err
    rc, out, err = _run([*argv, "--target-class", "10"])
    assert rc == 2 and "Target class must be below 10" in err and "Traceback" not in err


def test_every_experiment_is_a_command(capsys, cli_home):
    from robustcore.experiments import load_all

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in load_all():
        assert name.replace("_", "-") in out
        with pytest.raises(SystemExit) as info:
            main([name.replace("_", "-"), "--help"])
        assert info.value.code == 0
        assert "--dataset" in capsys.readouterr().out


def _code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def test_threat_models_and_query_limitation_commands_pass_their_flags_on(capsys, cli_home):
    assert _code(["threat-models", "--n", "abc"]) == 2
    assert "Test images must be a whole number, got 'abc'" in capsys.readouterr().err
    assert _code(["query-limitation", "--limit.budget", "x"]) == 2
    assert "Query budget per client must be a whole number" in capsys.readouterr().err
    assert _code(["query-limitation", "--limit.k", "200", "--limit.history", "100"]) == 2
    assert "smaller than the history" in capsys.readouterr().err
    assert _code(["threat-models", "--surrogate-arch", "vgg"]) == 2
    assert "invalid choice: 'vgg'" in capsys.readouterr().err
    assert _code(["train", "--x"]) == 2
    assert "unrecognized arguments: --x" in capsys.readouterr().err
    for cmd in ("threat-models", "query-limitation", "threat_models", "query_limitation"):
        assert _code([cmd, "--dataset", "nope"]) == 2
        assert "Unknown dataset 'nope'" in capsys.readouterr().err
    for gone in ("threats", "query-limit"):  # the hand-written commands are replaced
        assert _code([gone]) == 2
        assert "invalid choice" in capsys.readouterr().err


def test_threat_models_command_runs_through_the_store(cli_home):
    argv = ["threat-models", "--arch", "logreg", "--dataset", "digits", "--recipe.epochs", "1"]
    argv += ["--n", "10", "--pgd-steps", "3", "--query-budget", "30", "--label-budget", "100"]
    argv += ["--label-epochs", "2", "--simba", "false", "--simba-pixel", "true"]
    rc, out, err = _run(argv)
    assert rc == 0, err
    assert "# threats" in out and "white-box" in out and "label-only" in out
    result = json.loads(out[out.index("{") :])
    assert result["from_store"] is False and result["n"] == 10 and result["eps"] == 0.2
    assert result["surrogate_arch"] == "small_cnn"  # auto: cheap, not the target's
    assert result["query_budget"] == 30 and result["label.setup_queries"] == 100
    assert result["queries_per_image.white"] == 0 and result["queries_per_image.gray"] == 1
    assert 1 <= result["queries_per_image.simba_pixel"] <= 30
    assert "success.simba" not in result  # SimBA-DCT was switched off
    rc, out, _ = _run(argv)
    again = json.loads(out[out.index("{") :])
    assert again["from_store"] is True and again["run_key"] == result["run_key"]
    rc, out, err = _run([*argv, "--label-budget", "5000"])
    assert rc == 2 and "at most the 1,437 training images" in err


def test_query_limitation_command_runs_through_the_store(cli_home):
    argv = ["query-limitation", "--arch", "logreg", "--dataset", "digits"]
    argv += ["--recipe.epochs", "1", "--n", "4", "--attacks", "simba_pixel"]
    argv += ["--limit.budget", "60", "--limit.k", "5", "--limit.history", "50"]
    argv += ["--limit.calibration", "200", "--benign.clients", "2", "--benign.queries", "30"]
    rc, out, err = _run(argv)
    assert rc == 0, err
    assert "# summary" in out and "SimBA (pixel)" in out and "# blinding" not in out
    result = json.loads(out[out.index("{") :])
    assert result["from_store"] is False and result["n"] == 4
    assert result["budget"] == 60 and result["k"] == 5 and result["benign_queries"] == 60
    assert 0 <= result["benign_fpr"] <= 1
    rc, out, _ = _run([*argv, "--json"])
    run = json.loads(out)
    assert run["key"] == result["run_key"] and run["kind"] == "query_limitation"
    assert run["spec"]["params"]["limit"]["budget"] == 60 and "zoo" not in run["spec"]["params"]
    rc, out, _ = _run([*argv, "--adaptive.blinding", "0.05"])
    assert rc == 0 and "# blinding" in out


def test_train_takes_the_training_method_and_its_settings(cli_home):
    args = ["train", "--arch", "logreg", "--dataset", "digits", "--recipe.epochs", "1"]
    args += ["--recipe.method", "fgsm_rs", "--recipe.adv-eps", "0.1", "--recipe.seed", "4322"]
    rc, out, _ = _run([*args, "--json"])
    assert rc == 0
    got = json.loads(out)
    assert got["metrics"]["method"] == "fgsm_rs" and "FGSM-RS ε=0.1" in got["label"]
    assert got["spec"]["target"]["recipe"]["adv_eps"] == 0.1
    rc, _, err = _run([*args[:-2], "--recipe.method", "pgd_at", "--recipe.adv-eps", "0"])
    assert rc == 2 and "training ε above 0" in err


def test_nested_flags_change_the_experiments_own_default(cli_home):
    """``--defense.epochs`` keeps adversarial training's default method (FGSM-RS), and the
    help shows the nested field's default (PGD-40), not its class's."""
    from robustcore.cli import build_parser
    from robustcore.experiments.adversarial_training import AdversarialTraining
    from robustcore.params import namespace_values

    parser = build_parser()
    ns = parser.parse_args(["adversarial_training", "--defense.epochs", "2"])
    values = namespace_values(AdversarialTraining, ns)
    exp = AdversarialTraining.from_dict(values)
    assert exp.defense.method == "fgsm_rs" and exp.defense.epochs == 2
    assert exp.pgd.steps == 40
    text = parser._subparsers._group_actions[0].choices["adversarial_training"].format_help()
    assert "(default: 40;" in " ".join(text.split())


def test_an_onnx_model_of_your_own_is_evaluated_from_the_command_line(cli_home, tmp_path):
    import warnings

    import torch

    from robustcore.data import load

    ds = load("digits")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    path = tmp_path / "own.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation note
        torch.onnx.export(net, (ds.x_test[:1],), str(path), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "N"}})  # fmt: skip
    rc, out, _ = _run(["train", "--dataset", "digits", "--weights", str(path)])
    assert rc == 0
    with torch.no_grad():
        expected = float((net(ds.x_test).argmax(1) == ds.y_test).float().mean())
    assert json.loads(out)["clean_accuracy"] == pytest.approx(expected, abs=1e-6)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    rc, _, err = _run(["train", "--dataset", "digits", "--weights", str(bad)])
    assert rc == 2 and "not an ONNX file" in err and "Traceback" not in err


def test_every_experiment_names_its_headline_and_runs_shows_it():
    from robustcore.experiments import EXPERIMENTS, load_all
    from robustcore.reports.history import headline as _headline

    load_all()
    assert all(cls.headline for cls in EXPERIMENTS.values()), [
        n for n, c in EXPERIMENTS.items() if not c.headline
    ]
    row = {"kind": "whitebox", "m.robust_accuracy": 0.125, "m.clean_accuracy": 0.9}
    assert _headline(row) == "robust_accuracy 0.125"
    # A pattern shows the largest match; NaN (another kind's column) is skipped.
    row = {"kind": "blackbox", "m.success_rate.ZOO": 0.5, "m.success_rate.SimBA": 0.75}
    assert _headline(row) == "success_rate.best 0.75"
    assert _headline({"kind": "blackbox", "m.success_rate.ZOO": float("nan")}) == ""
