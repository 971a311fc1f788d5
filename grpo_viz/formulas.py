r"""The objectives as LaTeX, written once, in named pieces so that one term can be boxed.

The lesson boxes the term a slide is about; the stepping pages box the terms a stage computes
(:func:`grpo_viz.explain.objective_latex`).  Each piece is the symbol the code's docstrings use:
``w`` is the ratio pi_theta / pi_old, ``A`` the advantage, ``\beta`` the KL weight.
"""

from __future__ import annotations

from collections.abc import Collection

HIGHLIGHT = "#e4572e"


def boxed(tex: str) -> str:
    """A term in focus: boxed, in the highlight colour."""
    return rf"\boxed{{\color{{{HIGHLIGHT}}}{{{tex}}}}}"


# PPO as DeepSeekMath writes it (its equation 1), one token o_t of one sampled output o at a time.
PPO_PIECES = {
    "expectation": r"\mathbb{E}_{q,\ o \sim \pi_{\theta_{old}}(\cdot\mid q)}",
    "aggregate": r"\frac{1}{|o|}\sum_{t=1}^{|o|}",
    "ratio": r"w_t",
    "advantage": r"A_t",
    "clip": r"\mathrm{clip}(w_t, 1-\epsilon, 1+\epsilon)",
    "policy": r"\pi_\theta(o_t \mid q, o_{<t})",
    "old_policy": r"\pi_{\theta_{old}}(o_t \mid q, o_{<t})",
}

# PPO's advantage from a reward model r_phi and a value model V_psi, with the KL penalty inside the reward.
PPO_REWARD_PIECES = {
    "reward": r"r_\varphi(q, o)",
    "kl": r"\beta \log\frac{\pi_\theta(o_t \mid q, o_{<t})}{\pi_{ref}(o_t \mid q, o_{<t})}",
    "value": r"V_\psi(q, o_{<t})",
}

# GRPO as DeepSeekMath writes it (its equation 3).
GRPO_PIECES = {
    "expectation": r"\mathbb{E}_{q,\ \{o_i\}_{i=1}^{G} \sim \pi_{\theta_{old}}(\cdot\mid q)}",
    "aggregate": r"\frac{1}{G}\sum_{i=1}^{G}\frac{1}{|o_i|}\sum_{t=1}^{|o_i|}",
    "ratio": r"w_{i,t}",
    "advantage": r"\hat A_{i,t}",
    "clip": r"\mathrm{clip}(w_{i,t}, 1-\epsilon_{low}, 1+\epsilon_{high})",
    "kl": r"\beta\, \mathbb{D}_{KL}[\pi_\theta \| \pi_{ref}]",
}


def _term(pieces: dict[str, str], focus: Collection[str]):
    def term(name: str, text: str | None = None) -> str:
        text = pieces[name] if text is None else text
        return boxed(text) if name in focus else text

    return term


def _surrogate(term, focus: Collection[str], size: str) -> str:
    r"""min(w A, clip(w) A) from a family's pieces, its parentheses \big or \Big; "min" in ``focus`` boxes it whole."""
    inner = rf"\min\{size}({term('ratio')}{term('advantage')},\ {term('clip')}{term('advantage')}\{size})"
    return boxed(inner) if "min" in focus else inner


def ppo_objective(focus: Collection[str] = ()) -> str:
    r"""J_PPO(θ) = E[(1/|o|) Σ_t min(w_t A_t, clip(w_t, 1-ε, 1+ε) A_t)] with the ``focus`` terms boxed."""
    term = _term(PPO_PIECES, focus)
    return rf"\mathcal{{J}}_{{PPO}}(\theta) = {term('expectation')}\Big[{term('aggregate')}{_surrogate(term, focus, 'big')}\Big]"


def ppo_ratio(focus: Collection[str] = ()) -> str:
    r"""w_t = π_θ(o_t | q, o_<t) / π_old(o_t | q, o_<t)."""
    term = _term(PPO_PIECES, focus)
    return rf"w_t = \frac{{{term('policy')}}}{{{term('old_policy')}}}"


