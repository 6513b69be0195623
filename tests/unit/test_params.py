"""Parameter declarations (robustcore.params) and the canonical hashing behind cache keys."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass

import pytest

from robustcore.errors import ValidationError
from robustcore.hashing import canonical_json, stable_hash
from robustcore.params import Configurable, add_arguments, describe, from_namespace, param


@dataclass(frozen=True)
class Toy(Configurable):
    """A test configuration with one parameter of each kind."""

    name = "toy"
    title = "Toy config"

    steps: int = param(10, low=1, high=100, step=1, help="How many steps.")
    eps: float = param(0.1, low=0.0, high=1.0, step=0.01, label="Budget ε", help="Keep 10% max.")
    norm: str = param("linf", choices=("linf", "l2"), help="Which norm.")
    random_start: bool = param(False, help="Start from a random point.")
    lr: float = param(1e-3, low=1e-6, high=1.0, log=True, label="Learning rate")


@dataclass(frozen=True)
class Window(Configurable):
    """Cross-field validation through ``check``."""

    lo: int = param(0, low=0, high=10)
    hi: int = param(5, low=0, high=10)

    def check(self) -> None:
        if self.lo > self.hi:
            raise ValidationError(f"Lo ({self.lo}) must not exceed hi ({self.hi}).")


@dataclass(frozen=True)
class IntChoice(Configurable):
    k: int = param(3, choices=(1, 3, 5), help="Neighbours.")


# -- defaults and coercion ----------------------------------------------------------------


def test_defaults():
    t = Toy()
    assert (t.steps, t.eps, t.norm, t.random_start, t.lr) == (10, 0.1, "linf", False, 1e-3)


def test_whole_float_and_text_coerce_to_int():
    assert Toy(steps=5.0).steps == 5
    assert type(Toy(steps=5.0).steps) is int
    assert Toy(steps="7").steps == 7
    assert Toy(steps="7.0").steps == 7


def test_float_coercion():
    t = Toy(eps=1)
    assert t.eps == 1.0 and type(t.eps) is float
    assert Toy(eps="0.25").eps == 0.25


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("yes", True), ("1", True), (1, True)]
    + [("false", False), ("no", False), ("0", False), (0, False), (True, True)],
)
def test_bool_coercion(raw, expected):
    assert Toy(random_start=raw).random_start is expected


# -- error messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "Steps must be at least 1; got 0."),
        ({"steps": 101}, "Steps must be at most 100; got 101."),
        ({"eps": -0.5}, "Budget ε must be at least 0.0; got -0.5."),
        ({"eps": 1.5}, "Budget ε must be at most 1.0; got 1.5."),
        ({"norm": "l1"}, "Norm must be one of 'linf', 'l2'; got 'l1'."),
        ({"norm": 2}, "Norm must be text, got 2."),
        ({"steps": 2.5}, "Steps must be a whole number, got 2.5."),
        ({"steps": "many"}, "Steps must be a whole number, got 'many'."),
        ({"steps": None}, "Steps must be a whole number, got None."),
        ({"steps": True}, "Steps must be a whole number, got True."),
        ({"steps": float("nan")}, "Steps must be a whole number, got nan."),
        ({"steps": float("inf")}, "Steps must be a whole number, got inf."),
        ({"eps": "abc"}, "Budget ε must be a number, got 'abc'."),
        ({"eps": True}, "Budget ε must be a number, got True."),
        ({"eps": float("nan")}, "Budget ε must be a finite number, got nan."),
        ({"eps": float("-inf")}, "Budget ε must be a finite number, got -inf."),
        ({"eps": "inf"}, "Budget ε must be a finite number, got inf."),
        ({"random_start": "maybe"}, "Random start must be true or false, got 'maybe'."),
        ({"random_start": 2}, "Random start must be true or false, got 2."),
        ({"lr": 0.0}, "Learning rate must be at least 1e-06; got 0.0."),
    ],
)
def test_error_messages(kwargs, message):
    with pytest.raises(ValidationError) as info:
        Toy(**kwargs)
    assert str(info.value) == message


def test_validation_error_is_a_value_error():
    with pytest.raises(ValueError):
        Toy(steps=-1)


def test_from_dict_unknown_key_lists_known_ones():
    with pytest.raises(ValidationError) as info:
        Toy.from_dict({"steps": 3, "stepz": 4, "alpha": 1})
    msg = str(info.value)
    assert msg.startswith("Unknown parameter(s) for Toy config: alpha, stepz.")
    assert "Expected some of: eps, lr, norm, random_start, steps." in msg


def test_from_dict_unknown_key_uses_class_name_without_title():
    with pytest.raises(ValidationError, match="Unknown parameter\\(s\\) for Window: width"):
        Window.from_dict({"width": 3})


def test_from_dict_missing_keys_default_and_none_means_defaults():
    assert Toy.from_dict({"steps": 4}) == Toy(steps=4)
    assert Toy.from_dict(None) == Toy()
    assert Toy.from_dict({}) == Toy()


def test_from_dict_validates():
    with pytest.raises(ValidationError, match="at most 100"):
        Toy.from_dict({"steps": 1000})


# -- to_dict, describe, check, frozen --------------------------------------------------------


def test_to_dict_round_trip():
    t = Toy(steps=3, eps=0.5, norm="l2", random_start=True, lr=0.01)
    d = t.to_dict()
    assert d == {"steps": 3, "eps": 0.5, "norm": "l2", "random_start": True, "lr": 0.01}
    assert list(d) == ["steps", "eps", "norm", "random_start", "lr"]
    assert Toy.from_dict(d) == t
    # JSON-serialisable, and survives a JSON round trip.
    assert Toy.from_dict(json.loads(json.dumps(d))) == t


def test_describe_order_types_and_titles():
    infos = describe(Toy)
    assert [p.name for p in infos] == ["steps", "eps", "norm", "random_start", "lr"]
    assert [p.type for p in infos] == [int, float, str, bool, float]
    assert [p.title for p in infos] == [
        "Steps",
        "Budget ε",
        "Norm",
        "Random start",
        "Learning rate",
    ]
    by_name = {p.name: p for p in infos}
    assert by_name["steps"].default == 10
    assert (by_name["steps"].low, by_name["steps"].high, by_name["steps"].step) == (1, 100, 1)
    assert by_name["norm"].choices == ("linf", "l2")
    assert by_name["lr"].log is True and by_name["eps"].log is False
    assert by_name["steps"].help == "How many steps."
    assert Toy.params() == infos


def test_check_override_cross_field():
    assert Window(lo=2, hi=3).to_dict() == {"lo": 2, "hi": 3}
    with pytest.raises(ValidationError, match=r"Lo \(6\) must not exceed hi \(5\)"):
        Window(lo=6)
    # check runs after coercion, on the coerced values
    assert Window(lo="4", hi=4.0) == Window(lo=4, hi=4)


def test_frozen_assignment_raises():
    t = Toy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.steps = 5
    assert t.steps == 10


def test_replace_validates():
    t = Toy()
    assert t.replace(steps=20).steps == 20
    with pytest.raises(ValidationError):
        t.replace(steps=0)
    with pytest.raises(ValidationError, match="must not exceed"):
        Window().replace(lo=9)


# -- argparse -------------------------------------------------------------------------------


def _parser(cls) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toy", exit_on_error=False)
    add_arguments(parser, cls)
    return parser


def test_argparse_round_trip():
    parser = _parser(Toy)
    argv = ["--steps", "7", "--eps", "0.3", "--norm", "l2", "--random-start", "true"]
    ns = parser.parse_args([*argv, "--lr", "0.01"])
    t = from_namespace(Toy, ns)
    assert t == Toy(steps=7, eps=0.3, norm="l2", random_start=True, lr=0.01)


def test_argparse_unset_flags_keep_defaults():
    parser = _parser(Toy)
    assert from_namespace(Toy, parser.parse_args([])) == Toy()
    ns = parser.parse_args(["--eps", "0.2"])
    assert ns.steps is None
    assert from_namespace(Toy, ns) == Toy(eps=0.2)


@pytest.mark.parametrize(("text", "expected"), [("false", False), ("yes", True), ("0", False)])
def test_argparse_bool_flag(text, expected):
    ns = _parser(Toy).parse_args(["--random-start", text])
    assert from_namespace(Toy, ns).random_start is expected


def test_argparse_bool_flag_bad_value():
    ns = _parser(Toy).parse_args(["--random-start", "perhaps"])
    with pytest.raises(ValidationError, match="Random start must be true or false"):
        from_namespace(Toy, ns)


def test_argparse_choices_enforced(capsys):
    parser = argparse.ArgumentParser(prog="toy")
    add_arguments(parser, Toy)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--norm", "l1"])
    assert info.value.code == 2
    assert "invalid choice: 'l1'" in capsys.readouterr().err


def test_argparse_int_choices():
    parser = _parser(IntChoice)
    assert from_namespace(IntChoice, parser.parse_args(["--k", "5"])).k == 5
    assert from_namespace(IntChoice, parser.parse_args([])).k == 3


def test_argparse_range_error_from_namespace():
    ns = _parser(Toy).parse_args(["--steps", "500"])
    with pytest.raises(ValidationError, match="Steps must be at most 100; got 500."):
        from_namespace(Toy, ns)


def test_argparse_help_text():
    text = _parser(Toy).format_help()  # "10%" in a help text must not break %-formatting
    assert "--random-start true|false" in text
    assert "--norm {linf,l2}" in text
    assert "Keep 10% max." in text
    assert "(default: 10; range 1..100)" in text


# -- canonical JSON and stable hashes (the cache keys to_dict feeds) -------------------------


def test_canonical_json_key_order_independent():
    a = {"b": 1, "a": {"y": [1, 2], "x": "s"}}
    b = {"a": {"x": "s", "y": [1, 2]}, "b": 1}
    assert canonical_json(a) == canonical_json(b) == '{"a":{"x":"s","y":[1,2]},"b":1}'
    assert stable_hash(a) == stable_hash(b)


def test_canonical_json_tuples_equal_lists():
    assert canonical_json({"v": (1, (2, 3))}) == canonical_json({"v": [1, [2, 3]]})
    assert stable_hash({"v": (1, (2, 3))}) == stable_hash({"v": [1, [2, 3]]})


def test_stable_hash_differs_for_different_values():
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
    assert stable_hash(Toy().to_dict()) != stable_hash(Toy(steps=11).to_dict())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_canonical_json_rejects_non_finite(bad):
    with pytest.raises(ValidationError, match=r"spec\['a'\]\[1\] is .*finite numbers"):
        canonical_json({"a": [0.0, bad]})


def test_canonical_json_rejects_non_json_types_with_path():
    with pytest.raises(ValidationError) as info:
        canonical_json({"model": {"weights": {1, 2}}}, root="recipe")
    msg = str(info.value)
    assert "recipe['model']['weights'] has type set" in msg
    assert "plain JSON values" in msg
    with pytest.raises(ValidationError, match=r"spec\['x'\]\[0\] has type object"):
        canonical_json({"x": [object()]})


def test_canonical_json_rejects_non_text_keys():
    with pytest.raises(ValidationError, match=r"spec\['a'\] has a non-text key 1 "):
        canonical_json({"a": {1: "one"}})


def test_stable_hash_length():
    h = stable_hash({"a": 1})
    assert len(h) == 20
    assert all(c in "0123456789abcdef" for c in h)
    assert len(stable_hash({"a": 1}, length=8)) == 8
    assert stable_hash({"a": 1}, length=8) == h[:8]
    assert len(stable_hash({"a": 1}, length=64)) == 64
