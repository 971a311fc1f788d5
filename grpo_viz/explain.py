"""What each stage says: its equation with the group's numbers, a plain explanation, and a table.

Plain strings and pandas only (no Streamlit), so the math reference, the app
and a notebook all print the same thing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from .policies.toy import ToyPolicy, probs_from_logits
from . import formulas
from .stepper import STAGES, InnerStep, IterationTrace


def _f(x: float, digits: int = 4) -> str:
    """A number for a formula: fixed digits, an explicit minus, no '-0.0000'."""
    x = float(x)
    if abs(x) < 0.5 * 10**-digits:
        x = 0.0
    return f"{x:.{digits}f}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 sample``, ``2 samples``: a number with its noun, for sentences a student reads."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _p(x: float, digits: int = 4) -> str:
    """A number as a factor in a product: negatives in parentheses."""
    text = _f(x, digits)
    return f"({text})" if text.startswith("-") else text


def _rows(items: list[str], per_row: int = 2) -> list[str]:
    """Equations side by side, at most ``per_row`` to a line, so a line fits a projector."""
    return [r",\qquad ".join(items[i : i + per_row]) for i in range(0, len(items), per_row)]


def _tex_word(word: str) -> str:
    return r"\text{" + word.replace("_", r"\_") + "}"


@dataclass
class ToyNumbers:
    """The toy-specific numbers of one iteration: distributions and logits before, during and after."""

    words: tuple[str, ...]
    temperature: float
    logits_old: torch.Tensor  # z at sampling time (pi_old)
    probs_old: torch.Tensor
    probs_ref: torch.Tensor
    logits_per_step: list[torch.Tensor]  # z after 0..mu inner updates
    probs_per_step: list[torch.Tensor]
    grad_logits: list[torch.Tensor]  # dL/dz at each inner step

    @property
    def probs_after(self) -> torch.Tensor:
        return self.probs_per_step[-1]


def toy_numbers(trace: IterationTrace, policy: ToyPolicy) -> ToyNumbers:
    T = trace.settings.temperature
    logits = [trace.steps[0].state_before[0]] + [s.state_after[0] for s in trace.steps]
    return ToyNumbers(
        words=policy.words,
        temperature=T,
        logits_old=logits[0],
        probs_old=probs_from_logits(logits[0], T),
        probs_ref=probs_from_logits(policy.ref_logits, T),
        logits_per_step=logits,
        probs_per_step=[probs_from_logits(z, T) for z in logits],
        grad_logits=[s.grad_params[0] for s in trace.steps],
    )


# ----------------------------------------------------------------- the per-sample table

STAGE_COLUMNS = {
    "Sample group": ["sample", "completion", "π_old(o)", "π_ref(o)"],
    "Score": ["reward r"],
    "Advantages": ["group mean r̄", "group std σ", "advantage A"],
    "Ratios": ["ratio w"],
    "Clip": ["clipped ratio w̃", "w·A", "w̃·A", "active branch", "policy loss P"],
    "KL": ["k3", "β·k3"],
    "Loss & gradient": ["loss L_i", "∂L/∂log π(o)"],
    "Update": ["π_θ(o) after"],
}


def active_branch(ratio: float, advantage: float, low_clipped: bool, high_clipped: bool) -> str:
    """Which term of min(w A, w̃ A) is active for one sample, and why, in words."""
    if advantage == 0:
        return "A = 0: no push either way"
    if high_clipped:
        return "clipped (w > 1+ε_high, A > 0): no gradient"
    if low_clipped:
        return "clipped (w < 1−ε_low, A < 0): no gradient"
    if ratio > 1 or ratio < 1:
        return "unclipped w·A (clip would not help the objective)"
    return "unclipped w·A (w = 1)"


def sample_columns(trace: IterationTrace, step_index: int, stage: int,
                   probs_after: torch.Tensor | None = None) -> dict[str, list]:
    """One value per completion in each column of every stage up to ``stage``, by column name.

    For multi-token completions the per-token quantities are shown as the
    completion's mean over its real tokens.
    """
    step = trace.steps[step_index]
    t = step.trace
    mask = trace.group.mask.to(torch.float64)
    lengths = mask.sum(-1).clamp(min=1)

    def per_completion(x: torch.Tensor) -> list[float]:
        return ((x.to(torch.float64) * mask).sum(-1) / lengths).tolist()

    def per_completion_sum(x: torch.Tensor) -> list[float]:
        return (x.to(torch.float64) * mask).sum(-1).tolist()

    low = t.is_low_clipped.any(-1).tolist()
    high = t.is_high_clipped.any(-1).tolist()
    ratio = per_completion(t.ratio)
    adv = trace.advantages.tolist()
    kl = per_completion(t.kl) if t.kl is not None else [0.0] * len(adv)
    columns = {
        "sample": list(range(1, len(adv) + 1)),
        "completion": trace.group.texts,
        "π_old(o)": per_completion_sum(trace.old_logp),
        "π_ref(o)": per_completion_sum(trace.ref_logp),
        "reward r": trace.rewards.tolist(),
        "group mean r̄": trace.group_mean.tolist(),
        "group std σ": trace.group_std.tolist(),
        "advantage A": adv,
        "ratio w": ratio,
        "clipped ratio w̃": per_completion(t.clipped_ratio),
        "w·A": per_completion(t.unclipped_objective),
        "w̃·A": per_completion(t.clipped_objective),
        "active branch": [active_branch(r, a, lo, hi) for r, a, lo, hi in zip(ratio, adv, low, high)],
        "policy loss P": per_completion(t.policy_loss_per_token),
        "k3": kl,
        "β·k3": [t.beta * k for k in kl],
        "loss L_i": per_completion(t.per_token_loss),
        "∂L/∂log π(o)": per_completion_sum(step.grad_logp),
    }
    # a completion's probability is the exp of its summed token log-probs
    columns["π_old(o)"] = [math.exp(v) for v in columns["π_old(o)"]]
    columns["π_ref(o)"] = [math.exp(v) for v in columns["π_ref(o)"]]
    if probs_after is not None:
        ids = trace.group.completion_ids[:, 0]
        columns["π_θ(o) after"] = probs_after[ids].tolist()
    shown = [c for s in STAGES[: stage + 1] for c in STAGE_COLUMNS[s] if c in columns]
    return {c: columns[c] for c in shown}


def sample_table(trace: IterationTrace, step_index: int, stage: int, probs_after: torch.Tensor | None = None) -> pd.DataFrame:
    """``sample_columns`` as a table, one row per completion (the CSV export; a notebook)."""
    return pd.DataFrame(sample_columns(trace, step_index, stage, probs_after))


def table_markdown(columns: Mapping[str, Sequence], digits: int = 4) -> str:
    """A small table (columns by name: a dict of lists, or a DataFrame) as GitHub-flavoured Markdown: real numbers to
    ``digits`` places, numbers right-aligned.

    The step-through table is plain Markdown rather than an interactive grid: it appears on every click, and the
    grid's canvas and code were ~0.7 s of the first page load and a redraw per click, for G <= 64 rows. Written
    out here rather than with ``DataFrame.to_markdown``: tabulate's column padding took ~9 ms of every click; and
    from plain lists, since building a DataFrame for it was 6% of the server's work under load (py-spy).
    """

    def escape(text: object) -> str:
        return str(text).replace("|", r"\|")

    def kind(values: Sequence) -> str:
        if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
            return "i"
        return "f" if all(isinstance(v, numbers.Real) for v in values) else "s"

    def cell(value: object, kind: str) -> str:
        return f"{value:.{digits}f}" if kind == "f" else escape(value)

    names = list(columns.keys())
    values = [list(columns[name]) for name in names]
    kinds = [kind(column) for column in values]
    lines = [
        "| " + " | ".join(escape(c).replace("_", r"\_") for c in names) + " |",
        "|" + "|".join("---:" if kind in "fi" else ":---" for kind in kinds) + "|",
    ]
    lines += ("| " + " | ".join(cell(v, kind) for v, kind in zip(row, kinds)) + " |" for row in zip(*values))
    return "\n".join(lines)


# ----------------------------------------------------------------- equations with numbers


def _unique_by_completion(trace: IterationTrace, values: list[float]) -> list[tuple[str, float]]:
    """(completion, value) for the first sample of each distinct completion: the toy has at most three."""
    seen: dict[str, float] = {}
    for text, v in zip(trace.group.texts, values):
        seen.setdefault(text, v)
    return list(seen.items())


def stage_latex(stage: int, trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """The stage's equation, then the same equation with this group's numbers."""
    s = trace.settings
    step = trace.steps[step_index]
    t = step.trace
    name = STAGES[stage]
    G = s.group_size
    if name == "Sample group":
        out = [r"o_1,\dots,o_G \sim \pi_{\theta_{old}}(\cdot \mid q)", r"\pi_\theta(w) = \frac{e^{z_w/T}}{\sum_v e^{z_v/T}}"]
        if toy is not None:
            over_t = "" if s.temperature == 1 else f"/{s.temperature:g}"
            denom = " + ".join(f"e^{{{_f(z)}{over_t}}}" for z in toy.logits_old)
            parts = [
                rf"\pi_\theta({_tex_word(w)}) = \frac{{e^{{{_f(z)}{over_t}}}}}{{{denom}}} = {_f(p)}"
                for w, z, p in zip(toy.words[:1], toy.logits_old[:1], toy.probs_old[:1])
            ]
            # two to a line: three reached the card's edge on a 1280-px projector
            out += parts + _rows([rf"\pi_\theta({_tex_word(w)}) = {_f(p)}" for w, p in zip(toy.words, toy.probs_old)], 2)
        return out
    if name == "Score":
        rewards = r",\ ".join(rf"r({_tex_word(w)}) = {_f(r, 2)}" for w, r in _unique_by_completion(trace, trace.rewards.tolist()))
        return [r"r_i = r(q, o_i)", rewards]
    if name == "Advantages":
        mean = float(trace.group_mean[0])
        sigma = float(trace.group_std[0])
        if s.scale_rewards == "group":
            general = r"A_i = \frac{r_i - \bar r}{\sigma_g + 10^{-4}},\quad \sigma_g = \sqrt{\tfrac{1}{G-1}\textstyle\sum_j (r_j-\bar r)^2}"
            den = sigma
        elif s.scale_rewards == "batch":
            general = r"A_i = \frac{r_i - \bar r}{\sigma_{batch} + 10^{-4}}"
            den = float(trace.batch_std)
        else:
            general = r"A_i = r_i - \bar r \quad\text{(Dr. GRPO: no division by }\sigma\text{)}"
            den = None
        stats = rf"\bar r = \frac{{{_f(float(trace.rewards[:G].sum()))}}}{{{G}}} = {_f(mean)},\qquad \sigma_g = {_f(sigma)}"
        examples = []
        for w, r in _unique_by_completion(trace, trace.rewards.tolist()):
            a = float(trace.advantages[trace.group.texts.index(w)])
            if den is None:
                examples.append(rf"A({_tex_word(w)}) = {_f(r, 2)} - {_f(mean)} = {_f(a)}")
            else:
                examples.append(rf"A({_tex_word(w)}) = \frac{{{_f(r, 2)} - {_f(mean)}}}{{{_f(den)} + 0.0001}} = {_f(a)}")
        return [general, stats, *_rows(examples, 1)]
    if name == "Ratios":
        general = r"w_{i,t} = \frac{\pi_\theta(o_{i,t}\mid q, o_{i,<t})}{\pi_{\theta_{old}}(o_{i,t}\mid q, o_{i,<t})}"
        if s.importance_sampling_level == "sequence":
            general = r"w_i = \exp\Big(\frac{1}{|o_i|}\sum_t \log\frac{\pi_\theta(o_{i,t})}{\pi_{old}(o_{i,t})}\Big)\quad\text{(GSPO)}"
        ex = []
        for w, _ in _unique_by_completion(trace, trace.rewards.tolist())[:3]:
            i = trace.group.texts.index(w)
            p_new = float(step.logp[i].sum().exp())
            p_old = float(trace.old_logp[i].sum().exp())
            ex.append(rf"w({_tex_word(w)}) = \frac{{{_f(p_new)}}}{{{_f(p_old)}}} = {_f(float(t.ratio[i, 0]))}")
        return [general, rf"\text{{inner step }} {step_index + 1}\text{{ of }}\mu = {trace.mu}:", *_rows(ex, 1)]
    if name == "Clip":
        general = r"P_{i,t} = -\min\big(\underbrace{w_{i,t} A_i}_{\text{unclipped}},\ \underbrace{\tilde w_{i,t} A_i}_{\text{clipped}}\big)"
        band = rf"\tilde w = \mathrm{{clip}}(w,\ 1 - {s.epsilon_low:g},\ 1 + {s.epsilon_high:g}) \in [{1 - s.epsilon_low:.4g},\ {1 + s.epsilon_high:.4g}]"
        ex = []
        for w, _ in _unique_by_completion(trace, trace.rewards.tolist())[:3]:
            i = trace.group.texts.index(w)
            ex.append(
                rf"P({_tex_word(w)}) = -\min({_f(float(t.unclipped_objective[i, 0]))},\ {_f(float(t.clipped_objective[i, 0]))})"
                rf" = {_f(float(t.policy_loss_per_token[i, 0]))}"
            )
        return [general, band, *_rows(ex, 1)]
    if name == "KL":
        general = r"\mathrm{KL}_{i,t} = \frac{\pi_{ref}(o_{i,t})}{\pi_\theta(o_{i,t})} - \log\frac{\pi_{ref}(o_{i,t})}{\pi_\theta(o_{i,t})} - 1 \quad (k_3 \ge 0)"
        if s.kl_ratio_correction:
            general += r",\quad \text{then} \times w_{i,t}"
        if t.kl is None:
            return [general, r"\beta = 0:\ \text{no KL term in the loss (no reference model needed)}"]
        ex = []
        for w, _ in _unique_by_completion(trace, trace.rewards.tolist())[:3]:
            i = trace.group.texts.index(w)
            x = float((trace.ref_logp[i, 0] - step.logp[i, 0]).exp())
            ex.append(rf"\mathrm{{KL}}({_tex_word(w)}) = {_f(x)} - \log {_f(x)} - 1 = {_f(float(t.kl[i, 0]), 6)}")
        return [general, *_rows(ex, 1), rf"\beta = {s.beta:g}"]
    if name == "Loss & gradient":
        if s.loss_type == "grpo":
            general = r"\mathcal{L} = \frac{1}{G}\sum_{i=1}^{G} \frac{1}{|o_i|}\sum_{t=1}^{|o_i|} \big(P_{i,t} + \beta\,\mathrm{KL}_{i,t}\big)"
        elif s.loss_type in ("bnpo", "dapo"):
            general = r"\mathcal{L} = \frac{1}{\sum_i |o_i|}\sum_{i=1}^{G}\sum_{t=1}^{|o_i|} \big(P_{i,t} + \beta\,\mathrm{KL}_{i,t}\big)"
        else:
            general = r"\mathcal{L} = \frac{1}{G\cdot L_{max}}\sum_{i=1}^{G}\sum_{t=1}^{|o_i|} \big(P_{i,t} + \beta\,\mathrm{KL}_{i,t}\big)"
        out = [general, rf"\mathcal{{L}} = {_f(float(t.loss), 6)}"]
        if toy is not None:
            # One token per completion: every loss type is the plain mean of the G per-sample losses.
            total = _f(float((t.per_token_loss * t.mask).sum()))
            out[1] = rf"\mathcal{{L}} = \frac{{{total}}}{{{trace.group.batch_size}}} = {_f(float(t.loss), 6)}"
            g = toy.grad_logits[step_index]
            out.append(
                r"\frac{\partial\mathcal{L}}{\partial z_k} = \frac{1}{T}\sum_i \frac{\partial\mathcal{L}}{\partial \log\pi_\theta(o_i)}\big(\mathbb{1}[o_i = k] - \pi_\theta(k)\big)"
            )
            out += _rows([rf"\frac{{\partial\mathcal{{L}}}}{{\partial z_{{{_tex_word(w)}}}}} = {_f(float(v))}" for w, v in zip(toy.words, g)], 2)
        return out
    # Update
    out = [rf"\theta \leftarrow \theta - \eta\,\nabla_\theta\mathcal{{L}}\quad(\eta = {s.lr:g},\ \mu = {trace.mu})"]
    if toy is not None:
        z0, z1 = toy.logits_per_step[step_index], toy.logits_per_step[step_index + 1]
        g = toy.grad_logits[step_index]
        if trace.mu > 1:  # the logits' lines are one inner step, the probabilities' the whole iteration: say which
            last = " (the last)" if step_index == trace.mu - 1 else ""
            out.append(rf"\text{{inner step {step_index + 1} of }}\mu = {trace.mu}\text{{{last}:}}")
        out += _rows([
            rf"z_{{{_tex_word(w)}}}: {_f(float(a))} - {s.lr:g}\cdot{_p(float(d))} = {_f(float(b))}" for w, a, d, b in zip(toy.words, z0, g, z1)
        ], 1)
        if trace.mu > 1:
            out.append(rf"\text{{over all {trace.mu} inner steps:}}")
        out += _rows([  # one word a line: three to a line ran past a half-width card
            rf"\pi({_tex_word(w)}): {_f(float(a), 3)} \to {_f(float(b), 3)}" for w, a, b in zip(toy.words, toy.probs_old, toy.probs_after)
        ], 1)
    return out


def _kl_moment(trace: IterationTrace, step_index: int) -> str:
    """Where π_θ stands against π_ref at this inner step, in one sentence true for the screen."""
    if torch.equal(trace.steps[step_index].logp, trace.ref_logp):
        return ("π_θ is still π_ref here, so every KL term is 0. It grows once the policy moves: from inner step 2 "
                "with μ > 1, or at the next iteration.")
    if step_index > 0:
        return f"After {count(step_index, 'inner step')} on this group π_θ has moved away from π_ref, and the KL term pulls it back."
    return "On the first inner step π_θ = π_old, which has moved away from π_ref in earlier iterations."


def gradient_norm_text(step: InnerStep) -> str | None:
    """What max_grad_norm did to this inner step's gradient, or None when no limit is set."""
    if step.max_grad_norm <= 0:
        return None
    if step.grad_norm_was_clipped:
        return (f"The gradient's norm is {step.grad_norm:.4g}, above max_grad_norm = {step.max_grad_norm:g}: "
                f"before the step it is rescaled to norm {step.grad_norm_clipped:.4g} (same direction, shorter).")
    return (f"The gradient's norm is {step.grad_norm:.4g}, within max_grad_norm = {step.max_grad_norm:g}: "
            "the step uses it unchanged.")


