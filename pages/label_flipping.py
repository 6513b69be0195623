"""Label flipping: accuracy against the share of flipped labels, per class."""

from robustcore.experiments.label_flipping import LabelFlipping
from robustcore.ui import experiment, state
from robustcore.ui import label_flipping as ui
from robustcore.ui.shell import page_setup
from robustcore.ui.triggers import victim_arch

page_setup(
    "Label flipping",
    "The simplest poisoning attack changes no input at all, only labels (Biggio, Nelson & "
    "Laskov 2012; Xiao et al. 2012). **Random** flips give a share of the training set a "
    "wrong label drawn at random; **targeted** flips relabel part of one class A as class "
    "B, teaching the model to confuse exactly those two. Each flip rate below trains one "
    "model on the flipped labels and tests it on the clean test set.",
)

ds, target = state.require_target()
victim = victim_arch(ds, target, key="lf_victim")

exp = ui.flip_form(ds, target, victim)
if exp is not None:
    experiment.start("label_flip", exp, ds)

result = experiment.show("label_flip", LabelFlipping, ds, target)
if result is not None:
    ui.show_label_flip(result, ds)
