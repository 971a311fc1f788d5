"""Settings for the whole suite."""

import os

# Every figure a test builds goes through Plotly's property validation; the app skips it for speed
# (grpo_viz.charts.VALIDATE_FIGURES). Set before grpo_viz is imported, and inherited by `streamlit run`.
os.environ["GRPO_VIZ_VALIDATE_FIGURES"] = "1"