def zero_loss_text(trace: IterationTrace, step_index: int) -> str | None:
    """Why the loss reads 0 while the gradient does not, when that is what the screen shows; else None."""
    step = trace.steps[step_index]
    if step_index > 0 or abs(float(step.trace.loss)) >= 5e-7 or float(step.grad_logp.abs().max()) < 1e-9:
        return None
    return ("**L is 0 but the gradient is not:** on the first inner step every ratio is 1, so L's value is minus the "
            "mean advantage, and the advantages cancel within the group. Its gradient does not cancel: each sample's "
            "term is pushed by its own A_i.")


def pushed_down_text(trace: IterationTrace, toy: ToyNumbers) -> str | None:
    """For each word with A > 0 whose logit an inner step lowered: at which steps, and why. None when there is none."""
    s = trace.settings
    texts = trace.group.texts
    sentences = []
    for j, word in enumerate(toy.words):
        rows = [i for i, text in enumerate(texts) if text == word]
        if not rows or float(trace.advantages[rows[0]]) <= 0:
            continue
        down = [k for k, g in enumerate(toy.grad_logits) if float(g[j]) > 0]
        if not down:
            continue
        steps = [str(k + 1) for k in down]
        where = ("inner step " + steps[0] if len(steps) == 1
                 else "inner steps " + ", ".join(steps[:-1]) + " and " + steps[-1])
        clipped = [all(bool(trace.steps[k].trace.is_high_clipped[i].all()) for i in rows) for k in down]
        others = ("the other samples' terms through the softmax"
                  + (" and the KL pull toward π_ref" if s.beta > 0 else ""))
        if all(clipped):
            own = {1: "its only sample is clipped (w > 1 + ε_high), so it carries",
                   2: "both its samples are clipped (w > 1 + ε_high), so they carry"}.get(
                len(rows), f"all {len(rows)} of its samples are clipped (w > 1 + ε_high), so they carry")
            sentences.append(f"At {where} **{word}** (A > 0) is pushed down: {own} no gradient, and only {others} "
                             "act on its logit.")
        else:
            sentences.append(f"At {where} **{word}** (A > 0) is pushed down: its own samples push it up, but "
                             f"{others} push harder.")
    return " ".join(sentences) or None