def ppo_reward(focus: Collection[str] = ()) -> str:
    r"""The per-token reward r_t = r_φ(q, o)[t = |o|] - β log(π_θ/π_ref): the score at the last token, the KL at every one."""
    term = _term(PPO_REWARD_PIECES, focus)
    return rf"r_t = {term('reward')}\,[t = |o|] - {term('kl')}"


def ppo_advantage(focus: Collection[str] = ()) -> str:
    r"""A_t = GAE(r, V_ψ): the advantage from the per-token rewards and the value model's baseline."""
    term = _term(PPO_REWARD_PIECES, focus)
    return rf"A_t = \mathrm{{GAE}}_{{\gamma,\lambda}}\big(r,\ {term('value')}\big)"


def grpo_objective(focus: Collection[str] = (), name: str = "GRPO") -> str:
    r"""J_GRPO(θ) (DeepSeekMath's equation 3) with the ``focus`` terms boxed; "min" boxes the whole min(...).
    ``name`` subscripts J (the lesson tells PPO's and GRPO's apart); "" leaves it off, where room is short."""
    term = _term(GRPO_PIECES, focus)
    subscript = f"_{{{name}}}" if name else ""
    return (rf"\mathcal{{J}}{subscript}(\theta) = {term('expectation')}\Big[{term('aggregate')}"
            rf"\Big({_surrogate(term, focus, 'Big')} - {term('kl')}\Big)\Big]")


GRPO_GROUP_ADVANTAGE = r"\hat A_{i,t} = \frac{r_i - \bar r}{\sigma_r},\qquad \bar r = \frac1G\sum_{j=1}^G r_j"


# ----------------------------------------------------------------- the equations of docs/MATH.md, written once
# The Math reference page and the stage records (grpo_viz/stages.py) show these; the lines with a group's numbers
# are computed where they are shown.

def softmax(state: str | None = None) -> str:
    r"""π_θ(w) = e^{z_w/T} / Σ_v e^{z_v/T}: the toy's policy (MATH.md, Notation: logits divided by T), conditioned
    on ``state`` when one is given."""
    given = "" if state is None else rf" \mid \text{{{state}}}"
    return rf"\pi_\theta(w{given}) = \frac{{e^{{z_w / T}}}}{{\sum_{{v}} e^{{z_v / T}}}}"


SOFTMAX = softmax("The cat")


def sample(n: str = "G") -> str:
    r"""o_1, ..., o_n ~ π_old(· | q): the completions drawn from the policy that is frozen as π_old (MATH.md, Notation)."""
    return rf"o_1,\dots,o_{n} \sim \pi_{{\theta_{{old}}}}(\cdot \mid q)"


REWARD = r"r_i = r(q, o_i)"
"""One scalar reward per completion (MATH.md, GRPO section 1)."""

# MATH.md, GRPO section 1 (Rewards to advantages): A_i for each ``scale_rewards``; the group mean is r̄ (μ is the
# number of inner updates) and σ_g its Bessel standard deviation.
ADVANTAGE = {
    "group": r"A_i = \frac{r_i - \bar r}{\sigma_g + 10^{-4}}",
    "batch": r"A_i = \frac{r_i - \bar r}{\sigma_{batch} + 10^{-4}}",
    "none": r"A_i = r_i - \bar r",
}
GROUP_STD = r"\sigma_g = \sqrt{\tfrac{1}{G-1}\textstyle\sum_j (r_j-\bar r)^2}"
"""σ_g with Bessel's correction (MATH.md, GRPO section 1)."""

RATIO = r"w_{i,t} = \frac{\pi_\theta(o_{i,t}\mid q, o_{i,<t})}{\pi_{\theta_{old}}(o_{i,t}\mid q, o_{i,<t})}"
"""The token-level ratio (MATH.md, GRPO section 2, importance_sampling_level="token")."""
RATIO_FROM_LOGP = r"w_{i,t} = e^{\log\pi_\theta - \log\pi_{old}}"
"""The same ratio as the code computes it, from log-probs (MATH.md, GRPO section 2)."""
SEQUENCE_RATIO = r"w_i = \exp\Big(\frac{1}{|o_i|}\sum_t \log\frac{\pi_\theta(o_{i,t})}{\pi_{old}(o_{i,t})}\Big)"
"""GSPO's length-normalized sequence ratio (MATH.md, GRPO section 2, importance_sampling_level="sequence")."""

