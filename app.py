"""Entry point: ``streamlit run app.py``. Lists the pages that exist, by section."""

import streamlit as st

from robustcore.ui.shell import navigation

st.set_page_config(page_title="Adversarial Robustness Workbench", page_icon="🛡️", layout="wide")
page = navigation()
page.run()