# A stage left empty by mu = 1 offers one click: this many inner updates on the same group. At the default
# settings (seed 0, iteration 1) the second step moves the ratios (up to 0.495 from 1), clips 7 of 8 samples and gives
# KL > 0 (up to 0.092).
SHOW_MU = 2
SHOW_MU_LABEL = f"Show with μ = {SHOW_MU} ({SHOW_MU} updates on this group)"


def empty_until_more_updates(stage: int, trace: IterationTrace, step_index: int) -> bool:
    """True when the stage has nothing to show only because μ = 1: every ratio 1, nothing clipped, or (KL)
    π_θ = π_ref."""
    if trace.mu > 1:
        return False
    name = STAGES[stage]
    if name in ("Ratios", "Clip"):
        return True
    return name == "KL" and torch.equal(trace.steps[step_index].logp, trace.ref_logp)


def stage_text(stage: int, trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """One or two plain sentences on what the stage does and why, for this group (``toy``: the toy's numbers,
    for the sentences about its logits)."""
    s = trace.settings
    t = trace.steps[step_index].trace
    name = STAGES[stage]
    G = s.group_size
    if name == "Sample group":
        counts = pd.Series(trace.group.texts).value_counts()
        made = ", ".join(f"**{w}** ×{n}" for w, n in counts.items())
        return (
            f"GRPO asks the current policy for **G = {G}** completions of the same prompt. "
            f"This group drew {made}. The policy that sampled them is frozen as π_old for this iteration."
        )
    if name == "Score":
        return (
            "Each completion gets one scalar reward from the reward function: no learned critic, no per-token reward. "
            f"Here the group's mean reward is {float(trace.group_mean[0]):.4f}."
        )
    if name == "Advantages":
        if trace.all_rewards_equal:
            return (
                "**Every reward in the group is equal, so σ = 0 and every advantage is 0.** "
                "No sample is better than its group, so this group gives **no policy gradient**; "
                "only the KL term (if β > 0) still acts. Press *New group* to draw another."
            )
        scale = {
            "group": "and divided by the group's standard deviation",
            "batch": "and divided by the whole batch's standard deviation",
            "none": "but not divided by any standard deviation (Dr. GRPO)",
        }[s.scale_rewards]
        return (
            f"The baseline is the group itself: each reward minus the group mean, {scale}. "
            "Better-than-average completions get A > 0 and will be made more likely; worse ones get A < 0."
        )
    if name == "Ratios":
        if trace.mu == 1 or step_index == 0:
            return (
                "At the first update on a fresh group, π_θ **is** π_old (old_logp is logp detached), "
                "so **every ratio is exactly 1** and the clip cannot bite. "
                + ("Set **μ ≥ 2** to take several steps on the same group and watch the ratios move." if trace.mu == 1
                   else "Move the inner-step slider to a later step to see them move.")
            )
        moved = float((t.ratio - 1).abs().max())
        return (
            f"Inner step {step_index + 1} of μ = {trace.mu}: the policy has already been updated {count(step_index, 'time')} on this same "
            f"group, so the ratios have moved away from 1 (by up to {moved:.4f})."
        )
    if name == "Clip":
        n_low, n_high = int(t.is_low_clipped.sum()), int(t.is_high_clipped.sum())
        if n_low + n_high == 0:
            why = ("The clip only bites after the policy has moved: "
                   + ("with μ = 1 every ratio is 1." if trace.mu == 1 else "on inner step 1 every ratio is 1.")
                   if step_index == 0 else
                   f"The policy has moved (ratios up to {float((t.ratio - 1).abs().max()):.4f} from 1), "
                   "but not past the band's edge on the side its advantage pushes toward.")
            return (
                f"No sample is outside the band [{1 - s.epsilon_low:.4g}, {1 + s.epsilon_high:.4g}] on the side its advantage "
                f"pushes toward, so every sample keeps its full gradient. {why}"
            )
        return (
            f"{count(n_high, 'sample')} with A > 0 {'has' if n_high == 1 else 'have'} w > 1 + ε_high and {n_low} with A < 0 "
            f"{'has' if n_low == 1 else 'have'} w < 1 − ε_low: "
            "for them the min picks the flat clipped term, which carries **no gradient**. PPO-style clipping stops the "
            "policy from moving too far on one group, but only on the side the advantage wants to push."
        )
    if name == "KL":
        if t.kl is None:
            return "β = 0, so there is no KL term: nothing holds the policy near the reference except the clip (TRL's default)."
        return (
            f"GRPO adds β·KL straight to the **loss** (β = {s.beta:g}), using the k3 estimator, which is never negative. "
            "It pulls π_θ back toward the frozen reference π_ref. "
            + _kl_moment(trace, step_index)
        )
    if name == "Loss & gradient":
        if s.loss_type == "grpo":
            agg = "averages each completion's tokens, then the completions"
        elif s.loss_type in ("bnpo", "dapo"):
            agg = "averages over all tokens of the batch at once"
        else:
            agg = (f"sums all tokens and divides by a constant, B × max completion length "
                   f"= {trace.group.batch_size} × {trace.max_completion_length}")
        clip = gradient_norm_text(trace.steps[step_index])
        zero = zero_loss_text(trace, step_index)
        return (
            f"The loss ({s.loss_type}) {agg}; for the toy every completion is one token, so all loss types agree here. "
            "Gradient descent moves each logit against ∂L/∂z: green words are pushed up, red ones down."
            + ("" if zero is None else " " + zero)
            + ("" if clip is None else " " + clip)
        )
    text = (f"The optimizer takes μ = {trace.mu} gradient {'step' if trace.mu == 1 else 'steps'} of size "
            f"η = {s.lr:g} on this one group. ")
    if trace.mu > 1:
        text += (f"The logits' lines show inner step {step_index + 1} of {trace.mu}"
                 + (" (the last)" if step_index == trace.mu - 1 else "") + f"; π's lines sum up all {trace.mu}. ")
        pushed = None if toy is None else pushed_down_text(trace, toy)
        if pushed is not None:
            text += pushed + " "
    return text + "Press **Next iteration** to keep the new policy and sample a fresh group from it."


# ----------------------------------------------------------------- the formula card, tour and glossary

# The GRPO objective's pieces and the box around a stage's terms are formulas.GRPO_PIECES and formulas.boxed.
STAGE_TERMS = {
    "Sample group": ("expectation",),
    "Score": ("advantage",),
    "Advantages": ("advantage",),
    "Ratios": ("ratio",),
    "Clip": ("clip", "min"),
    "KL": ("kl",),
    "Loss & gradient": ("aggregate",),
    "Update": (),
}


def objective_latex(stage: int) -> str:
    r"""J_GRPO(θ) with the terms the stage computes boxed in colour (J is maximized; the loss is -J)."""
    objective = formulas.grpo_objective(STAGE_TERMS[STAGES[stage]])
    if STAGES[stage] == "Update":  # the step on a line of its own: beside the objective it ran past a 1280-px screen
        update = formulas.boxed(r"\theta \leftarrow \theta + \eta\,\nabla_\theta \mathcal{J}")
        objective = rf"\begin{{gathered}}{objective}\\[0.3em]{update}\end{{gathered}}"
    return objective


SYMBOLS: dict[str, str] = {
    "q": "the prompt (here the two-word state “The cat”)",
    "o_i": "the i-th sampled completion of the group (here one word)",
    "G": "group size: completions sampled per prompt",
    "π_θ": "the policy being trained (softmax of the logits z / T)",
    "π_old (π_θold)": "the policy that sampled the group, frozen during the μ inner updates",
    "π_ref": "the frozen reference policy (the starting logits) the KL term pulls toward",
    "r_i": "the scalar reward of completion i",
    "r̄, σ_g": "mean and Bessel standard deviation (divide by G − 1) of the group's rewards "
                "(μ is the number of updates)",
    "Â_i,t (A_i)": "advantage: (r_i − r̄) / (σ_g + 1e-4), the same for every token of completion i",
    "w_i,t": "probability ratio π_θ(o_i,t) / π_old(o_i,t); exactly 1 on the first inner update",
    "ε_low, ε_high": "clip band half-widths: w is clipped to [1 − ε_low, 1 + ε_high]",
    "β": "weight of the KL penalty in the loss",
    "k3": "KL estimator π_ref/π_θ − log(π_ref/π_θ) − 1: never negative, unbiased",
    "μ (mu)": "number of gradient steps taken on one sampled group",
    "η": "learning rate (plain SGD on the toy's three logits)",
    "T": "sampling temperature: logits are divided by T for sampling and every log-prob",
    "z": "the toy's three logits, its only parameters",
    "𝓛": "the loss gradient descent minimizes, −J",
}

TOUR: dict[str, tuple[str, str, str]] = {
    "Sample group": (
        "Raise the temperature T to 3 and press New group a few times: the group gets more varied.",
        "Why does GRPO sample several completions of the same prompt instead of one?",
        "Its baseline is the group itself: each completion is judged against the others' rewards, so no value network "
        "is needed. One completion would have nothing to be compared with (G must be at least 2).",
    ),
    "Score": (
        "Set the reward of “slept” to 1 in the sidebar, the same as “sat”.",
        "Does GRPO care about the absolute value of a reward?",
        "Only through differences within the group: adding the same constant to every reward changes nothing, because "
        "the group mean is subtracted next.",
    ),
    "Advantages": (
        "Set all three rewards equal and watch every advantage become 0.",
        "A group where every sample got reward 1: what does it teach the policy?",
        "Nothing: σ = 0, every advantage is 0, so there is no policy gradient from it (only the KL term acts). "
        "DAPO's dynamic sampling drops such groups for that reason.",
    ),
    "Ratios": (
        "Set μ to 4 and move the inner-step slider: the ratios leave 1 after the first update.",
        "With μ = 1, why is the ratio always exactly 1?",
        "π_old is the policy that sampled the group, and with one update the policy has not moved yet when the loss "
        "is computed: old_logp is logp detached, so w = exp(0) = 1.",
    ),
    "Clip": (
        "With μ = 4, set ε low and ε high to 0.05 and count the ✖ markers.",
        "A sample with A < 0 has w = 1.5. Is it clipped?",
        "No. The clip only removes the gradient on the side the advantage pushes toward: for A < 0 that is w < 1 − ε. "
        "At w = 1.5 the min picks the unclipped w·A term, so the sample is still pushed down.",
    ),
    "KL": (
        "Set μ to 2 (π_θ leaves π_ref at inner step 2), then raise β to 0.5 and watch the β·k3 column of the "
        "table grow.",
        "Can the k3 estimate of one sample be negative?",
        "No: k3 = x − log x − 1 ≥ 0 for every x > 0, with equality only when π_θ = π_ref. (k1 = log π_θ − log π_ref "
        "can be negative for a single sample.)",
    ),
    "Loss & gradient": (
        "With μ = 1, halve the learning rate η (1 → 0.5): these gradient bars do not change; at Update every logit "
        "moves half as far.",
        "Why does the toy's gradient on a logit involve every sample, not just the ones that chose that word?",
        "Softmax couples the logits: ∂log π(o)/∂z_k = 1[o = k] − π(k), so pushing one word up pushes every other "
        "word down in proportion to its probability.",
    ),
    "Update": (
        "With the default settings, press Next iteration and step back to Update, a few times: “sat” takes over, "
        "and “slept” rises, then falls. The Training page runs a hundred iterations at once.",
        "Why does the probability of “slept” (reward 0.5) first rise and then fall?",
        "Its advantage depends on the group: while “barked” (0) dominates, 0.5 is above the mean. Once most samples "
        "are “sat” (1), 0.5 is below the mean and its advantage turns negative.",
    ),
}

TRAINING_TOUR: tuple[str, str, str] = (
    "Set Compare to beta, run b to 0.5 and Iterations to 200, press ⏩ Run to 200, and watch the KL chart.",
    "GRPO and PPO both end on “sat”: which one moved its probability faster, and what in the settings decides it?",
    "Compare the iteration at which each curve passes 0.9 (PPO's first update is larger here because it takes "
    "several epochs on each batch). The learning rates, μ against the PPO epochs, and β decide it; the clip "
    "fractions show how often each was held back.",
)
