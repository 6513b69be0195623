"""Report sections of the Query limitation page."""

from __future__ import annotations

from ...data import Dataset
from ...experiments.query_limitation import QueryLimitationResult
from ...viz.query_limitation import (
    accounts_figure,
    benign_distance_figure,
    budget_defense_figure,
    detection_delay_figure,
)
from ..blocks import Chart, Metric, Metrics, Table, Text
from . import Part, builder


def _pct(v: float) -> str:
    return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"


@builder("query_limitation")
def query_limitation(res: QueryLimitationResult, dataset: Dataset | None) -> Part:
    summaries = res.attack_summaries()
    per = res.per_image()
    blocks = [
        Metrics(
            (
                Metric(
                    "Benign false-alarm rate",
                    _pct(res.benign_fpr),
                    f"target {res.target_fpr:.2%}; {res.benign_judged:,} benign queries judged",
                ),
                Metric("Benign clients caught", _pct(res.benign_clients_caught)),
                Metric(
                    "Threshold (k-NN distance)",
                    f"{res.threshold:.3g}",
                    f"encoder {res.encoder}, k = {res.k}",
                ),
                Metric("Query budget per client", f"{res.budget:,}"),
            )
        ),
        Metrics(
            tuple(
                Metric(
                    f"{row.attack}: success before caught",
                    _pct(row.success_before_detection),
                    f"{100 * (row.success_before_detection - row.success_no_defense):+.0f} "
                    "points vs no detector",
                )
                for row in summaries
            )
        ),
        Chart(
            "budget",
            budget_defense_figure(res.curves()),
            caption="Solid: success within a query budget with no detector. Dashed: with the "
            "detector, a success counts only if it came before the attacker's client was "
            "flagged." + (" Dotted: query blinding." if res.has_blinding else ""),
        ),
        Chart("delay", detection_delay_figure(per, k=res.k)),
        Chart("accounts", accounts_figure(per, per_account=res.per_account)),
        Text(
            "**What the defense buys**\n\n"
            + "\n".join(
                f"- **{row.attack}**: {row.caught}; success {row.success_no_defense:.0%} → "
                f"{row.success_before_detection:.0%} for an attacker with one account. An "
                f"attacker who knows k opens a new account every {row.per_account} queries: "
                f"{row.accounts_rotate_mean:.1f} accounts per image on average, "
                f"{row.rotate_bans} of them banned, and the same success as with no detector."
                for row in summaries
            )
        ),
        Text(
            "The detector cannot flag an account before it has sent k queries, so it does not "
            "stop an attacker who can open accounts cheaply (a Sybil attack): it is worth "
            "what an account costs the attacker, not more."
        ),
        Table("summary", "Summary", res.summary_table()),
    ]
    if res.has_blinding:
        blocks.append(Table("blinding", "Query blinding (noise on every query)", res.blinding()))
    blocks += [
        Chart("benign", benign_distance_figure(res.benign_distances(), res.threshold)),
        Table("benign_clients", "Benign clients", res.benign_clients()),
    ]
    tried = set()
    for row in summaries:
        name = str(row.attack)
        tried.add("ZOO" if name.startswith("ZOO") else "SimBA" if "SimBA" in name else name)
    return Part(
        blocks,
        threat=(
            f"A black-box attacker who sends queries to a service with a budget of "
            f"{res.budget:,} queries per client and a stateful detector (Chen, Carlini & "
            "Wagner 2020); an adaptive attacker rotates accounts or blinds its queries. "
            "Measured by success before the client is caught, and by false alarms on honest "
            "clients."
        ),
        tried=tried & {"SimBA", "ZOO"},
    )
