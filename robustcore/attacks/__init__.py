"""Attacks, one subpackage per family: ``evasion`` (white-box gradient attacks, black-box query
attacks, transfer attacks and the adaptive attackers of ``evasion.adaptive``),
``poisoning`` (backdoors, label flipping), ``inference`` (membership inference, model
inversion) and ``extraction`` (model stealing).

Each attack is a :class:`~robustcore.params.Configurable` declaration: its fields are
its parameters, which drive the form, the cache key, the report and the CLI.
"""
