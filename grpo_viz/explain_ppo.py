"""Words and equations for the "PPO vs GRPO" page: PPO's side with its numbers, and what differs at each stage.

Plain strings (no Streamlit).  GRPO's side reuses :func:`grpo_viz.explain.stage_latex`.
"""

from __future__ import annotations

import pandas as pd
import torch

from .explain import _f, _rows, _tex_word, count
from .policies.toy import probs_from_logits
from .ppo import PPOIterationTrace
from .stepper import STAGES, IterationTrace

COMPARE_STAGES = (
    "Sample group",
    "Score",
    "Where the KL enters",
    "Baseline",
    "Advantages",
    "Ratios & clip",
    "Loss & gradient",
    "Update",
)

# For each comparison stage, the step-through stage whose GRPO equations it shows.
GRPO_STAGE = {
    "Sample group": STAGES.index("Sample group"),
    "Score": STAGES.index("Score"),
    "Where the KL enters": STAGES.index("KL"),
    "Baseline": STAGES.index("Advantages"),
    "Advantages": STAGES.index("Advantages"),
    "Ratios & clip": STAGES.index("Clip"),
    "Loss & gradient": STAGES.index("Loss & gradient"),
    "Update": STAGES.index("Update"),
}


def _first_of_each(texts: list[str]) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    for i, t in enumerate(texts):
        seen.setdefault(t, i)
    return list(seen.items())


