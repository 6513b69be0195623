"""Defenses, one module per idea: ``sanitize`` (poisoning sanitization), ``postprocess``
(output rounding, top-k, label only, reverse sigmoid, temperature), ``ensemble``
(consensus of several models), ``query_limit`` (per-client query budgets, the stateful
detector of black-box query streams and the account-rotating adaptive attacker), and later
``trainer``, ``distillation``, ``detector`` and ``preprocess``.
"""
