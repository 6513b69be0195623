"""White-box evasion attacks: FGSM, PGD (L∞ and L2) and Carlini–Wagner L2.

Each is a parameter declaration (a frozen dataclass) with
``run(model, x, y, *, targeted=False, target=None, bounds=None, progress=None) ->
AttackResult``. :data:`WHITEBOX_ATTACKS` maps the stable names to the classes.
"""

from .base import AttackResult, EvasionAttack
from .cw import CarliniWagnerL2
from .fgsm import FGSM
from .pgd import PGD
from .query import QueryBudgetExceeded, QueryModel, QueryMonitor

WHITEBOX_ATTACKS: dict[str, type[EvasionAttack]] = {
    "fgsm": FGSM,
    "pgd": PGD,
    "cw": CarliniWagnerL2,
}

__all__ = [
    "FGSM",
    "PGD",
    "WHITEBOX_ATTACKS",
    "AttackResult",
    "CarliniWagnerL2",
    "EvasionAttack",
    "QueryBudgetExceeded",
    "QueryModel",
    "QueryMonitor",
]
