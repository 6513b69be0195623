"""Inference attacks: what a model's answers reveal about its training data.

* Membership inference (:mod:`.membership`): loss and confidence thresholds (Yeom et al.
  2018; Salem et al. 2019), the shadow-model attack classifier (Shokri et al. 2017) and
  LiRA online / offline / fixed variance (Carlini et al. 2022), judged by ROC, AUC,
  balanced accuracy, membership advantage and TPR at 0.1 % and 1 % FPR (:mod:`.metrics`).
* Model inversion: :mod:`.inversion` (MIFace, Fredrikson et al. 2015).
"""

from .lira import LIRA_VARIANTS, lira_scores, logit_confidence
from .membership import (
    ATTACKS,
    SHADOW_ATTACKS,
    THRESHOLD_ATTACKS,
    MembershipInference,
    MembershipResult,
    MembershipSplit,
    attack_scores,
    confidence_scores,
    evaluate_attacks,
    loss_scores,
    membership_inference,
    membership_split,
)
from .metrics import (
    FPR_LEVELS,
    auc,
    fpr_resolution,
    membership_metrics,
    roc_curve,
    roc_table,
    tpr_at_fpr,
)
from .shadow import SHOKRI_MODES, ShadowSet, shadow_keep, shokri_scores, train_shadows

__all__ = [
    "ATTACKS",
    "FPR_LEVELS",
    "LIRA_VARIANTS",
    "SHADOW_ATTACKS",
    "SHOKRI_MODES",
    "THRESHOLD_ATTACKS",
    "MembershipInference",
    "MembershipResult",
    "MembershipSplit",
    "ShadowSet",
    "attack_scores",
    "auc",
    "confidence_scores",
    "evaluate_attacks",
    "fpr_resolution",
    "lira_scores",
    "logit_confidence",
    "loss_scores",
    "membership_inference",
    "membership_metrics",
    "membership_split",
    "roc_curve",
    "roc_table",
    "shadow_keep",
    "shokri_scores",
    "tpr_at_fpr",
    "train_shadows",
]
