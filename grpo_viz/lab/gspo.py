"""GSPO: per-token clipping bounds a sequence's likelihood ratio only loosely; one ratio per sequence bounds it.

A completion of L tokens whose every token ratio sits at a clip edge has sequence ratio prod_t w_t between
(1 - eps)^L and (1 + eps)^L: 0.8^10 = 0.107 and 1.2^10 = 6.19 for 10 tokens at eps 0.2. GSPO clips
s_i = exp(mean_t log w_t) instead, one number per completion. Measured on the built-in tiny GPT: one group of
"The cat" completions (up to 10 new tokens), mu = 3 updates, token level against sequence level.
"""

from __future__ import annotations

import torch

from .. import charts
from ..config import Settings
from ..policies.loading import load_builtin, make_policy
from ..stepper import grpo_iteration, make_generator
from ..tasks import TOY_TEXT
from . import Experiment, LabResult, row

TOKENS = 10
EPSILON = 0.2
LM_LR = 1e-3  # ten times the app's default, so that three Adam steps move the ratios past the clip edges


def token_clip_bounds(length: int, epsilon: float = EPSILON) -> tuple[float, float]:
    r"""(1 - eps)^L and (1 + eps)^L: the sequence ratio prod_t w_t when every token ratio is at a clip edge."""
    return (1 - epsilon) ** length, (1 + epsilon) ** length


def ratio_chart(labels, product, gspo, lengths) -> "charts.go.Figure":
    """Per completion: prod_t w_t under token-level training, its (0.8^L, 1.2^L) band, and GSPO's s_i."""
    low = [token_clip_bounds(n)[0] for n in lengths]
    high = [token_clip_bounds(n)[1] for n in lengths]
    data = [charts._bar("∏ w_t (token level)", labels, product, "#1f77b4", [f"{v:.2f}" for v in product]),
            charts._bar("s_i (sequence level)", labels, gspo, "#ff7f0e", [f"{v:.2f}" for v in gspo]),
            dict(type="scatter", name="(1 ± ε)^|o_i|", x=list(labels), y=high, mode="markers",
                 marker=dict(symbol="line-ew-open", size=24, color="#7f7f7f")),
            dict(type="scatter", name="(1 − ε)^|o_i|", x=list(labels), y=low, mode="markers", showlegend=False,
                 marker=dict(symbol="line-ew-open", size=24, color="#7f7f7f"))]
    return charts._figure(data, "Sequence ratios after μ = 3 updates on one group", barmode="group", legend_below=True,
                          xaxis=dict(type="category"), yaxis=dict(title="ratio (log scale)", type="log"))


def run(seed: int = 0, mu: int = 3, group_size: int = 8) -> LabResult:
    """One group, the same draw, trained at the token level and at the sequence level."""
    loaded = load_builtin()
    traces = {}
    for level in ("token", "sequence"):
        policy = make_policy(loaded, max_new_tokens=TOKENS)
        settings = Settings(beta=0.0, mu=mu, group_size=group_size, importance_sampling_level=level, seed=seed,
                            epsilon_low=EPSILON, epsilon_high=EPSILON, max_new_tokens=TOKENS, lm_lr=LM_LR)
        traces[level] = grpo_iteration(policy, TOY_TEXT.reward, settings, make_generator(seed, 0, 0),
                                       prompts=[TOY_TEXT.prompt(0, 0, False)])
    tok, seq = traces["token"], traces["sequence"]
    mask = tok.group.mask.to(torch.float64)
    lengths = [int(n) for n in mask.sum(dim=1)]
    last_tok, last_seq = tok.steps[-1], seq.steps[-1]
    log_w = (last_tok.logp - tok.old_logp).to(torch.float64) * mask
    product = torch.exp(log_w.sum(dim=1))
    token_ratios = torch.exp(log_w)[mask.bool()]
    gspo_ratio = last_seq.trace.ratio[:, 0].to(torch.float64)
    labels = charts.sample_labels([f"{n} tok" for n in lengths])
    lo, hi = token_clip_bounds(TOKENS)
    clip_tok = float(last_tok.trace.clip_fraction)
    clip_seq = float(last_seq.trace.clip_fraction)
    table = [row(f"(1 − ε)^{TOKENS}, ε = {EPSILON:g}", 0.107, round(lo, 6), "exact"),
             row(f"(1 + ε)^{TOKENS}", 6.19, round(hi, 6), "exact"),
             row(f"token level, step {mu}: range of ∏ w_t over the group", "within [0.107, 6.19] for 10 tokens",
                 f"{float(product.min()):.3f} – {float(product.max()):.3f}", "—"),
             row(f"token level, step {mu}: range of the token ratios w_t", "—",
                 f"{float(token_ratios.min()):.3f} – {float(token_ratios.max()):.3f}", "—"),
             row(f"sequence level, step {mu}: range of s_i", "—",
                 f"{float(gspo_ratio.min()):.3f} – {float(gspo_ratio.max()):.3f}", "—"),
             row(f"clip fraction at step {mu}: tokens (token level) / completions (sequence level)", "—",
                 f"{clip_tok:.3f} / {clip_seq:.3f}", "—")]
    text = [
        f"Ten tokens whose ratios each sit at a clip edge give a sequence ratio between 0.8^10 = {lo:.3f} and "
        f"1.2^10 = {hi:.2f}: per-token clipping leaves the sequence's likelihood ratio that free.",
        f"On the built-in model (group of {group_size}, lengths {min(lengths)}–{max(lengths)} tokens, rewards "
        f"{', '.join(f'{r:g}' for r in tok.rewards.tolist())}, Adam lr {LM_LR:g}), after μ = {mu} token-level updates the token ratios span "
        f"{float(token_ratios.min()):.3f}–{float(token_ratios.max()):.3f} and the sequences' ∏ w_t span "
        f"{float(product.min()):.3f}–{float(product.max()):.3f}; {clip_tok:.1%} of tokens are clipped.",
        f"At the sequence level (GSPO's s_i = exp(mean_t log w_t)) the ratios span {float(gspo_ratio.min()):.3f}–"
        f"{float(gspo_ratio.max()):.3f} and {clip_seq:.1%} of completions are clipped, each counted once.",
    ]
    return LabResult(figures=[ratio_chart(labels, product.tolist(), gspo_ratio.tolist(), lengths)], table=table, text=text)


EXPERIMENT = Experiment(
    key="gspo",
    title="6. GSPO: sequence-level ratios",
    claim="Per-token clipping bounds a sequence's likelihood ratio only loosely (10 tokens at ε = 0.2: between 0.107 and "
          "6.19); GSPO clips one length-normalized ratio per sequence.",
    source="Zheng et al. 2025, “Group Sequence Policy Optimization”",
    link="https://arxiv.org/abs/2507.18071",
    run=run,
    seconds=3.0,
)
