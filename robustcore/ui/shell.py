"""The app shell: page registry by section (DESIGN.md's page map) and the global sidebar."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ..device import configure_threads
from .sidebar import model_sidebar

ROOT = Path(__file__).resolve().parents[2]

# Section → (page file, title, icon). Only pages that work are listed here.
PAGES: dict[str, list[tuple[str, str, str]]] = {
    "Overview": [
        ("pages/home.py", "Home", ":material/home:"),
        ("pages/threat_models.py", "Threat models", ":material/shield_person:"),
    ],
    "Evasion attacks": [
        ("pages/whitebox.py", "White-box attacks", ":material/target:"),
        ("pages/blackbox.py", "Black-box attacks", ":material/visibility_off:"),
    ],
    "Poisoning attacks": [
        ("pages/backdoors.py", "Backdoors", ":material/bug_report:"),
        ("pages/label_flipping.py", "Label flipping", ":material/swap_horiz:"),
    ],
    "Inference & extraction": [
        ("pages/membership_inference.py", "Membership inference", ":material/fingerprint:"),
        ("pages/model_inversion.py", "Model inversion", ":material/face_retouching_off:"),
        ("pages/model_extraction.py", "Model extraction", ":material/content_copy:"),
    ],
    "Defenses": [
        ("pages/adversarial_training.py", "Adversarial training", ":material/fitness_center:"),
        ("pages/defensive_distillation.py", "Defensive distillation", ":material/thermostat:"),
        ("pages/adversarial_detector.py", "Adversarial detector", ":material/radar:"),
        ("pages/input_preprocessing.py", "Input preprocessing", ":material/blur_on:"),
        ("pages/certified_robustness.py", "Certified robustness", ":material/verified:"),
        ("pages/postprocessing.py", "Postprocessing & ensembles", ":material/filter_alt:"),
        (
            "pages/poisoning_sanitization.py",
            "Poisoning sanitization",
            ":material/cleaning_services:",
        ),
        ("pages/query_limitation.py", "Query limitation", ":material/speed:"),
    ],
    "Reports": [
        ("pages/run_history.py", "Run history", ":material/history:"),
        ("pages/compare.py", "Compare runs", ":material/compare_arrows:"),
        ("pages/report.py", "Report", ":material/description:"),
    ],
}


def navigation() -> st.navigation:
    """Build ``st.navigation`` from :data:`PAGES` (sections of DESIGN.md's page map)."""
    configure_threads()
    st.logo(str(ROOT / "assets" / "logo.svg"), size="large")
    sections = {
        section: [
            st.Page(str(ROOT / path), title=title, icon=icon, default=(path == "pages/home.py"))
            for path, title, icon in pages
        ]
        for section, pages in PAGES.items()
    }
    return st.navigation(sections, expanded=True)  # every page listed, no "View more"


# Metric labels and deltas wrap onto a second line instead of ending in "…": at 1,000 px
# a row of four or five metrics leaves too little width for "PGD accuracy at ε=0.3".
_WRAP_METRICS = """<style>
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *,
[data-testid="stMetricDelta"], [data-testid="stMetricDelta"] * {
  white-space: normal !important;
  overflow: visible !important;
  text-overflow: clip !important;
  height: auto !important;
}
</style>"""


def page_setup(title: str, intro: str) -> None:
    """The common top of every page: the shared sidebar, the title and a short explanation.

    Each page calls this first (rather than ``app.py`` drawing the sidebar) so that the
    sidebar's widgets belong to the page run; that keeps them working under Streamlit's
    AppTest as well as in the browser.
    """
    st.html(_WRAP_METRICS)
    model_sidebar()
    st.title(title)
    st.markdown(intro)