def ppo_latex(stage: int, ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """PPO's equation at ``stage``, then the same with this group's numbers (one line per distinct word)."""
    s = ppo.settings
    name = COMPARE_STAGES[stage]
    texts = ppo.group.texts
    first = _first_of_each(texts)
    est = s.kl_estimator
    kl_def = {"k1": r"\log\pi_\theta - \log\pi_{ref}", "k2": r"\tfrac12(\log\pi_{ref} - \log\pi_\theta)^2",
              "k3": r"\tfrac{\pi_{ref}}{\pi_\theta} - \log\tfrac{\pi_{ref}}{\pi_\theta} - 1"}[est]
    v_old = float(ppo.values[0, 0])
    if name == "Sample group":
        return [r"o_1,\dots,o_B \sim \pi_{\theta_{old}}(\cdot \mid q)",
                r"\text{the same } " + str(len(texts)) + r"\text{ samples, no group structure needed}"]
    if name == "Score":
        return [r"\mathrm{rew}_{i,t} = -\beta\,\mathrm{KL}_{i,t} + [t = |o_i|-1]\; r_i",
                r"\text{one-token toy: } \mathrm{rew}_i = r_i - \beta\,\mathrm{KL}_i"]
    if name == "Where the KL enters":
        lines = [rf"\mathrm{{KL}}_{{i,t}} = {kl_def}\quad ({est})",
                 rf"\mathrm{{rew}}_i = r_i - \beta\,\mathrm{{KL}}_i,\quad \beta = {s.beta:g}"]
        for w, i in first:
            lines.append(rf"\mathrm{{rew}}({_tex_word(w)}) = {_f(float(ppo.rewards[i]), 2)} - {s.beta:g}\cdot({_f(float(ppo.kl[i, 0]), 5)})"
                         rf" = {_f(float(ppo.token_rewards[i, 0]), 5)}")
        return lines
    if name == "Baseline":
        return [r"V_\phi(s) \approx \mathbb{E}[R \mid s]",
                r"\text{a learned critic: one number for the toy's one state}",
                rf"V(s) = {_f(v_old)}\quad\text{{(learning rate }}{s.value_lr:g}\text{{)}}"]
    if name == "Advantages":
        lines = [r"\delta_t = \mathrm{rew}_t + \gamma V_{t+1} - V_t,\quad A_t = \delta_t + \gamma\lambda A_{t+1}",
                 r"\text{one token: } A = \mathrm{rew} - V"]
        if ppo.whitened:
            lines.append(r"A \leftarrow \frac{A - \mathrm{mean}(A)}{\sqrt{\mathrm{var}(A) + 10^{-8}}}\quad\text{(whitening)}")
        for w, i in first:
            raw, used = float(ppo.advantages_raw[i, 0]), float(ppo.advantages[i, 0])
            line = rf"A({_tex_word(w)}) = {_f(float(ppo.token_rewards[i, 0]))} - {_f(v_old)} = {_f(raw)}"
            if ppo.whitened:
                line += rf"\ \to\ {_f(used)}"
            lines.append(line)
        return lines
    last = ppo.epochs[-1]
    t = last.trace
    if name == "Ratios & clip":
        lines = [r"L^{\pi} = \mathrm{mean}_t \max\big(-A\,w,\ -A\,\mathrm{clip}(w, 1-\epsilon, 1+\epsilon)\big)",
                 rf"\text{{epoch }}{ppo.num_epochs}\text{{ of }}{ppo.num_epochs},\ \epsilon = {t.epsilon:g}:"]
        for w, i in first:
            lines.append(rf"w({_tex_word(w)}) = {_f(float(t.ratio[i, 0]))},\ \ \tilde w = {_f(float(t.clipped_ratio[i, 0]))}"
                         + (r"\ \text{(clipped)}" if bool(t.is_clipped[i, 0]) else ""))
        return lines
    if name == "Loss & gradient":
        e0 = ppo.epochs[0].trace
        g = ppo.epochs[0].grad_params[0]
        # short lines: the card is a half-width column, ~360 px on a 1280-px projector
        lines = [r"L = L^{\pi} + c_{vf}\,L^{V},\quad V_c = \mathrm{clip}(V, V_{old}\pm c_v)",
                 r"L^{V} = \tfrac12\,\mathrm{mean}_t\max\big((V-R)^2, (V_c - R)^2\big)",
                 r"\text{first epoch:}",
                 rf"L = {_f(float(e0.policy_loss), 5)} + {s.vf_coef:g}\cdot{_f(float(e0.value_loss), 5)} = {_f(float(e0.loss), 5)}"]
        lines += _rows([rf"\frac{{\partial L}}{{\partial z_{{{_tex_word(w)}}}}} = {_f(float(v))}" for w, v in zip(words, g)], 2)
        return lines
    # Update
    T = s.temperature
    before = probs_from_logits(ppo.state_before[0], T)
    after = probs_from_logits(ppo.state_after[0], T)
    # one statement a line: side by side they ran past a half-width card
    return [
        r"\theta \leftarrow \theta - \eta\nabla_\theta L,\quad \phi \leftarrow \phi - \eta_V \nabla_\phi L",
        rf"\eta = {s.lr:g},\ \eta_V = {s.value_lr:g},\ {ppo.num_epochs}\text{{ epochs}}",
        *_rows([rf"\pi({_tex_word(w)}): {_f(float(a), 3)} \to {_f(float(b), 3)}" for w, a, b in zip(words, before, after)], 1),
        rf"V(s): {_f(ppo.value_before)} \to {_f(ppo.value_after)}",
        rf"\text{{mean return }} R = {_f(float(ppo.returns.mean()))}",
    ]


def what_differs(stage: int, grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """The callout for ``stage``: one or two sentences on what PPO and GRPO do differently here, with numbers."""
    s = grpo.settings
    name = COMPARE_STAGES[stage]
    if name == "Sample group":
        return ("**Nothing yet.** Both algorithms learn from these very same samples of π_old. GRPO needs G ≥ 2 "
                "samples per prompt, because its baseline is the group; PPO could learn from one sample per prompt, "
                "because its baseline is a learned value V(s).")
    if name == "Score":
        return ("GRPO uses the score as it is, **one number per completion**. PPO builds a **per-token reward**: "
                "the score lands on the completion's last real token (TRL's PPOTrainer puts it one position later "
                "when the row has room, after the completion) and every token pays −β·KL. The toy has one token, "
                "so each sample's reward is r − β·KL.")
    if name == "Where the KL enters":
        moved = float((grpo.old_logp - grpo.ref_logp).abs().max()) > 1e-12
        text = (f"GRPO adds β·k3 to the **loss** (a regularizer with its own gradient); PPO subtracts β·{s.kl_estimator} "
                "from the **reward**, so the KL reaches the policy only through the advantages "
                "(and is part of what the critic has to predict).")
        if s.beta == 0:
            text += " **β = 0 here: neither algorithm looks at the reference.**"
        elif not moved:
            text += (" On this iteration π_θ still equals π_ref, so every KL is 0: keep one update and "
                     "come back to see it act.")
        return text
    if name == "Baseline":
        mean, sigma = float(grpo.group_mean[0]), float(grpo.group_std[0])
        return (f"GRPO's baseline is **this group's own mean** r̄ = {mean:.4f} (and spread σ = {sigma:.4f}): "
                "no extra model. "
                f"PPO's baseline is **a learned critic** V(s) = {float(ppo.values[0, 0]):.4f}, a second model trained "
                f"with its own learning rate ({s.value_lr:g}); a fresh critic starts at 0 and knows nothing.")
    if name == "Advantages":
        gap = float((grpo.advantages - ppo.advantages[:, 0]).abs().max())
        text = ("GRPO: A = (r − r̄)/σ, the same for every token of a completion. PPO: A = GAE(rew, V), which can "
                "differ token by token (one token here: A = rew − V)")
        if ppo.whitened:
            text += (", then whitened over the batch. Whitening subtracts the batch mean, so in this one-state toy "
                     "it removes V(s) again")
            if s.beta == 0 or gap < 1e-3:
                text += f": **the two advantages agree** (largest gap {gap:.1e}), the group statistics *are* the whitening."
            else:
                text += f"; what is left of the gap (up to {gap:.3f}) is PPO's −β·KL in the reward."
        else:
            text += ". Whitening is off, so V(s) really is PPO's baseline: a poor critic shifts every advantage."
        return text
    if name == "Ratios & clip":
        g_clip = int((grpo.steps[-1].trace.is_low_clipped | grpo.steps[-1].trace.is_high_clipped).sum())
        p_clip = int(ppo.epochs[-1].trace.is_clipped.sum())
        return (f"Same clipped surrogate, different number of passes: GRPO takes μ = {count(grpo.mu, 'step')} on the group "
                f"({count(g_clip, 'sample')} clipped at the last), PPO takes {count(ppo.num_epochs, 'epoch')} ({p_clip} "
                "clipped at the "
                "last). The first pass always has w = 1: the clip only bites once the policy has moved on this batch."
                + (" With μ = 1 GRPO's only pass is that first one, so none of its samples can be clipped."
                   if grpo.mu == 1 else ""))
    if name == "Loss & gradient":
        return ("GRPO's loss carries β·KL itself; PPO's adds vf_coef × the value loss, which trains the critic and has "
                "**no gradient on the policy's logits**. The bars are the first step's gradient: with the same group "
                "and start, any difference comes from the advantages and from where the KL sits.")
    # Update
    best = max(range(len(words)), key=lambda j: s.rewards[j])
    T = s.temperature
    g_after = float(probs_from_logits(grpo.state_after[0], T)[best])
    p_after = float(probs_from_logits(ppo.state_after[0], T)[best])
    g_before = float(probs_from_logits(grpo.state_before[0], T)[best])
    return (f"After one iteration π({words[best]}) went {g_before:.3f} → **{g_after:.3f} under GRPO** "
            f"({count(grpo.mu, 'step')}) and → **{p_after:.3f} under PPO** ({count(ppo.num_epochs, 'epoch')}). PPO also moved its "
            f"critic, V(s) {ppo.value_before:.3f} → {ppo.value_after:.3f}. Keep either update to go on, or open "
            "**Training** to run both for many iterations.")


# For each comparison stage: a "try this" prompt, a "check yourself" question and its answer.
PPO_TOUR: dict[str, tuple[str, str, str]] = {
    "Sample group": (
        "Set G to 2: GRPO still works, and PPO would even work with one sample per prompt.",
        "Why can PPO learn from a single completion per prompt while GRPO cannot?",
        "PPO's baseline is V(s), a learned estimate of the expected reward; GRPO's baseline is the mean of the "
        "group's own rewards, which needs at least two samples to say anything.",
    ),
    "Score": (
        "Change the reward of “slept” and watch both algorithms' rewards change the same way.",
        "Do the two algorithms see different rewards for the same sample?",
        "The scalar score r_i is the same. PPO then adds a per-token KL penalty to it (next stage); GRPO keeps r_i "
        "as it is and puts the KL in the loss instead.",
    ),
    "Where the KL enters": (
        "Keep one update (on the last stage), come back here and raise β to 0.5: PPO's rew moves away from its r.",
        "Where does β act in PPO, and where in GRPO?",
        "PPO subtracts β·KL from the reward of every token, so it flows through GAE into the advantages. GRPO adds "
        "β·KL straight to the loss, beside the clipped surrogate.",
    ),
    "Baseline": (
        "Keep PPO's update a few times and watch V(s) approach the mean reward.",
        "Which costs more to run at LLM scale, and why?",
        "PPO: its critic is a second network as large as the policy, trained alongside it. GRPO's baseline is a "
        "mean and a standard deviation over G numbers.",
    ),
    "Advantages": (
        "Switch off whitening in PPO options and compare the two advantage columns.",
        "With β = 0 and whitening on, why are PPO's advantages almost GRPO's?",
        "On the one-step toy, GAE gives A = r − V; whitening subtracts the batch mean, which removes V, and divides "
        "by the spread: the group normalization again (up to Bessel and the 1e-4).",
    ),
    "Ratios & clip": (
        "Set μ and PPO epochs to 4 and count the clipped samples on each side.",
        "Why does PPO clip at its first epoch less often than at its fourth?",
        "At the first epoch the policy is still π_old, so every ratio is 1; each epoch moves it, and samples leave "
        "the band [1 − ε, 1 + ε] in the direction their advantage pushes.",
    ),
    "Loss & gradient": (
        "Set vf_coef to 0: the policy's gradient is unchanged, only the critic stops learning.",
        "Does the value loss change the policy's logits?",
        "Not on the toy: the critic is a separate number, so the value loss only moves V. (In an LLM with a value "
        "head on a shared trunk it does reach the shared layers.)",
    ),
    "Update": (
        "Set PPO epochs to 1 (PPO options): at iteration 1 both algorithms then take one step with almost the same "
        "advantages, and their updates agree to three decimals. PPO's extra epochs made the difference.",
        "Which update moved further from π_ref, and what held each back?",
        "Compare the distributions: GRPO is held by β·KL in its loss and the clip, PPO by the KL inside its reward "
        "and the clip over several epochs.",
    ),
}


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
