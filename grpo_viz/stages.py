"""The registry of stages: one record per stage holding everything that stage shows.

A GRPO iteration is revealed in the stages of ``GRPO_STAGES`` (Step through, and the toy beside the language model);
the PPO vs GRPO page steps through ``COMPARE_STAGES``. Each ``Stage`` record holds the stage's name (and the short name
of a presentation's one-row stage bar), the terms of the GRPO objective it boxes, the toy's chart, the equation with
this group's numbers, the sentences, the try-this and check-yourself, the per-sample table's columns and the language
model's per-token quantity. ``explain``, ``toy_view`` and ``lm_view`` look stages up here, so adding a stage is its
functions and one record below. Plain Python, torch, pandas and plotly: no Streamlit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
import torch

from . import charts, formulas
from .objectives import kl_estimate
from .policies.toy import probs_from_logits
from .stepper import STAGES, InnerStep, IterationTrace

if TYPE_CHECKING:
    from .explain import ToyNumbers
    from .ppo import PPOIterationTrace
    from .tasks import Task

# (trace, toy numbers, inner step, words, state, narrow) -> the toy's figure for the stage
ToyChart = Callable[["IterationTrace", "ToyNumbers", int, tuple, str, bool], go.Figure]
# (trace, inner step, toy numbers or None) -> the equation, then the same with this group's numbers
Equations = Callable[["IterationTrace", int, "ToyNumbers | None"], list]
# (trace, inner step, toy numbers or None) -> one or two sentences true for this group
Sentences = Callable[["IterationTrace", int, "ToyNumbers | None"], str]
# (trace, inner step, log-probs after the update or None) -> per-token values, hover values, colour range
TokenValues = tuple[list, dict, "tuple[float, float] | None"]
TokenValuesFn = Callable[["IterationTrace", int, "torch.Tensor | None"], TokenValues]


@dataclass(frozen=True)
class Stage:
    """Everything one stage of a GRPO iteration shows, on every page that steps through it."""

    name: str  # the stage bar's name and the card's title
    short: str  # the name on presentation mode's one-row stage bar
    terms: tuple[str, ...]  # the pieces of formulas.grpo_objective the stage boxes
    chart: ToyChart  # the toy's figure
    latex: Equations  # the equation with this group's numbers
    text: Sentences  # what the stage does and why, for this group
    try_this: str
    question: str  # check yourself
    answer: str
    columns: tuple[str, ...]  # the per-sample table's columns this stage adds (explain.sample_columns)
    lm_quantity: str  # what the language model's tokens are coloured by
    lm_center: float | None  # the value drawn white
    lm_tokens: TokenValuesFn  # that quantity per token
    lm_title: str  # the token chart's title and subtitle
    lm_subtitle: str | None
    lm_columns: tuple[str, ...]  # the language model's per-completion table columns this stage adds
    lm_try_this: Callable[[Task], str] | None = None  # the try-this when the model's task ignores the word rewards
    objective_below: str | None = None  # a boxed equation on its own line under the objective
    empty_with_one_update: Callable[[IterationTrace, int], bool] | None = None  # nothing to show at mu = 1
    per_inner_step: bool = False  # its numbers differ between the mu inner updates: the page offers a step slider

    @property
    def tour(self) -> tuple[str, str, str]:
        """(try this, check-yourself question, its answer)."""
        return (self.try_this, self.question, self.answer)


# (PPO trace, words, reference logits) -> PPO's equation, then the same with this group's numbers
PPOEquations = Callable[["PPOIterationTrace", tuple, torch.Tensor], list]
# (GRPO trace, PPO trace, words) -> what the two algorithms do differently at this stage, with numbers
Differs = Callable[["IterationTrace", "PPOIterationTrace", tuple], str]


@dataclass(frozen=True)
class CompareStage:
    """One stage of the PPO vs GRPO page: PPO's side, what differs, and the GRPO stage whose term and equations it
    shows (its chart pair is drawn by the page)."""

    name: str
    short: str
    grpo_stage: str  # the name of the GRPO stage (in GRPO_STAGES) whose boxed term and equations it shows
    ppo_latex: PPOEquations
    differs: Differs
    try_this: str
    question: str
    answer: str
    # the chart pair the page draws: "group" (one chart of the group both are given), "rewards", "kl", "baseline",
    # "advantages", "ratios", "gradients" or "update"
    charts: str = "group"
    # GRPO's inner step shown: the last where the passes over the group have moved the ratios, else the first
    # (on-policy, so both sides start from the same policy)
    grpo_last_step: bool = False
    # which of the GRPO stage's equation lines show, as [start, stop) ranges (stop None: to the end)
    grpo_lines: tuple[tuple[int, int | None], ...] = ((0, None),)
    # what one click fills when the defaults leave the stage empty: "more_updates" (μ > 1, so ratios move past the
    # clip) or "next_iteration" (π_θ leaves π_ref, so the KL is not 0); "" for none
    fill: str = ""

    @property
    def tour(self) -> tuple[str, str, str]:
        """(try this, check-yourself question, its answer)."""
        return (self.try_this, self.question, self.answer)


# ----------------------------------------------------------------- numbers and words shared by the stages

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
    """A word as LaTeX text, underscores escaped."""
    return r"\text{" + word.replace("_", r"\_") + "}"


def _unique_by_completion(trace: IterationTrace, values: list[float]) -> list[tuple[str, float]]:
    """(completion, value) for the first sample of each distinct completion: the toy has at most three."""
    seen: dict[str, float] = {}
    for text, v in zip(trace.group.texts, values):
        seen.setdefault(text, v)
    return list(seen.items())


def _first_of_each(texts: list[str]) -> list[tuple[str, int]]:
    """(completion, index) of the first sample of each distinct completion."""
    seen: dict[str, int] = {}
    for i, t in enumerate(texts):
        seen.setdefault(t, i)
    return list(seen.items())


def lengths(trace: IterationTrace) -> list[int]:
    """Each completion's number of real tokens."""
    return trace.group.mask.sum(-1).long().tolist()


