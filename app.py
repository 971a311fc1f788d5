"""grpo-viz: step through how GRPO (and PPO) update a policy.  Run with `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="grpo-viz", page_icon="🎯", layout="wide")

pages = [
    st.Page("pages/1_step_through.py", title="Step through GRPO", icon="👣", default=True),
]
st.navigation(pages).run()
