"""Settings for the whole suite."""

import os

# Every figure a test builds goes through Plotly's property validation; the app skips it for speed
# (grpo_viz.charts.VALIDATE_FIGURES). Set before grpo_viz is imported, and inherited by `streamlit run`.
os.environ["GRPO_VIZ_VALIDATE_FIGURES"] = "1"
# The suite runs as someone on their own machine (typed model folders allowed, no operator's list or size limit);
# the tests of an operator's settings set them themselves. A CI runner's environment must not change what passes.
for _operator_setting in ("GRPO_VIZ_ALLOW_LOCAL_MODELS", "GRPO_VIZ_MODELS", "GRPO_VIZ_MAX_MODEL_MB"):
    os.environ.pop(_operator_setting, None)


import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of small models: two threads competing for 2 busy cores ran ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
