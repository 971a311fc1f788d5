"""grpo-viz: step through how GRPO (and PPO) update a policy.  Run with `streamlit run app.py`.

The pages live in app_pages/, not pages/: Streamlit treats a folder named pages/ as an old-style multipage
app, and a direct link to any page but the first then opens with a "Page not found" dialog.
"""

import plotly.io as pio
import streamlit as st

# Imported once per server process rather than in the first student's first click: the first torch.optim
# optimizer imports torch._dynamo (1.5 s), and the pages import the rest.
import torch._dynamo  # noqa: F401
from grpo_viz import charts, explain, explain_ppo, export, lesson, lm_view, ppo, tasks, toy_view, training  # noqa: F401
from grpo_viz.ui import start_garbage_collector

start_garbage_collector()
# Streamlit's chart theme styles the charts in the browser, so Plotly's default template ("plotly", ~20 kB) was built
# into every figure and serialized on every click for nothing: ~0.75 of 1.25 ms a figure; even the empty "none"
# template costs a validated copy per figure. In a notebook, where nothing replaces it, the figures keep Plotly's look.
pio.templates.default = None

st.set_page_config(page_title="grpo-viz", page_icon="🎯", layout="wide")

pages = [
    st.Page("app_pages/0_lesson.py", title="The lesson", icon="🎓", default=True),
    st.Page("app_pages/1_step_through.py", title="Step through GRPO", icon="👣"),
    st.Page("app_pages/2_ppo_vs_grpo.py", title="PPO vs GRPO", icon="⚖️"),
    st.Page("app_pages/3_training.py", title="Training", icon="📈"),
    st.Page("app_pages/4_language_model.py", title="Toy vs language model", icon="🤖"),
    st.Page("app_pages/5_math_reference.py", title="Math reference", icon="📐"),
    st.Page("app_pages/6_lab.py", title="Lab: the papers' claims", icon="🧪"),
]
st.navigation(pages).run()