def _token_rows(x: torch.Tensor, n: list[int]) -> list[list[float]]:
    """One list per completion of its real tokens' values."""
    return [x[i, :k].tolist() for i, k in enumerate(n)]


def _logp_hover(trace: IterationTrace, n: list[int]) -> dict[str, list[list[float]]]:
    """log pi_old and log pi_ref per token, for a token chart's hover."""
    return {"log π_old": _token_rows(trace.old_logp, n), "log π_ref": _token_rows(trace.ref_logp, n)}


def _per_token(x: torch.Tensor, trace: IterationTrace) -> torch.Tensor:
    """One value per completion broadcast over its tokens."""
    return x.unsqueeze(-1).expand(-1, trace.group.mask.shape[1])


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
    return ("**L is 0 but the gradient is not:** at the first inner step every ratio is 1, so L is minus the mean "
            "advantage, 0 in a group; each sample's own A_i still pushes it.")


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


# ----------------------------------------------------------------- 1. Sample group


def _sample_group_latex(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """The sampling step and the softmax, then pi_old of each word with its logits (toy)."""
    s = trace.settings
    out = [formulas.sample("G"), formulas.softmax()]
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


def _sample_group_text(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """How many completions GRPO drew, which ones, and that their policy is frozen as pi_old."""
    s = trace.settings
    G = s.group_size
    counts = pd.Series(trace.group.texts).value_counts()
    made = ", ".join(f"**{w}** ×{n}" for w, n in counts.items())
    return (
        f"GRPO asks the current policy for **G = {G}** completions of the same prompt. "
        f"This group drew {made}. The policy that sampled them is frozen as π_old for this iteration."
    )


def _sample_group_chart(trace: IterationTrace, toy: ToyNumbers, step_index: int, words: tuple[str, ...], state: str,
                        narrow: bool = False) -> go.Figure:
    """pi_theta and pi_ref over the words, and the share of the group that drew each."""
    texts = trace.group.texts
    counts = [texts.count(w) / len(texts) for w in words]
    return charts.distribution_chart(words, {"π_θ": toy.probs_old.tolist(), "π_ref": toy.probs_ref.tolist(),
                                             "group": counts}, title=f"Next word after “{state}”",
                                   subtitle="orange: the words the group drew", legend_below=narrow)


def _sample_group_tokens(trace: IterationTrace, step_index: int, logp_after: torch.Tensor | None = None) -> TokenValues:
    """pi_old of every sampled token (0 to 1), with its log-probs under pi_old and pi_ref on hover."""
    n = lengths(trace)
    return _token_rows(trace.old_logp.exp(), n), _logp_hover(trace, n), (0.0, 1.0)


# ----------------------------------------------------------------- 2. Score


def _score_latex(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """r_i = r(q, o_i), then the reward of each distinct completion."""
    rewards = r",\ ".join(rf"r({_tex_word(w)}) = {_f(r, 2)}" for w, r in _unique_by_completion(trace, trace.rewards.tolist()))
    return [formulas.REWARD, rewards]


def _score_text(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """That each completion gets one scalar reward, and the group's mean reward."""
    return (
        "Each completion gets one scalar reward from the reward function: no learned critic, no per-token reward. "
        f"Here the group's mean reward is {float(trace.group_mean[0]):.4f}."
    )


def _score_chart(trace: IterationTrace, toy: ToyNumbers, step_index: int, words: tuple[str, ...], state: str,
                 narrow: bool = False) -> go.Figure:
    """Each sample's reward, with the group's mean and spread."""
    texts = trace.group.texts
    return charts.group_reward_chart(texts, trace.rewards.tolist(), float(trace.group_mean[0]),
                                     float(trace.group_std[0]), words)


def _score_tokens(trace: IterationTrace, step_index: int, logp_after: torch.Tensor | None = None) -> TokenValues:
    """The completion's reward on each of its tokens."""
    n = lengths(trace)
    return _token_rows(_per_token(trace.rewards, trace), n), _logp_hover(trace, n), None


def _score_lm_try_this(task: Task) -> str:
    """The Score stage's try-this when the language model's task scores the answer, not the word."""
    return ("Set the reward of “slept” to 1 in the sidebar: the toy's rewards change, the language model's do not, "
            f"because its task scores the answer ({task.description}). Switch Task to the toy's text to make "
            "the word rewards drive both.")


# ----------------------------------------------------------------- 3. Advantages


def _advantages_latex(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """The advantage's formula for the reward scaling in force, the group's mean and spread, and each word's A."""
    s = trace.settings
    G = s.group_size
    mean = float(trace.group_mean[0])
    sigma = float(trace.group_std[0])
    if s.scale_rewards == "group":
        general = formulas.ADVANTAGE["group"] + r",\quad " + formulas.GROUP_STD
        den = sigma
    elif s.scale_rewards == "batch":
        general = formulas.ADVANTAGE["batch"]
        den = float(trace.batch_std)
    else:
        general = formulas.ADVANTAGE["none"] + r" \quad\text{(Dr. GRPO: no division by }\sigma\text{)}"
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


def _advantages_text(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """What the group baseline does (or why every advantage is 0 when all rewards are equal)."""
    s = trace.settings
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


def _advantages_chart(trace: IterationTrace, toy: ToyNumbers, step_index: int, words: tuple[str, ...], state: str,
                      narrow: bool = False) -> go.Figure:
    """Each sample's advantage."""
    texts = trace.group.texts
    advantages = trace.advantages.tolist()
    return charts.advantage_chart(texts, advantages)


def _advantages_tokens(trace: IterationTrace, step_index: int, logp_after: torch.Tensor | None = None) -> TokenValues:
    """The completion's advantage on each of its tokens, its reward on hover."""
    n = lengths(trace)
    return (_token_rows(_per_token(trace.advantages, trace), n),
            {"reward": _token_rows(_per_token(trace.rewards, trace), n)}, None)


def _advantages_lm_try_this(task: Task) -> str:
    """The Advantages stage's try-this when the language model's task scores the answer, not the word."""
    return ("Set all three word rewards equal: every toy advantage becomes 0. The language model's rewards come "
            "from its task: press 🎲 New group until its group is all right or all wrong, and its advantages are "
            "all 0 too.")


# ----------------------------------------------------------------- 4. Ratios


def _ratios_latex(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """The ratio's definition (token or sequence level), then w of each word at this inner step."""
    s = trace.settings
    step = trace.steps[step_index]
    t = step.trace
    general = formulas.RATIO
    if s.importance_sampling_level == "sequence":
        general = formulas.SEQUENCE_RATIO + r"\quad\text{(GSPO)}"
    ex = []
    for w, _ in _unique_by_completion(trace, trace.rewards.tolist())[:3]:
        i = trace.group.texts.index(w)
        p_new = float(step.logp[i].sum().exp())
        p_old = float(trace.old_logp[i].sum().exp())
        ex.append(rf"w({_tex_word(w)}) = \frac{{{_f(p_new)}}}{{{_f(p_old)}}} = {_f(float(t.ratio[i, 0]))}")
    return [general, rf"\text{{inner step }} {step_index + 1}\text{{ of }}\mu = {trace.mu}:", *_rows(ex, 1)]


def _ratios_text(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """Why every ratio is 1 on the first update, or how far they have moved since."""
    t = trace.steps[step_index].trace
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


def _ratios_chart(trace: IterationTrace, toy: ToyNumbers, step_index: int, words: tuple[str, ...], state: str,
                  narrow: bool = False) -> go.Figure:
    """Each sample's ratio against the clip band."""
    texts = trace.group.texts
    t = trace.steps[step_index].trace
    advantages = trace.advantages.tolist()
    clipped = (t.is_low_clipped | t.is_high_clipped)[:, 0].tolist()
    return charts.ratio_chart(texts, t.ratio[:, 0].tolist(), advantages, clipped, t.epsilon_low, t.epsilon_high,
                              value_labels=not narrow)


def _ratios_tokens(trace: IterationTrace, step_index: int, logp_after: torch.Tensor | None = None) -> TokenValues:
    """The ratio w_t of every token, log w and the log-probs on hover."""
    n = lengths(trace)
    t = trace.steps[step_index].trace
    return _token_rows(t.ratio, n), {"log w": _token_rows(t.log_ratio, n), **_logp_hover(trace, n)}, None


def _always(trace: IterationTrace, step_index: int) -> bool:
    """True: with one update on a group every ratio is 1 and nothing is clipped."""
    return True


# ----------------------------------------------------------------- 5. Clip


def _clip_latex(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """The clipped surrogate and its band, then P of each word."""
    s = trace.settings
    step = trace.steps[step_index]
    t = step.trace
    general = formulas.policy_term(annotated=True)
    band = rf"\tilde w = \mathrm{{clip}}(w,\ 1 - {s.epsilon_low:g},\ 1 + {s.epsilon_high:g}) \in [{1 - s.epsilon_low:.4g},\ {1 + s.epsilon_high:.4g}]"
    ex = []
    for w, _ in _unique_by_completion(trace, trace.rewards.tolist())[:3]:
        i = trace.group.texts.index(w)
        ex.append(
            rf"P({_tex_word(w)}) = -\min({_f(float(t.unclipped_objective[i, 0]))},\ {_f(float(t.clipped_objective[i, 0]))})"
            rf" = {_f(float(t.policy_loss_per_token[i, 0]))}"
        )
    return [general, band, *_rows(ex, 1)]


def _clip_text(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """How many samples the clip holds back on each side, or why none."""
    s = trace.settings
    t = trace.steps[step_index].trace
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


def _clip_chart(trace: IterationTrace, toy: ToyNumbers, step_index: int, words: tuple[str, ...], state: str,
                narrow: bool = False) -> go.Figure:
    """The clipped surrogate of each sample against its ratio."""
    texts = trace.group.texts
    t = trace.steps[step_index].trace
    advantages = trace.advantages.tolist()
    clipped = (t.is_low_clipped | t.is_high_clipped)[:, 0].tolist()
    return charts.surrogate_chart(texts, t.ratio[:, 0].tolist(), advantages, clipped, t.epsilon_low,
                                  t.epsilon_high)


def _clip_tokens(trace: IterationTrace, step_index: int, logp_after: torch.Tensor | None = None) -> TokenValues:
    """+1 for a token clipped on the high side, −1 on the low side, 0 otherwise; w, w̃ and A on hover."""
    n = lengths(trace)
    t = trace.steps[step_index].trace
    flag = t.is_high_clipped.double() - t.is_low_clipped.double()
    return (_token_rows(flag, n),
            {"w": _token_rows(t.ratio, n), "clipped w̃": _token_rows(t.clipped_ratio, n),
             "A": _token_rows(_per_token(t.advantages, trace), n)}, (-1.0, 1.0))


# ----------------------------------------------------------------- 6. KL


def _kl_latex(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """The k3 estimator, then KL of each word and beta (or that beta = 0 leaves no KL term)."""
    s = trace.settings
    step = trace.steps[step_index]
    t = step.trace
    general = formulas.kl_definition("k3", "(o_{i,t})") + r" \quad (k_3 \ge 0)"
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


def _kl_text(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """What beta times KL does in GRPO's loss, and where pi_theta stands against pi_ref."""
    s = trace.settings
    t = trace.steps[step_index].trace
    if t.kl is None:
        return "β = 0, so there is no KL term: nothing holds the policy near the reference except the clip (TRL's default)."
    return (
        f"GRPO adds β·KL straight to the **loss** (β = {s.beta:g}), using the k3 estimator, which is never negative. "
        "It pulls π_θ back toward the frozen reference π_ref. "
        + _kl_moment(trace, step_index)
    )


def _kl_chart(trace: IterationTrace, toy: ToyNumbers, step_index: int, words: tuple[str, ...], state: str,
              narrow: bool = False) -> go.Figure:
    """Each sample's k3 estimate and its weight beta."""
    texts = trace.group.texts
    t = trace.steps[step_index].trace
    kl = t.kl if t.kl is not None else kl_estimate(trace.steps[step_index].logp, trace.ref_logp, "k3")
    return charts.kl_chart(texts, kl[:, 0].tolist(), t.beta)


def _kl_tokens(trace: IterationTrace, step_index: int, logp_after: torch.Tensor | None = None) -> TokenValues:
    """The k3 estimate of every token (also at beta = 0, where the loss has none), beta·k3 and log-probs on hover."""
    n = lengths(trace)
    step = trace.steps[step_index]
    t = step.trace
    kl = t.kl if t.kl is not None else kl_estimate(step.logp, trace.ref_logp, "k3")
    return _token_rows(kl, n), {"β·k3": _token_rows(t.beta * kl, n), **_logp_hover(trace, n)}, None


def _still_at_reference(trace: IterationTrace, step_index: int) -> bool:
    """True when pi_theta is pi_ref at this inner step, so every KL term is 0."""
    return torch.equal(trace.steps[step_index].logp, trace.ref_logp)


# ----------------------------------------------------------------- 7. Loss & gradient


def _loss_latex(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """The loss's aggregation for the loss type in force and its value, then dL/dz of each word (toy)."""
    s = trace.settings
    step = trace.steps[step_index]
    t = step.trace
    general = formulas.loss_aggregation(s.loss_type)
    out = [general, rf"\mathcal{{L}} = {_f(float(t.loss), 6)}"]
    if toy is not None:
        # One token per completion: every loss type is the plain mean of the G per-sample losses.
        total = _f(float((t.per_token_loss * t.mask).sum()))
        # the values inline (a slash, not a fraction): one text line each, so the card fits a projected screen
        out[1] = rf"\mathcal{{L}} = {total} / {trace.group.batch_size} = {_f(float(t.loss), 6)}"
        g = toy.grad_logits[step_index]
        out.append(formulas.SOFTMAX_GRADIENT)
        out += _rows([rf"\partial\mathcal{{L}}/\partial z_{{{_tex_word(w)}}} = {_f(float(v))}"
                      for w, v in zip(toy.words, g)], 2)
    return out


def _loss_text(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """How the loss averages, which way the gradient pushes, and what the norm clip did."""
    s = trace.settings
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
        f"The loss ({s.loss_type}) {agg}; with one token a completion, all loss types agree. "
        "Descent moves each logit against ∂L/∂z: green words go up, red ones down."
        + ("" if zero is None else " " + zero)
        + ("" if clip is None else " " + clip)
    )


def _loss_chart(trace: IterationTrace, toy: ToyNumbers, step_index: int, words: tuple[str, ...], state: str,
                narrow: bool = False) -> go.Figure:
    """The gradient on each word's logit at this inner step."""
    return charts.gradient_chart(words, toy.grad_logits[step_index].tolist(),
                                 title="Which words the update pushes up or down",
                                 subtitle=f"inner step {step_index + 1} of μ = {trace.mu}")


def _loss_tokens(trace: IterationTrace, step_index: int, logp_after: torch.Tensor | None = None) -> TokenValues:
    """−dL/d log pi of every token (which tokens the update pushes up), the per-token loss on hover."""
    n = lengths(trace)
    step = trace.steps[step_index]
    return _token_rows(-step.grad_logp, n), {"per-token loss L": _token_rows(step.trace.per_token_loss, n)}, None


# ----------------------------------------------------------------- 8. Update


def _update_latex(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> list[str]:
    """The gradient step, then each logit's step and each word's probability before and after (toy)."""
    s = trace.settings
    out = [formulas.GRADIENT_STEP + rf"\quad(\eta = {s.lr:g},\ \mu = {trace.mu})"]
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


def _update_text(trace: IterationTrace, step_index: int, toy: ToyNumbers | None = None) -> str:
    """How many steps of what size the optimizer took, and which good word went down and why."""
    s = trace.settings
    text = (f"The optimizer takes μ = {trace.mu} gradient {'step' if trace.mu == 1 else 'steps'} of size "
            f"η = {s.lr:g} on this one group. ")
    if trace.mu > 1:
        text += (f"The logits' lines show inner step {step_index + 1} of {trace.mu}"
                 + (" (the last)" if step_index == trace.mu - 1 else "") + f"; π's lines sum up all {trace.mu}. ")
        pushed = None if toy is None else pushed_down_text(trace, toy)
        if pushed is not None:
            text += pushed + " "
    return text + "Press **Next iteration** to keep the new policy and sample a fresh group from it."


def _update_chart(trace: IterationTrace, toy: ToyNumbers, step_index: int, words: tuple[str, ...], state: str,
                  narrow: bool = False) -> go.Figure:
    """pi_old, pi_theta after the update, and pi_ref over the words."""
    return charts.distribution_chart(words, {"π_old": toy.probs_old.tolist(), "after update": toy.probs_after.tolist(),
                                             "π_ref": toy.probs_ref.tolist()}, title="Before and after this iteration's update",
                                   legend_below=narrow)


def _update_tokens(trace: IterationTrace, step_index: int, logp_after: torch.Tensor | None = None) -> TokenValues:
    """The change in log pi of every token over the iteration's update; pi before and after on hover."""
    if logp_after is None:
        raise ValueError("The Update stage needs the log-probs after the update.")
    n = lengths(trace)
    delta = (logp_after - trace.old_logp) * trace.group.mask
    return (_token_rows(delta, n),
            {"π_old(o_t)": _token_rows(trace.old_logp.exp(), n), "π_θ(o_t) after": _token_rows(logp_after.exp(), n)},
            None)


# ----------------------------------------------------------------- the stages of one GRPO iteration, in order
GRPO_STAGES: tuple[Stage, ...] = (
    Stage(
        name="Sample group",
        short="Sample",
        terms=("expectation",),
        chart=_sample_group_chart,
        latex=_sample_group_latex,
        text=_sample_group_text,
        try_this="Raise the temperature T to 3 and press New group a few times: the group gets more varied.",
        question="Why does GRPO sample several completions of the same prompt instead of one?",
        answer=(
            "Its baseline is the group itself: each completion is judged against the others' rewards, so no value network "
            "is needed. One completion would have nothing to be compared with (G must be at least 2)."
        ),
        columns=("sample", "completion", "π_old(o)", "π_ref(o)"),
        lm_quantity="π_old(o_t)",
        lm_center=None,
        lm_tokens=_sample_group_tokens,
        lm_title="How likely π_old made each token",
        lm_subtitle="one row per completion, one cell per token",
        lm_columns=("completion", "tokens |o|", "log π_old(o)"),
    ),
    Stage(
        name="Score",
        short="Score",
        terms=("advantage",),
        chart=_score_chart,
        latex=_score_latex,
        text=_score_text,
        try_this="Set the reward of “slept” to 1 in the sidebar, the same as “sat”.",
        question="Does GRPO care about the absolute value of a reward?",
        answer=(
            "Only through differences within the group: adding the same constant to every reward changes nothing, because "
            "the group mean is subtracted next."
        ),
        columns=("reward r",),
        lm_quantity="reward r_i",
        lm_center=None,
        lm_tokens=_score_tokens,
        lm_title="The reward of each completion",
        lm_subtitle="one number, the same on every token",
        lm_columns=("reward r", "true reward"),
        lm_try_this=_score_lm_try_this,
    ),
    Stage(
        name="Advantages",
        short="Advantage",
        terms=("advantage",),
        chart=_advantages_chart,
        latex=_advantages_latex,
        text=_advantages_text,
        try_this="Set all three rewards equal and watch every advantage become 0.",
        question="A group where every sample got reward 1: what does it teach the policy?",
        answer=(
            "Nothing: σ = 0, every advantage is 0, so there is no policy gradient from it (only the KL term acts). "
            "DAPO's dynamic sampling drops such groups for that reason."
        ),
        columns=("group mean r̄", "group std σ", "advantage A"),
        lm_quantity="A_i",
        lm_center=0.0,
        lm_tokens=_advantages_tokens,
        lm_title="GRPO's advantage A_i per completion",
        lm_subtitle="one number, broadcast over its tokens",
        lm_columns=("advantage A",),
        lm_try_this=_advantages_lm_try_this,
    ),
    Stage(
        name="Ratios",
        per_inner_step=True,
        short="Ratios",
        terms=("ratio",),
        chart=_ratios_chart,
        latex=_ratios_latex,
        text=_ratios_text,
        try_this="Set μ to 4 and move the inner-step slider: the ratios leave 1 after the first update.",
        question="With μ = 1, why is the ratio always exactly 1?",
        answer=(
            "π_old is the policy that sampled the group, and with one update the policy has not moved yet when the loss "
            "is computed: old_logp is logp detached, so w = exp(0) = 1."
        ),
        columns=("ratio w",),
        lm_quantity="w_t",
        lm_center=1.0,
        lm_tokens=_ratios_tokens,
        lm_title="Ratio w_t = π_θ / π_old per token",
        lm_subtitle="white = 1",
        lm_columns=("mean ratio w",),
        empty_with_one_update=_always,
    ),
    Stage(
        name="Clip",
        per_inner_step=True,
        short="Clip",
        terms=("clip", "min"),
        chart=_clip_chart,
        latex=_clip_latex,
        text=_clip_text,
        try_this="With μ = 4, set ε low and ε high to 0.05 and count the ✖ markers.",
        question="A sample with A < 0 has w = 1.5. Is it clipped?",
        answer=(
            "No. The clip only removes the gradient on the side the advantage pushes toward: for A < 0 that is w < 1 − ε. "
            "At w = 1.5 the min picks the unclipped w·A term, so the sample is still pushed down."
        ),
        columns=("clipped ratio w̃", "w·A", "w̃·A", "active branch", "policy loss P"),
        lm_quantity="clipped (−1 low, +1 high)",
        lm_center=0.0,
        lm_tokens=_clip_tokens,
        lm_title="Tokens whose clipped term is active",
        lm_subtitle="they carry no gradient (red: low side, green: high side)",
        lm_columns=("clipped tokens",),
        empty_with_one_update=_always,
    ),
    Stage(
        name="KL",
        per_inner_step=True,
        short="KL",
        terms=("kl",),
        chart=_kl_chart,
        latex=_kl_latex,
        text=_kl_text,
        try_this=(
            "Set μ to 2 (π_θ leaves π_ref at inner step 2), then raise β to 0.5 and watch the β·k3 column of the "
            "table grow."
        ),
        question="Can the k3 estimate of one sample be negative?",
        answer=(
            "No: k3 = x − log x − 1 ≥ 0 for every x > 0, with equality only when π_θ = π_ref. (k1 = log π_θ − log π_ref "
            "can be negative for a single sample.)"
        ),
        columns=("k3", "β·k3"),
        lm_quantity="k3_t",
        lm_center=None,
        lm_tokens=_kl_tokens,
        lm_title="k3 estimate of KL(π_θ ‖ π_ref) per token",
        lm_subtitle=None,
        lm_columns=("mean k3",),
        empty_with_one_update=_still_at_reference,
    ),
    Stage(
        name="Loss & gradient",
        per_inner_step=True,
        short="Gradient",
        terms=("aggregate",),
        chart=_loss_chart,
        latex=_loss_latex,
        text=_loss_text,
        try_this=(
            "With μ = 1, halve the learning rate η (1 → 0.5): these gradient bars do not change; at Update every logit "
            "moves half as far."
        ),
        question="Why does the toy's gradient on a logit involve every sample, not just the ones that chose that word?",
        answer=(
            "Softmax couples the logits: ∂log π(o)/∂z_k = 1[o = k] − π(k), so pushing one word up pushes every other "
            "word down in proportion to its probability."
        ),
        columns=("loss L_i", "∂L/∂log π(o)"),
        lm_quantity="−∂L/∂log π(o_t)",
        lm_center=0.0,
        lm_tokens=_loss_tokens,
        lm_title="Which tokens the update pushes",
        lm_subtitle="green: more likely, red: less likely",
        lm_columns=("mean loss L",),
    ),
    Stage(
        name="Update",
        short="Update",
        terms=(),
        chart=_update_chart,
        latex=_update_latex,
        text=_update_text,
        try_this=(
            "With the default settings, press Next iteration and step back to Update, a few times: “sat” takes over, "
            "and “slept” rises, then falls. The Training page runs a hundred iterations at once."
        ),
        question="Why does the probability of “slept” (reward 0.5) first rise and then fall?",
        answer=(
            "Its advantage depends on the group: while “barked” (0) dominates, 0.5 is above the mean. Once most samples "
            "are “sat” (1), 0.5 is below the mean and its advantage turns negative."
        ),
        columns=("π_θ(o) after",),
        lm_quantity="Δ log π(o_t)",
        lm_center=0.0,
        lm_tokens=_update_tokens,
        lm_title="Change in log π(o_t) after the update",
        lm_subtitle="this iteration's μ update step(s)",
        lm_columns=(),
        # the step on a line of its own: beside the objective it ran past a 1280-px screen
        objective_below=formulas.ASCENT_STEP,
    ),
)

# ----------------------------------------------------------------- the PPO vs GRPO page's stages


def _ppo_sample_group_latex(ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """PPO's sampling: the same samples, no group needed."""
    texts = ppo.group.texts
    return [formulas.sample("B"),
            r"\text{the same } " + str(len(texts)) + r"\text{ samples, no group structure needed}"]


def _sample_group_differs(grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """That both algorithms learn from the same samples, and why GRPO needs G >= 2 and PPO does not."""
    return ("**Nothing yet.** Both algorithms learn from these very same samples of π_old. GRPO needs G ≥ 2 "
            "samples per prompt, because its baseline is the group; PPO could learn from one sample per prompt, "
            "because its baseline is a learned value V(s).")


def _ppo_score_latex(ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """PPO's per-token reward: the score on the last token, −beta·KL on every token."""
    return [formulas.PPO_TOKEN_REWARD, r"\text{one-token toy: } " + formulas.PPO_ONE_TOKEN_REWARD]


def _score_differs(grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """One reward per completion (GRPO) against a per-token reward (PPO)."""
    return ("GRPO uses the score as it is, **one number per completion**. PPO builds a **per-token reward**: "
            "the score lands on the completion's last real token (TRL's PPOTrainer puts it one position later "
            "when the row has room, after the completion) and every token pays −β·KL. The toy has one token, "
            "so each sample's reward is r − β·KL.")


def _ppo_kl_latex(ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """PPO's KL estimator and each word's reward minus beta·KL."""
    s = ppo.settings
    texts = ppo.group.texts
    first = _first_of_each(texts)
    est = s.kl_estimator
    lines = [formulas.kl_definition(est) + rf"\quad ({est})",
             formulas.PPO_ONE_TOKEN_REWARD + rf",\quad \beta = {s.beta:g}"]
    for w, i in first:
        lines.append(rf"\mathrm{{rew}}({_tex_word(w)}) = {_f(float(ppo.rewards[i]), 2)} - {s.beta:g}\cdot({_f(float(ppo.kl[i, 0]), 5)})"
                     rf" = {_f(float(ppo.token_rewards[i, 0]), 5)}")
    return lines


def _kl_differs(grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """The KL in GRPO's loss against the KL in PPO's reward, and whether it acts on this iteration."""
    s = grpo.settings
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


def _ppo_baseline_latex(ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """PPO's baseline: the critic V(s) and its value."""
    s = ppo.settings
    v_old = float(ppo.values[0, 0])
    return [formulas.VALUE_BASELINE,
            r"\text{a learned critic: one number for the toy's one state}",
            rf"V(s) = {_f(v_old)}\quad\text{{(learning rate }}{s.value_lr:g}\text{{)}}"]


def _baseline_differs(grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """The group's mean (GRPO) against the learned critic V(s) (PPO), with their values."""
    s = grpo.settings
    mean, sigma = float(grpo.group_mean[0]), float(grpo.group_std[0])
    return (f"GRPO's baseline is **this group's own mean** r̄ = {mean:.4f} (and spread σ = {sigma:.4f}): "
            "no extra model. "
            f"PPO's baseline is **a learned critic** V(s) = {float(ppo.values[0, 0]):.4f}, a second model trained "
            f"with its own learning rate ({s.value_lr:g}); a fresh critic starts at 0 and knows nothing.")


def _ppo_advantages_latex(ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """GAE, whitening, and each word's advantage before and after."""
    texts = ppo.group.texts
    first = _first_of_each(texts)
    v_old = float(ppo.values[0, 0])
    lines = [formulas.GAE_DELTA + r",\quad " + formulas.GAE, r"\text{one token: } " + formulas.PPO_ONE_TOKEN_ADVANTAGE]
    if ppo.whitened:
        lines.append(formulas.WHITENING + r"\quad\text{(whitening)}")
    for w, i in first:
        raw, used = float(ppo.advantages_raw[i, 0]), float(ppo.advantages[i, 0])
        line = rf"A({_tex_word(w)}) = {_f(float(ppo.token_rewards[i, 0]))} - {_f(v_old)} = {_f(raw)}"
        if ppo.whitened:
            line += rf"\ \to\ {_f(used)}"
        lines.append(line)
    return lines


def _advantages_differs(grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """How far GRPO's and PPO's advantages are apart, and why."""
    s = grpo.settings
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


def _ppo_ratios_clip_latex(ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """PPO's clipped surrogate at its last epoch, each word's w and w̃."""
    texts = ppo.group.texts
    first = _first_of_each(texts)
    last = ppo.epochs[-1]
    t = last.trace
    lines = [formulas.PPO_POLICY_LOSS,
             rf"\text{{epoch }}{ppo.num_epochs}\text{{ of }}{ppo.num_epochs},\ \epsilon = {t.epsilon:g}:"]
    for w, i in first:
        lines.append(rf"w({_tex_word(w)}) = {_f(float(t.ratio[i, 0]))},\ \ \tilde w = {_f(float(t.clipped_ratio[i, 0]))}"
                     + (r"\ \text{(clipped)}" if bool(t.is_clipped[i, 0]) else ""))
    return lines


def _ratios_clip_differs(grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """How many samples each algorithm clipped at its last pass."""
    g_clip = int((grpo.steps[-1].trace.is_low_clipped | grpo.steps[-1].trace.is_high_clipped).sum())
    p_clip = int(ppo.epochs[-1].trace.is_clipped.sum())
    return (f"Same clipped surrogate, different number of passes: GRPO takes μ = {count(grpo.mu, 'step')} on the group "
            f"({count(g_clip, 'sample')} clipped at the last), PPO takes {count(ppo.num_epochs, 'epoch')} ({p_clip} "
            "clipped at the "
            "last). The first pass always has w = 1: the clip only bites once the policy has moved on this batch."
            + (" With μ = 1 GRPO's only pass is that first one, so none of its samples can be clipped."
               if grpo.mu == 1 else ""))


def _ppo_loss_latex(ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """PPO's loss (policy plus value) at its first epoch and its gradient on the logits."""
    s = ppo.settings
    e0 = ppo.epochs[0].trace
    g = ppo.epochs[0].grad_params[0]
    # short lines: the card is a half-width column, ~360 px on a 1280-px projector
    lines = [formulas.PPO_LOSS + r",\quad " + formulas.CLIPPED_VALUE,
             formulas.PPO_VALUE_LOSS,
             r"\text{first epoch:}",
             rf"L = {_f(float(e0.policy_loss), 5)} + {s.vf_coef:g}\cdot{_f(float(e0.value_loss), 5)} = {_f(float(e0.loss), 5)}"]
    lines += _rows([rf"\frac{{\partial L}}{{\partial z_{{{_tex_word(w)}}}}} = {_f(float(v))}" for w, v in zip(words, g)], 2)
    return lines


def _loss_differs(grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """That PPO's value loss does not reach the policy's logits."""
    return ("GRPO's loss carries β·KL itself; PPO's adds vf_coef × the value loss, which trains the critic and has "
            "**no gradient on the policy's logits**. The bars are the first step's gradient: with the same group "
            "and start, any difference comes from the advantages and from where the KL sits.")


def _ppo_update_latex(ppo: PPOIterationTrace, words: tuple[str, ...], ref_logits: torch.Tensor) -> list[str]:
    """PPO's update: each word's probability before and after, and the critic's V(s)."""
    s = ppo.settings
    T = s.temperature
    before = probs_from_logits(ppo.state_before[0], T)
    after = probs_from_logits(ppo.state_after[0], T)
    # one statement a line: side by side they ran past a half-width card
    return [
        formulas.PPO_UPDATE,
        rf"\eta = {s.lr:g},\ \eta_V = {s.value_lr:g},\ {ppo.num_epochs}\text{{ epochs}}",
        *_rows([rf"\pi({_tex_word(w)}): {_f(float(a), 3)} \to {_f(float(b), 3)}" for w, a, b in zip(words, before, after)], 1),
        rf"V(s): {_f(ppo.value_before)} \to {_f(ppo.value_after)}",
        rf"\text{{mean return }} R = {_f(float(ppo.returns.mean()))}",
    ]


def _update_differs(grpo: IterationTrace, ppo: PPOIterationTrace, words: tuple[str, ...]) -> str:
    """How far each algorithm moved the best word's probability in one iteration."""
    s = grpo.settings
    best = max(range(len(words)), key=lambda j: s.rewards[j])
    T = s.temperature
    g_after = float(probs_from_logits(grpo.state_after[0], T)[best])
    p_after = float(probs_from_logits(ppo.state_after[0], T)[best])
    g_before = float(probs_from_logits(grpo.state_before[0], T)[best])
    return (f"After one iteration π({words[best]}) went {g_before:.3f} → **{g_after:.3f} under GRPO** "
            f"({count(grpo.mu, 'step')}) and → **{p_after:.3f} under PPO** ({count(ppo.num_epochs, 'epoch')}). PPO also moved its "
            f"critic, V(s) {ppo.value_before:.3f} → {ppo.value_after:.3f}. Keep either update to go on, or open "
            "**Training** to run both for many iterations.")


COMPARE_STAGES: tuple[CompareStage, ...] = (
    CompareStage(
        name="Sample group",
        short="Sample",
        grpo_stage="Sample group",
        ppo_latex=_ppo_sample_group_latex,
        differs=_sample_group_differs,
        charts="group",
        try_this="Set G to 2: GRPO still works, and PPO would even work with one sample per prompt.",
        question="Why can PPO learn from a single completion per prompt while GRPO cannot?",
        answer=(
            "PPO's baseline is V(s), a learned estimate of the expected reward; GRPO's baseline is the mean of the "
            "group's own rewards, which needs at least two samples to say anything."
        ),
    ),
    CompareStage(
        name="Score",
        short="Score",
        grpo_stage="Score",
        ppo_latex=_ppo_score_latex,
        differs=_score_differs,
        charts="rewards",
        try_this="Change the reward of “slept” and watch both algorithms' rewards change the same way.",
        question="Do the two algorithms see different rewards for the same sample?",
        answer=(
            "The scalar score r_i is the same. PPO then adds a per-token KL penalty to it (next stage); GRPO keeps r_i "
            "as it is and puts the KL in the loss instead."
        ),
    ),
    CompareStage(
        name="Where the KL enters",
        short="KL",
        grpo_stage="KL",
        ppo_latex=_ppo_kl_latex,
        differs=_kl_differs,
        charts="kl", fill="next_iteration",
        try_this=(
            "Keep one update (on the last stage), come back here and raise β to 0.5: PPO's rew moves away from its r."
        ),
        question="Where does β act in PPO, and where in GRPO?",
        answer=(
            "PPO subtracts β·KL from the reward of every token, so it flows through GAE into the advantages. GRPO adds "
            "β·KL straight to the loss, beside the clipped surrogate."
        ),
    ),
    CompareStage(
        name="Baseline",
        short="Baseline",
        grpo_stage="Advantages",
        ppo_latex=_ppo_baseline_latex,
        differs=_baseline_differs,
        charts="baseline", grpo_lines=((0, 2),),
        try_this="Keep PPO's update a few times and watch V(s) approach the mean reward.",
        question="Which costs more to run at LLM scale, and why?",
        answer=(
            "PPO: its critic is a second network as large as the policy, trained alongside it. GRPO's baseline is a "
            "mean and a standard deviation over G numbers."
        ),
    ),
    CompareStage(
        name="Advantages",
        short="Advantage",
        grpo_stage="Advantages",
        ppo_latex=_ppo_advantages_latex,
        differs=_advantages_differs,
        charts="advantages", grpo_lines=((0, 1), (2, None)),
        try_this="Switch off whitening in PPO options and compare the two advantage columns.",
        question="With β = 0 and whitening on, why are PPO's advantages almost GRPO's?",
        answer=(
            "On the one-step toy, GAE gives A = r − V; whitening subtracts the batch mean, which removes V, and divides "
            "by the spread: the group normalization again (up to Bessel and the 1e-4)."
        ),
    ),
    CompareStage(
        name="Ratios & clip",
        short="Ratio & clip",
        grpo_stage="Clip",
        ppo_latex=_ppo_ratios_clip_latex,
        differs=_ratios_clip_differs,
        charts="ratios", grpo_last_step=True, fill="more_updates",
        try_this="Set μ and PPO epochs to 4 and count the clipped samples on each side.",
        question="Why does PPO clip at its first epoch less often than at its fourth?",
        answer=(
            "At the first epoch the policy is still π_old, so every ratio is 1; each epoch moves it, and samples leave "
            "the band [1 − ε, 1 + ε] in the direction their advantage pushes."
        ),
    ),
    CompareStage(
        name="Loss & gradient",
        short="Gradient",
        grpo_stage="Loss & gradient",
        ppo_latex=_ppo_loss_latex,
        differs=_loss_differs,
        charts="gradients",
        try_this="Set vf_coef to 0: the policy's gradient is unchanged, only the critic stops learning.",
        question="Does the value loss change the policy's logits?",
        answer=(
            "Not on the toy: the critic is a separate number, so the value loss only moves V. (In an LLM with a value "
            "head on a shared trunk it does reach the shared layers.)"
        ),
    ),
    CompareStage(
        name="Update",
        short="Update",
        grpo_stage="Update",
        ppo_latex=_ppo_update_latex,
        differs=_update_differs,
        charts="update", grpo_last_step=True,
        try_this=(
            "Set PPO epochs to 1 (PPO options): at iteration 1 both algorithms then take one step with almost the same "
            "advantages, and their updates agree to three decimals. PPO's extra epochs made the difference."
        ),
        question="Which update moved further from π_ref, and what held each back?",
        answer=(
            "Compare the distributions: GRPO is held by β·KL in its loss and the clip, PPO by the KL inside its reward "
            "and the clip over several epochs."
        ),
    ),
)

STAGE_NAMES = tuple(stage.name for stage in GRPO_STAGES)
GRPO_BY_NAME = {stage.name: stage for stage in GRPO_STAGES}
COMPARE_BY_NAME = {stage.name: stage for stage in COMPARE_STAGES}
# The stage bar's names in presentation mode, where the bar must stay one row at 18 px type.
SHORT_STAGE_NAMES = {stage.name: stage.short for stage in (*GRPO_STAGES, *COMPARE_STAGES)}

if STAGE_NAMES != STAGES:  # stepper keeps the names for the pages that import them from it
    raise ImportError(f"stepper.STAGES {STAGES} must list the registry's stages {STAGE_NAMES} in order.")
