"""Defenses, one module per idea: ``sanitize`` (poisoning sanitization), ``postprocess``
(output rounding, top-k, label only, reverse sigmoid, temperature), ``ensemble``
(consensus of several models), and later ``trainer``, ``distillation``, ``detector``,
``preprocess`` and ``query_limit``.
"""
