"""Poisoning sanitization: find BadNets poisons in the activations, remove them, retrain."""

from robustcore.experiments.poisoning_sanitization import PoisoningSanitization
from robustcore.ui import experiment, state
from robustcore.ui import poisoning_sanitization as ui
from robustcore.ui.shell import page_setup
from robustcore.ui.triggers import victim_arch

page_setup(
    "Poisoning sanitization",
    "A backdoor leaves a mark inside the network: the poisoned images of a label activate "
    "it differently from the genuine ones. **Activation clustering** (Chen et al. 2018) "
    "splits each label's penultimate activations in two and flags a small, separate "
    "cluster; **spectral signatures** (Tran, Li & Madry 2018) flag the points that stick "
    "out most along the top singular direction. Here a BadNets attack poisons the "
    "training set, a detector removes what it flags, and the model is retrained on the rest.",
)

ds, target = state.require_target()
victim = victim_arch(ds, target, key="san_victim")

exp = ui.sanitize_form(ds, target, victim)
if exp is not None:
    experiment.start("sanitize", exp, ds)

result = experiment.show("sanitize", PoisoningSanitization, ds, target)
if result is not None:
    ui.show_sanitize(result, ds)
