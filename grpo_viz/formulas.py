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
SOFTMAX = r"\pi_\theta(w \mid \text{The cat}) = \frac{e^{z_w / T}}{\sum_{v} e^{z_v / T}}"
K3 = (r"\mathbb{D}_{KL}[\pi_\theta \| \pi_{ref}] \approx "
      r"\frac{\pi_{ref}}{\pi_\theta} - \log\frac{\pi_{ref}}{\pi_\theta} - 1")
