"""Settings for the whole suite."""

import os

# Every figure a test builds goes through Plotly's property validation; the app skips it for speed
# (grpo_viz.charts.VALIDATE_FIGURES). Set before grpo_viz is imported, and inherited by `streamlit run`.
os.environ["GRPO_VIZ_VALIDATE_FIGURES"] = "1"


import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of small models: two threads competing for 2 busy cores ran ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
