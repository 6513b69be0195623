"""One parameter declaration per attack, defense or recipe.

A configurable thing is a frozen dataclass whose fields are declared with :func:`param`.
That single declaration drives:

* the Streamlit form (``robustcore.ui.forms.param_form`` reads :func:`describe`),
* the cache key (``to_dict`` feeds ``robustcore.runs.spec_key``),
* the report (``describe`` gives labels and help text next to the values),
* the CLI (:func:`add_arguments` / :func:`from_namespace`).

Example::

    @dataclass(frozen=True)
    class FGSM(Configurable):
        eps: float = param(0.1, low=0.0, high=1.0, step=0.01, help="L-inf budget.")

Three kinds of fields besides plain numbers, text and booleans:

* ``int | None`` / ``float | None`` hints make ``None`` an accepted value ("not set");
* ``tuple[float, ...]`` hints hold several values (an ε grid, a list of poison rates): each
  value is checked against the same range or choices, at least one is needed and repeats
  are refused; text such as ``"0, 0.1, 0.2"`` is accepted (the CLI and forms send text);
* :func:`nested` declares a field that is itself a configurable (an attack's settings
  inside an experiment); a dict of its values is accepted too.

Constructing an instance validates it; bad values raise
:class:`~robustcore.errors.ValidationError` with a message a person understands.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from .errors import ValidationError

T = TypeVar("T", bound="Configurable")

_META_KEY = "robustcore_param"


@dataclass(frozen=True)
class ParamInfo:
    """What the UI, the CLI and the report need to know about one parameter."""

    name: str
    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""
    label: str = ""
    log: bool = False
    many: bool = False
    optional: bool = False
    nested: type | None = None

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


def param(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    step: float | None = None,
    choices: Sequence[Any] | None = None,
    help: str = "",
    label: str = "",
    log: bool = False,
) -> Any:
    """Declare a dataclass field as a user-facing parameter.

    Args:
        default: value used when the user does not set it.
        low, high: inclusive numeric range accepted (``None``: unbounded on that side).
        step: increment the UI slider or number box uses.
        choices: the only accepted values (for strings and enumerations).
        help: one plain sentence on what the parameter does.
        label: short label for forms; defaults to the field name.
        log: the value spans orders of magnitude (the UI shows a log-spaced selector).
    """
    info = {
        "low": low,
        "high": high,
        "step": step,
        "choices": tuple(choices) if choices is not None else None,
        "help": help,
        "label": label,
        "log": log,
    }
    if isinstance(default, list):
        default = tuple(default)
    return dataclasses.field(default=default, metadata={_META_KEY: info})


def nested(cls: type, *, default: Any = None, help: str = "", label: str = "") -> Any:
    """Declare a field holding another configurable (default: ``default``, else ``cls()``).

    Forms draw its parameters as a group, the CLI names them ``--field.param``, and
    ``to_dict`` writes them as a sub-dictionary.
    """
    info = {
        "low": None,
        "high": None,
        "step": None,
        "choices": None,
        "help": help,
        "label": label,
        "log": False,
        "nested": cls,
    }
    if default is not None and not isinstance(default, cls):
        raise TypeError(f"The default of a nested {cls.__name__} must be one, got {default!r}.")
    factory = cls if default is None else (lambda: default)
    return dataclasses.field(default_factory=factory, metadata={_META_KEY: info})


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or (
        origin is not None and str(origin) == "<class 'types.UnionType'>"
    )


def describe(cls: type) -> list[ParamInfo]:
    """The declared parameters of a configurable class, in declaration order."""
    hints = typing.get_type_hints(cls)
    out: list[ParamInfo] = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META_KEY)
        if meta is None:
            continue
        meta = dict(meta)
        nested_cls = meta.pop("nested", None)
        if nested_cls is not None:
            out.append(
                ParamInfo(
                    name=f.name,
                    type=nested_cls,
                    default=f.default_factory(),  # type: ignore[misc]
                    nested=nested_cls,
                    **meta,
                )
            )
            continue
        ftype = hints.get(f.name, type(f.default))
        optional = False
        if _is_union(ftype):
            args = typing.get_args(ftype)
            optional = type(None) in args
            args = [a for a in args if a is not type(None)]
            ftype = args[0] if args else object
        many = typing.get_origin(ftype) is tuple
        if many:
            ftype = typing.get_args(ftype)[0]
        out.append(
            ParamInfo(
                name=f.name, type=ftype, default=f.default, many=many, optional=optional, **meta
            )
        )
    return out


def _coerce(info: ParamInfo, value: Any) -> Any:
    if info.nested is not None:
        if isinstance(value, info.nested):
            return value
        if isinstance(value, Mapping):
            return info.nested.from_dict(value)
        raise ValidationError(
            f"{info.title} must be a {info.nested.__name__} or a dict of its settings, got "
            f"{value!r}."
        )
    if info.optional and (value is None or (isinstance(value, str) and value.lower() == "none")):
        return None
    if info.many:
        return _coerce_many(info, value)
    return _coerce_one(info, value)


def _coerce_many(info: ParamInfo, value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    elif isinstance(value, Sequence):
        parts = list(value)
    else:
        raise ValidationError(
            f"{info.title} must be a list of values (e.g. 0, 0.1, 0.2), got {value!r}."
        )
    if not parts:
        raise ValidationError(f"{info.title}: give at least one value.")
    one = dataclasses.replace(info, many=False, optional=False)
    values = tuple(_coerce_one(one, p) for p in parts)
    if len(set(values)) != len(values):
        raise ValidationError(f"{info.title}: each value may appear only once, got {list(values)}.")
    return values


def _coerce_one(info: ParamInfo, value: Any) -> Any:
    name = info.title
    if info.type is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValidationError(f"{name} must be true or false, got {value!r}.")
    if info.type is int:
        if isinstance(value, bool):
            raise ValidationError(f"{name} must be a whole number, got {value!r}.")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{name} must be a whole number, got {value!r}.") from None
        if not math.isfinite(as_float) or as_float != int(as_float):
            raise ValidationError(f"{name} must be a whole number, got {value!r}.")
        value = int(as_float)
    elif info.type is float:
        if isinstance(value, bool):
            raise ValidationError(f"{name} must be a number, got {value!r}.")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{name} must be a number, got {value!r}.") from None
        if not math.isfinite(value):
            raise ValidationError(f"{name} must be a finite number, got {value!r}.")
    elif info.type is str:
        if not isinstance(value, str):
            raise ValidationError(f"{name} must be text, got {value!r}.")
    if info.choices is not None and value not in info.choices:
        allowed = ", ".join(repr(c) for c in info.choices)
        raise ValidationError(f"{name} must be one of {allowed}; got {value!r}.")
    if info.low is not None and value < info.low:
        raise ValidationError(f"{name} must be at least {info.low}; got {value!r}.")
    if info.high is not None and value > info.high:
        raise ValidationError(f"{name} must be at most {info.high}; got {value!r}.")
    return value


@dataclass(frozen=True)
class Configurable:
    """Base class of every declared configuration (attacks, defenses, training recipes).

    Subclasses set ``name`` (a stable identifier used in keys and the CLI), ``title``
    (shown in the UI) and ``paper`` (the reference a person can look up).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    paper: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for info in describe(type(self)):
            value = _coerce(info, getattr(self, info.name))
            object.__setattr__(self, info.name, value)
        self.check()

    def check(self) -> None:
        """Cross-field validation; override and raise ValidationError."""

    @classmethod
    def params(cls) -> list[ParamInfo]:
        return describe(cls)

    @classmethod
    def from_dict(cls: type[T], values: Mapping[str, Any] | None = None) -> T:
        """Build and validate an instance; unknown keys are an error, missing ones default."""
        values = dict(values or {})
        known = {p.name for p in describe(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValidationError(
                f"Unknown parameter(s) for {cls.title or cls.__name__}: {', '.join(unknown)}. "
                f"Expected some of: {', '.join(sorted(known))}."
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The parameter values, JSON-serialisable, for keys and reports."""
        out: dict[str, Any] = {}
        for p in describe(type(self)):
            value = getattr(self, p.name)
            if p.nested is not None:
                value = value.to_dict()
            elif p.many and value is not None:
                value = list(value)
            out[p.name] = value
        return out

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)


def add_arguments(
    parser: argparse.ArgumentParser, cls: type, *, prefix: str = "", defaults: Any = None
) -> None:
    """Add one ``--flag`` per declared parameter of ``cls`` to an argparse parser.

    A nested configurable's parameters become ``--field.param`` flags (their help shows
    the nested field's own default, e.g. 40 PGD steps where the experiment declares so); a
    list parameter takes comma-separated values (``--eps 0,0.1,0.2``); an optional one
    accepts ``none``. ``defaults`` is an instance whose values are shown as the defaults.
    """
    for info in describe(cls):
        if info.nested is not None:
            add_arguments(
                parser, info.nested, prefix=f"{prefix}{info.name}.", defaults=info.default
            )
            continue
        if defaults is not None:
            info = dataclasses.replace(info, default=getattr(defaults, info.name))
        flag = "--" + prefix + info.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": prefix + info.name, "default": None}
        many = info.many and info.default is not None
        default = ",".join(map(str, info.default)) if many else repr(info.default)
        extra = f" (default: {default}"
        if info.low is not None or info.high is not None:
            extra += f"; range {info.low}..{info.high}"
        if info.many:
            extra += "; comma-separated"
        extra += ")"
        # argparse %-formats help text: a literal "%" (e.g. "10% of") must be doubled.
        kwargs["help"] = ((info.help or info.title) + extra).replace("%", "%%")
        if info.choices is not None and not info.many:
            # Flags arrive as text and are coerced later, so compare against the text forms
            # (otherwise an int choice such as 3 could never be given as "--flag 3").
            kwargs["choices"] = [str(c) for c in info.choices] + (["none"] if info.optional else [])
        if info.type is bool:
            kwargs["type"] = str
            kwargs["metavar"] = "true|false"
        parser.add_argument(flag, **kwargs)


def namespace_values(cls: type, ns: argparse.Namespace, *, prefix: str = "") -> dict[str, Any]:
    """The values the user gave on the command line for ``cls`` (nested as dicts)."""
    values: dict[str, Any] = {}
    for p in describe(cls):
        if p.nested is not None:
            sub = namespace_values(p.nested, ns, prefix=f"{prefix}{p.name}.")
            if sub:  # flags change the nested field's own default, not its class's
                values[p.name] = {**p.default.to_dict(), **sub}
            continue
        got = getattr(ns, prefix + p.name, None)
        if got is not None:
            values[p.name] = got
    return values


def from_namespace(cls: type[T], ns: argparse.Namespace) -> T:
    """Build ``cls`` from parsed CLI arguments, leaving unset flags at their default."""
    return cls.from_dict(namespace_values(cls, ns))