CLIPPED_RATIO = r"\tilde w = \mathrm{clip}(w, 1-\epsilon_{low}, 1+\epsilon_{high})"
"""The clipped ratio w~ (MATH.md, GRPO section 3)."""


def policy_term(annotated: bool = False) -> str:
    r"""P_{i,t} = -min(w A_i, w~ A_i) (MATH.md, GRPO section 3); ``annotated`` names the two branches."""
    plain, clipped = r"w_{i,t} A_i", r"\tilde w_{i,t} A_i"
    if annotated:
        plain, clipped = rf"\underbrace{{{plain}}}_{{\text{{unclipped}}}}", rf"\underbrace{{{clipped}}}_{{\text{{clipped}}}}"
    return rf"P_{{i,t}} = -\min\big({plain},\ {clipped}\big)"


KL_ESTIMATORS_FROM_D = r"d = \log\pi_{ref} - \log\pi_\theta:\quad k_1 = -d,\quad k_2 = \tfrac{d^2}{2},\quad k_3 = e^{d} - d - 1"
"""The three KL estimators as the code computes them from d (MATH.md, GRPO section 4)."""


def kl_estimator(name: str, of: str = "") -> str:
    r"""The right-hand side of estimator ``name`` (k1, k2 or k3) in π_θ and π_ref, each applied to ``of`` (e.g.
    "(o_{i,t})"); the same estimators as :data:`KL_ESTIMATORS_FROM_D` (MATH.md, GRPO section 4)."""
    theta, ref = rf"\pi_\theta{of}", rf"\pi_{{ref}}{of}"
    return {"k1": rf"\log{theta} - \log{ref}",
            "k2": rf"\tfrac12(\log{ref} - \log{theta})^2",
            "k3": rf"\frac{{{ref}}}{{{theta}}} - \log\frac{{{ref}}}{{{theta}}} - 1"}[name]


def kl_definition(name: str, of: str = "") -> str:
    r"""KL_{i,t} = the estimator ``name`` (MATH.md, GRPO section 4; PPO's KL in the reward uses the same)."""
    return rf"\mathrm{{KL}}_{{i,t}} = {kl_estimator(name, of)}"


K3 = r"\mathbb{D}_{KL}[\pi_\theta \| \pi_{ref}] \approx " + kl_estimator("k3")

PER_TOKEN_LOSS = r"\big(P_{i,t} + \beta\,\mathrm{KL}_{i,t}\big)"
"""The per-token loss L_{i,t} = P_{i,t} + β KL_{i,t} (MATH.md, GRPO section 4)."""


def loss_aggregation(loss_type: str) -> str:
    r"""𝓛 for ``loss_type`` over one group of G completions, summed per token (MATH.md, GRPO section 5)."""
    per_completion = r"\frac{1}{|o_i|}\sum_{t=1}^{|o_i|}"
    if loss_type == "grpo":
        return rf"\mathcal{{L}} = \frac{{1}}{{G}}\sum_{{i=1}}^{{G}} {per_completion} {PER_TOKEN_LOSS}"
    scale = {"bnpo": r"\sum_i |o_i|", "dapo": r"\sum_i |o_i|", "dr_grpo": r"G\cdot L_{max}"}[loss_type]
    return rf"\mathcal{{L}} = \frac{{1}}{{{scale}}}\sum_{{i=1}}^{{G}}\sum_{{t=1}}^{{|o_i|}} {PER_TOKEN_LOSS}"


