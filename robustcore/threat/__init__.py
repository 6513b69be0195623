"""The black-box threat model: what an attacker who can only *query* a model may see.

:class:`QueryModel` is the prediction service (class probabilities, possibly shaped by an
output defense, or labels only) that counts every query per client and enforces a
per-client budget; :class:`QueryMonitor` is what watches its stream (a stateful detector).
Attacks query through it and defenses wrap or watch it, so it sits below both.
"""

from .query import OUTPUTS, AnswerDefense, QueryBudgetExceeded, QueryModel, QueryMonitor

__all__ = ["OUTPUTS", "AnswerDefense", "QueryBudgetExceeded", "QueryModel", "QueryMonitor"]
