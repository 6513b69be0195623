"""Plotly figures built from results (pure functions, no Streamlit)."""

from .figures import accuracy_vs_eps, confusion_matrix_figure, image_grid, training_curves

__all__ = ["accuracy_vs_eps", "confusion_matrix_figure", "image_grid", "training_curves"]
