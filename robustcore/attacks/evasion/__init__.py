"""Evasion attacks.

White-box: FGSM, PGD (L∞ and L2) and Carlini–Wagner L2, each a parameter declaration (a
frozen dataclass) with ``run(model, x, y, *, eps=None, norm=None, goal=None,
progress=None) -> AttackResult``: the budget is the run's, and :class:`Goal` carries the
target class and the data bounds. :data:`WHITEBOX_ATTACKS` maps the stable names to the
classes.

Black-box (query-only): SimBA and ZOO, with ``run(api, x, y, *, eps=None,
max_queries=None, goal=None, progress=None)`` where ``api`` is a :class:`QueryModel` (the
query interface of :mod:`robustcore.threat`, re-exported here): SimBA's step ``eps`` and
the query budget per image are the run's; :data:`BLACKBOX_ATTACKS` maps their names to the
classes. The adaptive attackers that know a defense (account rotation, query blinding)
are in :mod:`robustcore.attacks.evasion.adaptive`.
"""

from ...threat import QueryBudgetExceeded, QueryModel, QueryMonitor
from .base import AttackResult, EvasionAttack, Goal
from .blackbox import BlackBoxAttack
from .cw import CarliniWagnerL2
from .fgsm import FGSM
from .pgd import PGD
from .simba import SimBA
from .zoo import ZOO

WHITEBOX_ATTACKS: dict[str, type[EvasionAttack]] = {
    "fgsm": FGSM,
    "pgd": PGD,
    "cw": CarliniWagnerL2,
}

BLACKBOX_ATTACKS: dict[str, type[BlackBoxAttack]] = {
    "simba": SimBA,
    "zoo": ZOO,
}

__all__ = [
    "BLACKBOX_ATTACKS",
    "FGSM",
    "PGD",
    "ZOO",
    "WHITEBOX_ATTACKS",
    "AttackResult",
    "BlackBoxAttack",
    "CarliniWagnerL2",
    "EvasionAttack",
    "Goal",
    "QueryBudgetExceeded",
    "QueryModel",
    "QueryMonitor",
    "SimBA",
]
