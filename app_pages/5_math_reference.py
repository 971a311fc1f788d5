"""docs/MATH.md, term by term, beside the code that computes it and the numbers of the current group."""

import inspect

import pandas as pd
import streamlit as st
import torch

from grpo_viz import explain, objectives
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
latex_lines([r"A_i = \frac{r_i - \bar r}{\sigma_g + 10^{-4}}\ \ (\texttt{group}),\qquad "
             r"A_i = \frac{r_i - \bar r}{\sigma_{batch} + 10^{-4}}\ \ (\texttt{batch})",
             r"A_i = r_i - \bar r\ \ (\texttt{none})"])
st.markdown(f"σ uses Bessel's correction (divide by G − 1). Here r̄ = {float(trace.group_mean[0]):.4f} (the group's "
            f"mean reward; μ is the number of updates), σ_g = {float(trace.group_std[0]):.4f}, "
            f"scaling = `{settings.scale_rewards}`.")
per_sample(**{"reward r": trace.rewards.tolist(),
              **{f"A ({s})": objectives.group_advantages(trace.rewards, settings.group_size, s).tolist()
                 for s in objectives.SCALE_REWARDS}})
code_of(objectives.group_advantages)

st.markdown("### 2. Probability ratios and 3. clipping")
latex_lines([r"w_{i,t} = e^{\log\pi_\theta - \log\pi_{old}},\quad \tilde w = \mathrm{clip}(w, 1-\epsilon_{low}, 1+\epsilon_{high})",
             r"P_{i,t} = -\min(w A_i,\ \tilde w A_i)"])
st.markdown(f"Shown for inner step {trace.mu} of μ = {trace.mu} (with μ = 1 every ratio is exactly 1). "
            f"Clipped fraction: low {float(t.clip_low_fraction):.3f}, high {float(t.clip_high_fraction):.3f}.")
per_sample(**{"ratio w": t.ratio[:, 0].tolist(), "clipped w̃": t.clipped_ratio[:, 0].tolist(),
              "P": t.policy_loss_per_token[:, 0].tolist(),
              "clipped low": t.is_low_clipped[:, 0].tolist(), "clipped high": t.is_high_clipped[:, 0].tolist()})
code_of(objectives.grpo_loss)

st.markdown("### 4. KL to the reference")
st.latex(r"d = \log\pi_{ref} - \log\pi_\theta:\quad k_1 = -d,\quad k_2 = \tfrac{d^2}{2},\quad k_3 = e^{d} - d - 1")
st.markdown("GRPO adds β·k3 to the loss (β = %g). k1 can be negative for one sample; k3 never is." % settings.beta)
per_sample(**{e: objectives.kl_estimate(step.logp, trace.ref_logp, e)[:, 0].tolist() for e in objectives.KL_ESTIMATORS})
code_of(objectives.kl_estimate)

st.markdown("### 5. Aggregation into one loss")
latex_lines([r"\texttt{grpo}: \frac1B\sum_i \frac{\sum_t m L}{\max(|o_i|,1)}",
             r"\texttt{bnpo/dapo}: \frac{\sum_{i,t} m L}{\max(\sum_i |o_i|, 1)}\qquad "
             r"\texttt{dr\_grpo}: \frac{\sum_{i,t} m L}{B\cdot L_{max}}"])
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
latex_lines([r"\mathrm{rew}_t = -\beta\,\mathrm{KL}_t + [t = |o|-1]\,r,\quad \delta_t = \mathrm{rew}_t + \gamma V_{t+1} - V_t",
             r"A_t = \delta_t + \gamma\lambda A_{t+1},\quad R_t = A_t + V_t",
             r"L^{\pi} = \mathrm{mean}_t \max\big(-A_t w_t,\ -A_t\,\mathrm{clip}(w_t, 1\pm\epsilon)\big)",
             r"L = L^{\pi} + c_{vf}\cdot\tfrac12\,\mathrm{mean}_t"
             r"\max\big((V_t - R_t)^2,\ (\mathrm{clip}(V_t, V^{old}_t \pm c_v) - R_t)^2\big)"])
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
