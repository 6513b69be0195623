"""Streamlit forms generated from a parameter declaration (``robustcore.params``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

import streamlit as st

from ..errors import ValidationError
from ..params import Configurable, ParamInfo, describe

T = TypeVar("T", bound=Configurable)


def _log_grid(info: ParamInfo) -> list[float]:
    lo = info.low if info.low and info.low > 0 else 1e-6
    hi = info.high if info.high else 1.0
    grid = []
    e = math.floor(math.log10(lo))
    while 10**e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = float(f"{m}e{e}")
            if lo * 0.9999 <= v <= hi * 1.0001:
                grid.append(v)
        e += 1
    return grid


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def param_widget(info: ParamInfo, value: Any, *, key: str, container: Any = st) -> Any:
    """One widget for one declared parameter; returns the raw value the user chose."""
    label = info.title
    help_ = info.help or None
    if info.many:
        if info.choices is not None:
            options = list(info.choices)
            chosen = [v for v in (value or ()) if v in options]
            return container.multiselect(
                label, options, default=chosen, key=key, help=help_, format_func=_fmt
            )
        # Free values: typed as text, checked by the declaration (messages name the field).
        return container.text_input(
            label, value=", ".join(_fmt(v) for v in (value or ())), key=key, help=help_
        )
    if info.optional and info.choices is not None:
        options = [None, *info.choices]
        index = options.index(value) if value in options else 0
        return container.selectbox(
            label, options, index=index, key=key, help=help_, format_func=_fmt
        )
    if info.optional and info.type in (int, float):
        return container.number_input(
            label,
            min_value=info.low,
            max_value=info.high,
            value=value,
            step=info.step or (1 if info.type is int else None),
            key=key,
            help=(help_ or "") + " (leave empty: not set)",
        )
    if info.choices is not None:
        options = list(info.choices)
        index = options.index(value) if value in options else 0
        return container.selectbox(label, options, index=index, key=key, help=help_)
    if info.type is bool:
        return container.checkbox(label, value=bool(value), key=key, help=help_)
    if info.log and info.type is float:
        grid = _log_grid(info)
        if value not in grid:
            grid = sorted({*grid, float(value)})
        return container.select_slider(
            label,
            options=grid,
            value=float(value),
            key=key,
            help=help_,
            format_func=lambda v: f"{v:g}",
        )
    if info.type is int:
        bounded = info.low is not None and info.high is not None
        if bounded and info.high - info.low <= 200:
            return container.slider(
                label,
                int(info.low),
                int(info.high),
                int(value),
                step=int(info.step or 1),
                key=key,
                help=help_,
            )
        return container.number_input(
            label,
            min_value=int(info.low) if info.low is not None else None,
            max_value=int(info.high) if info.high is not None else None,
            value=int(value),
            step=int(info.step or 1),
            key=key,
            help=help_,
        )
    if info.type is float:
        step = float(info.step) if info.step else None
        if info.low is not None and info.high is not None and step:
            return container.slider(
                label,
                float(info.low),
                float(info.high),
                float(value),
                step=step,
                key=key,
                help=help_,
                format="%g",
            )
        return container.number_input(
            label,
            min_value=float(info.low) if info.low is not None else None,
            max_value=float(info.high) if info.high is not None else None,
            value=float(value),
            step=step,
            key=key,
            help=help_,
            format="%g",
        )
    return container.text_input(label, value=str(value), key=key, help=help_)


def param_values(
    cls: type,
    *,
    key: str,
    values: Mapping[str, Any] | None = None,
    container: Any = st,
    only: tuple[str, ...] | None = None,
    nested_in_expanders: bool = True,
) -> dict[str, Any]:
    """Draw the widgets of ``cls``'s declared parameters and return the raw values.

    A nested configurable is drawn as a group of its own (an expander, or a bordered box
    when ``nested_in_expanders`` is False, e.g. inside an expander already). ``only``
    limits which top-level parameters are drawn here (a page may lay the others out
    elsewhere and pass them in ``values``); the others keep their value from ``values``.
    """
    values = dict(values or {})
    chosen: dict[str, Any] = {}
    for info in describe(cls):
        current = values.get(info.name, info.default)
        if only is not None and info.name not in only:
            if info.name in values:
                chosen[info.name] = current
            continue
        if info.nested is not None:
            sub = current.to_dict() if hasattr(current, "to_dict") else dict(current or {})
            title = info.label or info.nested.title or info.title
            box = (
                container.expander(title)
                if nested_in_expanders
                else container.container(border=True)
            )
            if not nested_in_expanders:
                box.markdown(f"**{title}**")
            chosen[info.name] = param_values(
                info.nested,
                key=f"{key}.{info.name}",
                values=sub,
                container=box,
                nested_in_expanders=False,
            )
            continue
        chosen[info.name] = param_widget(
            info, current, key=f"{key}.{info.name}", container=container
        )
    return chosen


def param_form(
    cls: type[T],
    *,
    key: str,
    values: Mapping[str, Any] | None = None,
    container: Any = st,
    only: tuple[str, ...] | None = None,
    nested_in_expanders: bool = True,
) -> T | None:
    """Render one widget per declared parameter of ``cls`` and build the instance.

    Args:
        cls: a :class:`~robustcore.params.Configurable` subclass.
        key: prefix of the widget keys (unique per place the form appears).
        values: starting values (default: the declaration's defaults).
        container: where to draw (``st``, ``st.sidebar``, a column or an expander).
        only, nested_in_expanders: see :func:`param_values`.

    Returns:
        The validated instance, or ``None`` after showing the validation message.
    """
    chosen = param_values(
        cls,
        key=key,
        values=values,
        container=container,
        only=only,
        nested_in_expanders=nested_in_expanders,
    )
    try:
        return cls.from_dict(chosen)
    except ValidationError as exc:
        container.error(str(exc))
        return None
