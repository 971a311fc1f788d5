"""docs/MATH.md, term by term, beside the code that computes it and the numbers of the current group."""

import inspect

import pandas as pd
import streamlit as st
import torch

from grpo_viz import explain, formulas, objectives
from grpo_viz.config import PRESETS, TOY_WORDS
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.stepper import StepRun
from grpo_viz.tasks import word_reward
from grpo_viz.ui import compact_page, latex_lines, settings_sidebar

compact_page()
settings = settings_sidebar()
st.markdown("## Math reference")
st.caption("Each section is one part of `docs/MATH.md` in the repository: the equation, the function in `grpo_viz/objectives.py` that "
           "computes it (open the code), and its value for the group on the *Step through GRPO* page right now.")

# The landing page's run if this session has one, so the numbers match what the student just saw.
run: StepRun = st.session_state.get("toy_run") or StepRun(ToyPolicy())
trace = run.trace(settings, word_reward(TOY_WORDS, settings.rewards))
step = trace.steps[-1]
t = step.trace


def code_of(*functions) -> None:
    with st.expander("The code: " + ", ".join(f"`{f.__name__}`" for f in functions)):
        for f in functions:
            st.code(inspect.getsource(f), language="python")


def per_sample(**columns) -> None:
    frame = pd.DataFrame({"sample": range(1, len(trace.group.texts) + 1), "completion": trace.group.texts, **columns})
    st.dataframe(frame, hide_index=True)


st.markdown("### 1. Rewards to advantages")
# one statement a line: side by side they ran past the page with the sidebar open on a 1024-px screen
latex_lines([formulas.ADVANTAGE["group"] + r"\ \ (\texttt{group}),\qquad "
             + formulas.ADVANTAGE["batch"] + r"\ \ (\texttt{batch})",
             formulas.ADVANTAGE["none"] + r"\ \ (\texttt{none})"])
st.markdown(f"σ uses Bessel's correction (divide by G − 1). Here r̄ = {float(trace.group_mean[0]):.4f} (the group's "
            f"mean reward; μ is the number of updates), σ_g = {float(trace.group_std[0]):.4f}, "
            f"scaling = `{settings.scale_rewards}`.")
per_sample(**{"reward r": trace.rewards.tolist(),
              **{f"A ({s})": objectives.group_advantages(trace.rewards, settings.group_size, s).tolist()
                 for s in objectives.SCALE_REWARDS}})
code_of(objectives.group_advantages)

st.markdown("### 2. Probability ratios and 3. clipping")
latex_lines([formulas.RATIO_FROM_LOGP + r",\quad " + formulas.CLIPPED_RATIO, formulas.policy_term()])
st.markdown(f"Shown for inner step {trace.mu} of μ = {trace.mu} (with μ = 1 every ratio is exactly 1). "
            f"Clipped fraction: low {float(t.clip_low_fraction):.3f}, high {float(t.clip_high_fraction):.3f}.")
per_sample(**{"ratio w": t.ratio[:, 0].tolist(), "clipped w̃": t.clipped_ratio[:, 0].tolist(),
              "P": t.policy_loss_per_token[:, 0].tolist(),
              "clipped low": t.is_low_clipped[:, 0].tolist(), "clipped high": t.is_high_clipped[:, 0].tolist()})
code_of(objectives.grpo_loss)

st.markdown("### 4. KL to the reference")
st.latex(formulas.KL_ESTIMATORS_FROM_D)
st.markdown("GRPO adds β·k3 to the loss (β = %g). k1 can be negative for one sample; k3 never is." % settings.beta)
per_sample(**{e: objectives.kl_estimate(step.logp, trace.ref_logp, e)[:, 0].tolist() for e in objectives.KL_ESTIMATORS})
code_of(objectives.kl_estimate)

st.markdown("### 5. Aggregation into one loss")
latex_lines([formulas.LOSS_AGGREGATION_MASKED["grpo"],
             formulas.LOSS_AGGREGATION_MASKED["bnpo/dapo"] + r"\qquad " + formulas.LOSS_AGGREGATION_MASKED["dr_grpo"]])
st.markdown("The toy's completions are one token long, so all four agree on it. Two completions of lengths 1 and 3, "
            "each token with per-token loss 1 and 0.1 respectively, show the difference:")
mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
rows = []
for loss_type in objectives.LOSS_TYPES:
    toy_loss = float(objectives.grpo_loss(step.logp, trace.old_logp, trace.ref_logp, trace.advantages.double(),
                                          trace.group.mask, beta=settings.beta, loss_type=loss_type,
                                          epsilon_low=settings.epsilon_low, epsilon_high=settings.epsilon_high).loss)
    # on-policy (w = 1) the per-token loss is -A: advantages -1 and -0.1 give per-token losses 1 and 0.1
    lengths_loss = float(objectives.grpo_loss(torch.zeros(2, 3, dtype=torch.float64), None, None,
                                              torch.tensor([-1.0, -0.1], dtype=torch.float64), mask,
                                              loss_type=loss_type).loss)
    # rounded: an exact 0 (on-policy, the advantages sum to 0) otherwise showed as -0.00000000000000004
    rows.append({"loss_type": loss_type, "this group's loss": round(toy_loss, 6) + 0.0,
                 "lengths 1 and 3 example": lengths_loss})
st.dataframe(pd.DataFrame(rows), hide_index=True)
st.markdown("`grpo` gives the short completion's token weight ½ and each long one ⅙: tokens of short completions count "
            "more. `dapo`/`bnpo` weigh every token ¼; `dr_grpo` divides by the constant B·L_max = 6.")

st.markdown("### 6. Named presets")
st.dataframe(pd.DataFrame([{"preset": name, **vars(p)} for name, p in PRESETS.items()]), hide_index=True)

st.markdown("### PPO: KL in the reward, GAE, clipped policy and value losses")
latex_lines([formulas.PPO_TOKEN_REWARD + r",\quad " + formulas.GAE_DELTA,
             formulas.GAE + r",\quad " + formulas.PPO_RETURN,
             formulas.PPO_POLICY_LOSS,
             formulas.PPO_LOSS + r",\quad " + formulas.CLIPPED_VALUE,
             formulas.PPO_VALUE_LOSS])
st.markdown("A three-token completion with score 1, values (0.5, 0.6, 0.7), γ = 1, λ = 0.95, and β = 0 "
            "(so the only reward is the score on the last token):")
rewards = objectives.ppo_token_rewards(torch.tensor([1.0], dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64),
                                       torch.zeros(1, 3, dtype=torch.float64), torch.ones(1, 3), beta=0.0)
values = torch.tensor([[0.5, 0.6, 0.7]], dtype=torch.float64)
advantages, returns = objectives.gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=0.95)
st.dataframe(pd.DataFrame({"token t": [1, 2, 3], "rew_t": rewards[0].tolist(), "V_t": values[0].tolist(),
                           "A_t (GAE)": advantages[0].tolist(), "R_t": returns[0].tolist()}), hide_index=True)
code_of(objectives.ppo_token_rewards, objectives.gae, objectives.ppo_loss)

st.markdown("### Glossary")
st.table(pd.DataFrame({"symbol": list(explain.SYMBOLS), "meaning": list(explain.SYMBOLS.values())}))
