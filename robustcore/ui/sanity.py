"""Sanity checks on a page (Carlini et al. 2019): the list of verdicts, and the rule that a
headline number a failed check contradicts says so right next to it.

A page's metric card calls :func:`flagged` with the failed checks that concern its number:
the card's delta then ends with a short flag ("⚠ not converged", "⚠ sanity check
failed"), drawn in orange, and its help names each check with its verdict and says where
the checks are shown. Without failed checks the card is drawn as before.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..evaluation.sanity import SanityCheck, headline_flag


def flagged(
    failed: list[SanityCheck],
    delta: str = "",
    help_text: str = "",
    *,
    delta_color: str = "normal",
    where: str = "the **Sanity checks** tab below",
) -> dict[str, Any]:
    """``st.metric``'s ``delta``, ``delta_color`` and ``help`` for a headline number: with
    failed checks the flag joins the delta (in orange) and the help names the checks, says
    the number flatters the model and points to ``where`` the checks are shown."""
    flag = headline_flag(failed)
    if not flag:
        return {"delta": delta or None, "delta_color": delta_color, "help": help_text or None}
    checks = " ".join(f"**{c.name}**: {c.message}" for c in failed)
    why = (
        f"Failed sanity check{'s' * (len(failed) > 1)} (Carlini et al. 2019) — {checks} "
        f"This number flatters the model; see {where}."
    )
    return {
        "delta": f"{delta} · {flag}" if delta else flag,
        "delta_color": "orange",
        "help": f"{help_text}\n\n{why}" if help_text else why,
    }


def show_checks(checks: list[SanityCheck]) -> None:
    """Each check as a coloured box: warnings in yellow, passes in green, skips in blue."""
    for c in checks:
        show = {"warn": st.warning, "pass": st.success}.get(c.status, st.info)
        show(f"**{c.name}** — {c.message}")
