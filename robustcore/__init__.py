"""robustcore: the engine of the Adversarial Robustness Workbench.

A library first: ``robustcore.data``, ``robustcore.models``, ``robustcore.runs`` and
``robustcore.viz`` work in a script or notebook without Streamlit; only
``robustcore.ui`` imports Streamlit.
"""

__version__ = "0.1.0"
