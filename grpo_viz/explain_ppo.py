"""Words and equations for the "PPO vs GRPO" page: PPO's side with its numbers, and what differs at each stage.

Plain strings (no Streamlit).  GRPO's side reuses :func:`grpo_viz.explain.stage_latex`.
"""

from __future__ import annotations

import pandas as pd
import torch

from . import stages
from .ppo import PPOIterationTrace
from .stepper import STAGES, IterationTrace

COMPARE_STAGES = tuple(stage.name for stage in stages.COMPARE_STAGES)

# For each comparison stage, the step-through stage whose GRPO equations it shows.
GRPO_STAGE = {stage.name: STAGES.index(stage.grpo_stage) for stage in stages.COMPARE_STAGES}


def ppo_latex(stage: int, ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """PPO's equation at ``stage``, then the same with this group's numbers (one line per distinct word)."""
    return stages.COMPARE_STAGES[stage].ppo_latex(ppo, words, ref_logits)


def what_differs(stage: int, grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """The callout for ``stage``: one or two sentences on what PPO and GRPO do differently here, with numbers."""
    return stages.COMPARE_STAGES[stage].differs(grpo, ppo, words)


# For each comparison stage: a "try this" prompt, a "check yourself" question and its answer.
PPO_TOUR: dict[str, tuple[str, str, str]] = {stage.name: stage.tour for stage in stages.COMPARE_STAGES}


def compare_table(grpo: IterationTrace, ppo: PPOIterationTrace) -> pd.DataFrame:
    """Every per-sample number of one group under both algorithms: GRPO's last inner step, PPO's last epoch."""
    p_last = ppo.epochs[-1].trace
    return pd.DataFrame({
        "sample": range(1, len(grpo.group.texts) + 1),
        "word": grpo.group.texts,
        "reward r": grpo.rewards.tolist(),
        "GRPO r̄": grpo.group_mean.tolist(),
        "GRPO σ": grpo.group_std.tolist(),
        "GRPO A": grpo.advantages.tolist(),
        "GRPO w (last step)": grpo.steps[-1].trace.ratio[:, 0].tolist(),
        f"PPO {ppo.settings.kl_estimator}": ppo.kl[:, 0].tolist(),
        "PPO rew": ppo.token_rewards[:, 0].tolist(),
        "PPO V(s)": ppo.values[:, 0].tolist(),
        "PPO A (GAE)": ppo.advantages_raw[:, 0].tolist(),
        "PPO A (used)": ppo.advantages[:, 0].tolist(),
        "PPO return R": ppo.returns[:, 0].tolist(),
        "PPO w (last epoch)": p_last.ratio[:, 0].tolist(),
        "PPO clipped": p_last.is_clipped[:, 0].tolist(),
    })
