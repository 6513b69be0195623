"""Black-box evasion: SimBA and ZOO through the query interface, and transfer attacks."""

import streamlit as st

from robustcore.experiments.blackbox import BlackBox
from robustcore.experiments.transfer import Transfer
from robustcore.ui import blackbox, experiment, jobs, state
from robustcore.ui.shell import page_setup

page_setup(
    "Black-box attacks",
    "The attacker cannot see inside the model: it can only send inputs and read back the "
    "answers, and every query counts. **SimBA** tries one random direction at a time (pixels "
    "or low-frequency DCT patterns) and keeps it when the true class loses probability (Guo "
    "et al. 2019); **ZOO** estimates gradients from pairs of queries (Chen et al. 2017). "
    "**Transfer attacks** need no queries at all: craft a white-box attack on a surrogate "
    "model and hope it carries over (Papernot et al. 2016).",
)

ds, target = state.require_target()

st.subheader("Query attacks: success against queries")
exp = blackbox.attack_form(ds, target)
if exp is not None:
    experiment.start(blackbox.SLOT, exp, ds)
res = experiment.show(blackbox.SLOT, BlackBox, ds, target)
if res is not None:
    blackbox.attack_results(ds, res)
elif jobs.current(blackbox.SLOT) is None:
    st.info(
        "Press **Run black-box attacks**: SimBA (pixel and DCT) and ZOO attack the same "
        "correctly classified test images through a query interface that counts every query. "
        "A run you did before is shown at once from the result store."
    )

st.subheader("Transfer attacks: surrogate × target")
texp = blackbox.transfer_form(ds, target)
if texp is not None:
    experiment.start(blackbox.TRANSFER_SLOT, texp, ds)
tres = experiment.show(blackbox.TRANSFER_SLOT, Transfer, ds, target)
if tres is not None:
    blackbox.transfer_results(tres)
elif jobs.current(blackbox.TRANSFER_SLOT) is None:
    st.info(
        "Press **Run transfer matrix**: every architecture is trained on the same data (or "
        "loaded from the zoo), the attack is crafted on each and sent to all the others."
    )
