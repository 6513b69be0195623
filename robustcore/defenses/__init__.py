"""Defenses, one module per idea: ``sanitize`` (poisoning sanitization), ``postprocess``
(output rounding, top-k, label only, reverse sigmoid, temperature), ``ensemble``
(consensus of several models), ``query_limit`` (per-client query budgets and the stateful
detector of black-box query streams; the attackers who know it are in
``robustcore.attacks.evasion.adaptive``), and later
``trainer``, ``distillation``, ``detector`` and ``preprocess``.
"""
