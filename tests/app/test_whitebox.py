"""AppTest: the White-box attacks page runs a small sweep, shows its charts, a what-if and
the sanity checks, and rejects a bad ε grid with a message."""

from __future__ import annotations

from helpers.apptest import has_metric, run_until, trained_app

PAGE = "pages/whitebox.py"


def _trained_app():
    return trained_app(PAGE)


def _small(at, eps="0, 0.1, 0.3"):
    at.text_input(key="wb_eps_linf").set_value(eps)
    at.slider(key="wb_n").set_value(60)
    at.slider(key="wb_ncw").set_value(10)
    at.slider(key="wb_a.cw.binary_search_steps").set_value(2)
    at.number_input(key="wb_a.cw.max_iter").set_value(30)


def test_sweep_with_what_if_shows_curves_and_checks():
    at = _trained_app()
    _small(at)
    at.checkbox(key="wb_compare").check()
    at.number_input(key="wb_b.pgd.steps").set_value(20)
    at.slider(key="wb_b.cw.binary_search_steps").set_value(2)
    at.number_input(key="wb_b.cw.max_iter").set_value(30)
    _run_and_wait(at)
    pgd = float(next(m.value for m in at.metric if m.label == "PGD accuracy at ε=0.3")[:-1])
    clean = float(next(m.value for m in at.metric if m.label == "Clean accuracy")[:-1])
    # Seeds 0-4 of the model, images and PGD (bench/threshold_spread.py), 60 images: clean
    # 90.0-98.3 %, PGD at ε = 0.3 0 %.
    assert clean > 85 and pgd < 20, (clean, pgd)
    # The number of images is stated next to the accuracies (Home uses the whole test set).
    assert any(
        c.value.startswith("Accuracies on 60 of the 1,000 test images") for c in at.caption
    ), [c.value for c in at.caption]
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # accuracy vs ε, C&W budget, gallery
    curve = charts[0].proto.spec
    assert "what-if" in curve and "chance" in curve
    assert any("Unbounded attack reaches chance" in s.value for s in [*at.success, *at.warning])


def test_bad_eps_grid_gives_a_message():
    at = _trained_app()
    _small(at, eps="0, abc")
    at.button[0].click()
    at.run()
    assert not at.exception
    assert any("ε grid" in e.value for e in at.error)


def _run_and_wait(at) -> None:
    at.button[0].click()  # the form's submit button
    at.run()
    run_until(
        at,
        lambda a: (
            has_metric("PGD accuracy at ε=0.3")(a)
            and not any("still running" in c.value for c in a.caption)
        ),
        timeout=240,
    )


def _card(at, name: str):
    return next(m for m in at.metric if m.label == f"{name} accuracy at ε=0.3")


def test_a_failing_convergence_check_is_flagged_next_to_the_headline():
    at = _trained_app()
    _small(at)
    # One short step: on the default model, 2 steps lower PGD's accuracy by 12-18 points
    # at ε = 0.3 (PGD seeds 0-2), far beyond the check's 2 points.
    at.number_input(key="wb_a.pgd.steps").set_value(1)
    at.slider(key="wb_a.pgd.step_size").set_value(0.1)
    _run_and_wait(at)
    pgd, worst, fgsm = (_card(at, n) for n in ("PGD", "Worst case", "FGSM"))
    assert "⚠ not converged" in pgd.delta, pgd.delta
    assert "PGD convergence at ε=" in pgd.help and "Sanity checks" in pgd.help, pgd.help
    assert "⚠" in worst.delta and "PGD convergence at ε=" in worst.help
    assert "⚠" not in fgsm.delta  # FGSM's own checks pass
    assert any("PGD convergence at ε=" in w.value for w in at.warning)


def test_checks_that_all_pass_leave_the_headline_unflagged():
    at = _trained_app()
    # At ε = 0.3 PGD leaves none of the 60 images right, so more effort cannot lower it, and
    # FGSM leaves about 10 %: every check passes with room to spare.
    _small(at, eps="0.3")
    _run_and_wait(at)
    checks = [s.value for s in at.success if s.value.startswith("**")]
    assert len(checks) == 5 and not [w.value for w in at.warning if w.value.startswith("**")]
    for name in ("FGSM", "PGD", "Worst case"):
        card = _card(at, name)
        assert "⚠" not in card.delta and not card.help, (name, card.delta, card.help)
    assert not any("⚠" in m.delta for m in at.metric)