# The four aggregations as the code computes them over a batch of B completions, with the mask m and the guards
# against empty completions (MATH.md, GRPO section 5).
LOSS_AGGREGATION_MASKED = {
    "grpo": r"\texttt{grpo}: \frac1B\sum_i \frac{\sum_t m L}{\max(|o_i|,1)}",
    "bnpo/dapo": r"\texttt{bnpo/dapo}: \frac{\sum_{i,t} m L}{\max(\sum_i |o_i|, 1)}",
    "dr_grpo": r"\texttt{dr\_grpo}: \frac{\sum_{i,t} m L}{B\cdot L_{max}}",
}

SOFTMAX_GRADIENT = (r"\frac{\partial\mathcal{L}}{\partial z_k} = \frac{1}{T}\sum_i \frac{\partial\mathcal{L}}"
                    r"{\partial \log\pi_\theta(o_i)}\big(\mathbb{1}[o_i = k] - \pi_\theta(k)\big)")
"""The toy's chain rule from the loss to its three logits (MATH.md, Notation: the three-token toy)."""

GRADIENT_STEP = r"\theta \leftarrow \theta - \eta\,\nabla_\theta\mathcal{L}"
"""One optimizer step on the loss (MATH.md, GRPO section 5b)."""
ASCENT_STEP = r"\theta \leftarrow \theta + \eta\,\nabla_\theta \mathcal{J}"
"""The same step, as ascent on the objective J = -𝓛 (MATH.md, GRPO section 5)."""

# ----------------------------------------------------------------- PPO (MATH.md, PPO (RLHF style))
PPO_TOKEN_REWARD = r"\mathrm{rew}_{i,t} = -\beta\,\mathrm{KL}_{i,t} + [t = |o_i|-1]\; r_i"
"""The per-token reward: -β KL on every token, the score on the last real one (MATH.md, PPO)."""
PPO_ONE_TOKEN_REWARD = r"\mathrm{rew}_i = r_i - \beta\,\mathrm{KL}_i"
"""PPO_TOKEN_REWARD for a one-token completion (the toy)."""
VALUE_BASELINE = r"V_\psi(s) \approx \mathbb{E}[R \mid s]"
"""The critic (value model V_ψ, as in :data:`PPO_REWARD_PIECES`) estimates the return (MATH.md, PPO)."""
GAE_DELTA = r"\delta_t = \mathrm{rew}_t + \gamma V_{t+1} - V_t"
"""GAE's temporal-difference error (MATH.md, PPO)."""
GAE = r"A_t = \delta_t + \gamma\lambda A_{t+1}"
"""GAE's backward recursion (MATH.md, PPO)."""
PPO_RETURN = r"R_t = A_t + V_t"
"""The returns the critic learns (MATH.md, PPO)."""
PPO_ONE_TOKEN_ADVANTAGE = r"A = \mathrm{rew} - V"
"""GAE for a one-token completion (the toy)."""
WHITENING = r"A \leftarrow \frac{A - \mathrm{mean}(A)}{\sqrt{\mathrm{var}(A) + 10^{-8}}}"
"""Advantage whitening over the batch's real tokens (MATH.md, PPO)."""
PPO_POLICY_LOSS = r"L^{\pi} = \mathrm{mean}_t \max\big(-A_t w_t,\ -A_t\,\mathrm{clip}(w_t, 1\pm\epsilon)\big)"
"""PPO's clipped policy loss (MATH.md, PPO: Policy loss)."""
PPO_LOSS = r"L = L^{\pi} + c_{vf}\,L^{V}"
"""PPO's total loss (MATH.md, PPO: Value loss)."""
CLIPPED_VALUE = r"V^{c}_t = \mathrm{clip}(V_t, V^{old}_t \pm c_v)"
"""The value clipped to c_v of the values before the epochs (MATH.md, PPO: Value loss)."""
PPO_VALUE_LOSS = r"L^{V} = \tfrac12\,\mathrm{mean}_t\max\big((V_t - R_t)^2,\ (V^{c}_t - R_t)^2\big)"
"""PPO's clipped value loss (MATH.md, PPO: Value loss)."""
PPO_UPDATE = r"\theta \leftarrow \theta - \eta\nabla_\theta L,\quad \psi \leftarrow \psi - \eta_V \nabla_\psi L"
"""PPO's step on the policy θ and the critic ψ (MATH.md, PPO)."""
