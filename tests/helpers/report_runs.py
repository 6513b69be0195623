"""Two small stored White-box runs that differ in PGD's steps, for the report tests (a few
seconds on two cores; the model comes from the session's zoo)."""

from __future__ import annotations


def two_whitebox_runs(dataset) -> list[str]:
    """Store (or find) two White-box runs on small_cnn (1 epoch, seed 0); their keys."""
    from robustcore.attacks.evasion import PGD
    from robustcore.experiments import Target
    from robustcore.experiments.whitebox import WhiteBox
    from robustcore.runs import get_runner

    target = Target.zoo("small_cnn", {"epochs": 1, "seed": 0})
    keys = []
    for steps in (3, 6):
        exp = WhiteBox(
            attacks=("fgsm", "pgd"),
            n=40,
            eps=(0.0, 0.1, 0.3),
            sanity=False,
            pgd=PGD(steps=steps, early_stop=True),
        ).on(target)
        job = get_runner().submit(exp, dataset).wait()
        assert job.state == "done", job.error
        keys.append(job.key)
    return keys
