"""Attacks, one subpackage per family: ``evasion`` (white-box gradient attacks),
``poisoning`` (backdoors, label flipping), ``inference`` (membership inference, model
inversion) and ``extraction`` (model stealing).

Each attack is a :class:`~robustcore.params.Configurable` declaration: its fields are
its parameters, which drive the form, the cache key, the report and the CLI.
"""
