"""The Lab: each experiment states a paper's claim, runs it on the toy or the built-in model, and shows the paper's
number beside ours."""

import pandas as pd
import streamlit as st

from grpo_viz.lab import EXPERIMENTS
from grpo_viz.ui import compact_page

AUTO_RUN_SECONDS = 2.0

compact_page()
st.markdown("## Lab: the papers' claims, reproduced")
keys = list(EXPERIMENTS)
# The URL carries the key (?experiment=kl_estimators), not the title a bound selectbox would write there.
from_url = st.query_params.get("experiment")
if "experiment" not in st.session_state:
    st.session_state.experiment = from_url if from_url in EXPERIMENTS else keys[0]
    if from_url is not None and from_url not in EXPERIMENTS:
        st.warning(f"`experiment={from_url}` is not an experiment; showing the first. Choose one of: {', '.join(keys)}.")
key = st.selectbox("Experiment", keys, format_func=lambda k: EXPERIMENTS[k].title, key="experiment")
st.query_params["experiment"] = key
experiment = EXPERIMENTS[key]
st.markdown(f"**Claim.** {experiment.claim}")
st.markdown(f"**Source.** [{experiment.source}]({experiment.link})")


@st.cache_data(show_spinner=False, max_entries=16)
def lab_result(experiment_key: str):
    return EXPERIMENTS[experiment_key].run()


ran = st.session_state.setdefault("lab_ran", set())
if experiment.seconds >= AUTO_RUN_SECONDS and key not in ran:
    st.caption(f"This run takes about {experiment.seconds:g} s (once per server: the result is cached).")
    if st.button("Run", key=f"run_{key}", type="primary"):
        ran.add(key)
        st.rerun()
else:
    with st.spinner("Running…"):
        result = lab_result(key)
    for i, figure in enumerate(result.figures):
        st.plotly_chart(figure, key=f"lab_{key}_{i}")
    st.markdown("#### Paper vs ours")
    st.dataframe(pd.DataFrame(result.table).astype(str), hide_index=True)
    for sentence in result.text:
        st.markdown(sentence)
