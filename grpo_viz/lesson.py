"""The lesson: the GRPO story in its order, as live slides on the three-word toy.

PPO's objective; a state of two words and a softmax over three next words; advantage from a reward
model and a value model; the ratio and the clip; a frozen reference and the KL penalty weighted by
beta; GRPO's group baseline; a real language model's group, where one completion is many tokens;
reward hacking; where to go next.

Each slide is one record of :data:`SLIDES`: its title, the objective with the term in focus boxed,
and a ``build`` function that runs the core (``grpo_viz.objectives``, the stepper, the training
loop) and returns one chart and a few sentences computed from what it ran.  A slide with a live
control (epsilon, beta, G, T) takes it as a keyword argument.  No Streamlit here: the page renders
these records, and a notebook can call ``slide.build(**values)`` for the same numbers.

The slides are a registry one layer above :mod:`grpo_viz.stages`, not records inside it: a slide composes
stage records (the Tokens slide is the Advantages stage's token view, drawn by ``lm_view`` from
``stages.GRPO_BY_NAME``), so one module holding both would import itself. Adding a slide is still one record.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import plotly.graph_objects as go

from . import charts, formulas
from . import lm_view
from .config import TOY_REWARDS, TOY_START_PROBS, TOY_STATE, TOY_WORDS, Settings
from .objectives import group_advantages
from .policies.loading import LoadedModel, load_builtin, make_policy
from .policies.toy import ToyPolicy
from .stages import lengths
from .stepper import STAGES, IterationTrace, grpo_iteration, make_generator
from .tasks import ARITHMETIC, word_reward
from .hacking import overoptimization_chart, verdict as hacking_verdict
from .training import DEFAULT_ITERATIONS, TrainingRun, hacking_outcomes, hacking_sweep, proxy_rewards

MAX_WORDS = 45  # a slide is read from the back of a hall: its text stays short
LESSON_SEED = 0
CLIP_MU = 3  # inner updates on the clip slide's group: ratios leave the band by amounts the epsilon slider spans
CLIP_LR = 0.5
KL_ITERATIONS = 40
HACKING_ITERATIONS = DEFAULT_ITERATIONS
LM_PROMPT = (3, 4)  # the language-model slide's sum: its group at the lesson's seed is half right, of 2 to 6 tokens
LM_GROUP = 8
LM_NEW_TOKENS = 6  # the built-in model ends its sums within 6 tokens; the heatmap stays 6 cells wide


@dataclass(frozen=True)
class Control:
    """One live slider of a slide: ``build`` receives its value as the keyword ``name``, of ``default``'s type
    (whole numbers for G, floats for the rest: the slider takes its type from these numbers too)."""

    name: str
    label: str
    low: float
    high: float
    step: float
    default: float
    help: str

    def value(self, raw: float | None) -> float:
        """``raw`` (the default when None) as the type this control's numbers have."""
        return type(self.default)(self.default if raw is None else raw)


@dataclass
class SlideView:
    """What one slide shows: equations (the objective with its term boxed, then this slide's numbers),
    one chart, and a few sentences, every number in them from the run the slide made."""

    equations: list[str]
    figure: go.Figure
    text: str


@dataclass(frozen=True)
class Slide:
    key: str  # the URL names a slide by its number; the key names it in code and tests
    title: str  # short: the slide bar holds all of them on one line
    heading: str
    build: Callable[..., SlideView]
    control: Control | None = None
    redraws: bool = False  # its picture is a sampled group: "New group" draws another (``build`` takes ``draw``)


def word_count(text: str) -> int:
    """Words a reader reads: LaTeX-free, Markdown-free tokens."""
    return len(re.findall(r"[^\s*_]+", text))


def _p(x: float) -> str:
    return f"{x:.2f}"


def _signed(x: float) -> str:
    return f"{x:+.2f}".replace("-", "−")


# ----------------------------------------------------------------- 1. PPO's objective


def ppo_objective_slide() -> SlideView:
    figure = charts.surrogate_chart([], [], [], [], 0.2, 0.2, title="One token's term of PPO's objective",
                                    subtitle="min(w·A, clip(w)·A) against w, ε = 0.2")
    text = ("PPO improves a policy on samples it drew itself. Each token's term multiplies the ratio **w** "
            "(new probability over old) by the advantage **A**, and clips w so that one batch cannot move the "
            "policy far. The next slides build each term.")
    return SlideView([formulas.ppo_objective(), formulas.ppo_ratio()], figure, text)


# ----------------------------------------------------------------- 2. the state and the softmax


def softmax_slide(temperature: float = 1.0) -> SlideView:
    policy = ToyPolicy()
    probs = policy.probs(temperature).tolist()
    named = ", ".join(f"{w} {_p(p)}" for w, p in zip(TOY_WORDS, probs))
    effect = ("sharpens" if temperature < 1 else "flattens") + f" it (T = {temperature:g})" if temperature != 1 else \
        "leaves it as trained (T = 1)"
    text = (f"The state is “{TOY_STATE}”. The policy gives each next word a logit z, and a softmax turns them into "
            f"probabilities: {named}. Dividing by a temperature {effect}. The wrong word, barked, starts most likely.")
    logits = ", ".join(f"{float(z):.3f}" for z in policy.logits.detach())
    equations = [formulas.ppo_ratio({"policy"}), formulas.SOFTMAX, rf"z = ({logits}) = \ln({', '.join(map(str, TOY_START_PROBS))})"]
    figure = charts.distribution_chart(TOY_WORDS, {"π_θ": probs}, title=f"π_θ(next word | “{TOY_STATE}”)")
    return SlideView(equations, figure, text)


# ----------------------------------------------------------------- 3. advantage = reward - value


def word_advantage_chart(words, rewards, value: float, title: str = "Reward, value and advantage") -> go.Figure:
    """A bar per word at its reward r(w), the value V as a line, and A = r - V above each bar."""
    colors = charts.word_colors(words)
    bar = charts._bar("reward r(w)", words, rewards, [colors[w] for w in words],
                      [f"A = {_signed(r - value)}" for r in rewards], hover="%{x}: r = %{y:.4f}")
    return charts._figure([bar], title, showlegend=False, shapes=[charts._hline(value, width=2)],
                          subtitle=f"line: the value model's V = {value:.2f}; above each bar: A = r − V",
                          xaxis=dict(type="category"), yaxis=dict(title="reward", range=[0, 1.25]))


def advantage_slide() -> SlideView:
    probs = ToyPolicy().probs().tolist()
    value = sum(p * r for p, r in zip(probs, TOY_REWARDS))  # a value model that has learned E_pi[r]
    adv = [r - value for r in TOY_REWARDS]
    text = (f"A reward model scores each word (sat {TOY_REWARDS[0]:g}, slept {TOY_REWARDS[1]:g}, barked "
            f"{TOY_REWARDS[2]:g}); a value model predicts the score expected in this state, V = {value:.2f}. "
            f"A = r − V: positive encourages a word (sat {_signed(adv[0])}), negative discourages it "
            f"(barked {_signed(adv[2])}).")
    numbers = [rf"V = " + " + ".join(f"{p:.1f}\\cdot {r:g}" for p, r in zip(probs, TOY_REWARDS)) + rf" = {value:.2f}",
               rf"A(\text{{sat}}) = {TOY_REWARDS[0]:g} - {value:.2f} = {_signed(adv[0])}".replace("−", "-")]
    return SlideView([formulas.ppo_objective({"advantage"}), formulas.ppo_reward({"reward"}),
                      formulas.ppo_advantage({"value"}), *numbers],
                     word_advantage_chart(TOY_WORDS, TOY_REWARDS, value), text)


# ----------------------------------------------------------------- 4. the ratio and the clip


@functools.lru_cache(maxsize=64)
def clip_iteration(epsilon: float, draw: int = 0):
    """The toy's first iteration with mu = CLIP_MU SGD updates (step CLIP_LR) on one group, band 1 +- epsilon, no KL."""
    settings = Settings(mu=CLIP_MU, lr=CLIP_LR, epsilon_low=epsilon, epsilon_high=epsilon, beta=0.0, seed=LESSON_SEED)
    return grpo_iteration(ToyPolicy(), word_reward(TOY_WORDS, settings.rewards), settings,
                          make_generator(settings.seed, 0, draw))


def clip_slide(epsilon: float = 0.2, draw: int = 0) -> SlideView:
    trace = clip_iteration(float(epsilon), draw)
    last = trace.steps[-1].trace
    clipped = (last.is_low_clipped | last.is_high_clipped)[:, 0].tolist()
    n = sum(clipped)
    G = trace.group.batch_size
    if n:
        outcome = f"After {CLIP_MU - 1} updates on one group, {n} of {G} samples are clipped."
    else:
        outcome = "No sample is past the band yet: narrow ε."
    text = (f"w = π_θ/π_old says how far the updates moved a word. Inside [1−ε, 1+ε] the term follows w·A; past "
            f"it, where A pushes, it is flat: no gradient. {outcome}")
    figure = charts.surrogate_chart(trace.group.texts, last.ratio[:, 0].tolist(), last.advantages.tolist(), clipped,
                                    last.epsilon_low, last.epsilon_high,
                                    title=f"The group at update {CLIP_MU} of {CLIP_MU}, ε = {epsilon:g}")
    return SlideView([formulas.ppo_objective({"clip", "ratio"}),
                      rf"1-\epsilon = {1 - epsilon:.2f},\quad 1+\epsilon = {1 + epsilon:.2f}",
                      rf"\mu = {CLIP_MU} \text{{ updates of step }} \eta = {CLIP_LR:g}"], figure, text)


# ----------------------------------------------------------------- 5. the reference and the KL penalty


@functools.lru_cache(maxsize=64)
def trained_probs(algorithm: str, beta: float, iterations: int, proxy: bool = False) -> tuple[dict, ...]:
    """The toy's history rows after ``iterations`` of ``algorithm`` at this beta (proxy: the hackable reward)."""
    settings = Settings(beta=float(beta), seed=LESSON_SEED)
    run = TrainingRun(algorithm, settings, train_rewards=proxy_rewards(settings.rewards) if proxy else None)
    run.run(iterations)
    return tuple(run.history)


def kl_slide(beta: float = 0.5) -> SlideView:
    held, free = trained_probs("PPO", beta, KL_ITERATIONS)[-1], trained_probs("PPO", 0.0, KL_ITERATIONS)[-1]
    ref = ToyPolicy().probs().tolist()
    series = {f"π_θ, β = {beta:g}": [held[f"p_{w}"] for w in TOY_WORDS],
              "π_θ, β = 0": [free[f"p_{w}"] for w in TOY_WORDS], "π_ref": ref}
    text = (f"π_ref is a frozen copy of the starting policy. Each token's reward pays β·log(π_θ/π_ref), so drifting "
            f"costs reward. After {KL_ITERATIONS} PPO iterations with β = {beta:g}: KL = {held['kl']:.3f}, π(sat) = "
            f"{_p(held['p_sat'])}; with β = 0: KL = {free['kl']:.3f}, π(sat) = {_p(free['p_sat'])}.")
    figure = charts.distribution_chart(TOY_WORDS, series, title=f"After {KL_ITERATIONS} PPO iterations", labelled=1)
    return SlideView([formulas.ppo_objective({"advantage"}), formulas.ppo_reward({"kl"}), formulas.ppo_advantage()],
                     figure, text)


# ----------------------------------------------------------------- 6. GRPO's group baseline


def grpo_slide(group_size: int = 8, draw: int = 0) -> SlideView:
    G = int(group_size)
    policy = ToyPolicy()
    group = policy.sample_group(None, G, make_generator(LESSON_SEED, 0, draw), 1.0)
    rewards = word_reward(TOY_WORDS, TOY_REWARDS)(group)
    mean, std = float(rewards.mean()), float(rewards.std())
    adv = group_advantages(rewards, G)
    if std == 0:
        outcome = f"All {G} answers scored {mean:g}: σ = 0, every advantage is 0, and this group teaches nothing."
    else:
        ups = int((adv > 0).sum())
        outcome = f"{ups} of {G} answers beat the mean and are pushed up."
    text = (f"GRPO drops the value model. It samples G = {G} answers to the same prompt; their mean r̄ = {mean:.2f} "
            f"is the baseline and their spread σ = {std:.2f} the scale. {outcome}")
    figure = charts.group_reward_chart(group.texts, rewards.tolist(), mean, std, TOY_WORDS,
                                       title=f"A group of G = {G} from π_θ")
    return SlideView([formulas.grpo_objective({"advantage"}), formulas.GRPO_GROUP_ADVANTAGE,
                      rf"\bar r = {mean:.4f},\quad \sigma_r = {std:.4f}"], figure, text)  # as the chart says them


# ----------------------------------------------------------------- 7. a language model's group


@functools.lru_cache(maxsize=1)
def builtin_model() -> LoadedModel:
    """The built-in tiny GPT, loaded once: read-only, shared by every build."""
    return load_builtin()


@functools.lru_cache(maxsize=1)
def lm_policy():
    """One policy for every build: grpo_iteration holds its lock while it samples and steps, and restores it."""
    return make_policy(builtin_model(), max_new_tokens=LM_NEW_TOKENS)


@functools.lru_cache(maxsize=32)
def lm_iteration(draw: int = 0) -> IterationTrace:
    """One GRPO iteration (the DeepSeekMath preset, loss "grpo") of the built-in model on a group of LM_GROUP
    completions of the sum LM_PROMPT."""
    settings = Settings(group_size=LM_GROUP, max_new_tokens=LM_NEW_TOKENS, seed=LESSON_SEED)
    prompt = ARITHMETIC.prompt(*LM_PROMPT, chat=False)
    return grpo_iteration(lm_policy(), ARITHMETIC.reward, settings, make_generator(LESSON_SEED, 0, draw), [prompt])


def _span(ns: list[int]) -> str:
    return f"{min(ns)}" if min(ns) == max(ns) else f"{min(ns)}–{max(ns)}"


def lm_slide(draw: int = 0) -> SlideView:
    trace = lm_iteration(int(draw))
    G = trace.group.batch_size
    rewards, adv, n = trace.rewards.tolist(), trace.advantages.tolist(), lengths(trace)
    right = [i for i, r in enumerate(rewards) if r == 1]
    wrong = [i for i, r in enumerate(rewards) if r != 1]
    prompt = ARITHMETIC.prompt(*LM_PROMPT, chat=False)
    if trace.all_rewards_equal:
        spread = f"all score r = {rewards[0]:g}, so σ = 0 and every token's A is 0."
    else:
        def whose(rows: list[int], kind: str) -> str:
            return f"{'the' if len(rows) == 1 else 'each'} {kind} one's {_span([n[i] for i in rows])}"

        spread = (f"{len(right)} {'is' if len(right) == 1 else 'are'} right. Each answer's A_i fills its tokens: "
                  f"{_signed(adv[right[0]])} on {whose(right, 'right')}, {_signed(adv[wrong[0]])} on "
                  f"{whose(wrong, 'wrong')}.")
    weights = (f"all {max(n)} tokens weigh 1/{max(n)} each" if min(n) == max(n) else
               f"{max(n)} tokens weigh 1/{max(n)} each, {min(n)} weigh 1/{min(n)}")
    text = (f"{G} answers to “{prompt}”; {spread} Ratio and KL are per token. Loss “grpo” averages per "
            f"answer: {weights}.")
    figure = lm_view.token_figure(trace, STAGES.index("Advantages"), 0)
    mean, sigma = float(trace.group_mean[0]), float(trace.group_std[0])
    if trace.all_rewards_equal:
        numbers = rf"\sigma_r = 0 \;\Rightarrow\; \hat A_{{i,t}} = 0"
    else:
        numbers = (rf"\hat A_{{i,t}} = \frac{{r_i - {mean:.3f}}}{{{sigma:.3f}}} \in "
                   rf"\{{{adv[right[0]]:+.3f},\ {adv[wrong[0]]:+.3f}\}}")
    aggregate = (r"|o_i| = (" + ",".join(map(str, n)) + rf"),\quad \tfrac{{1}}{{G|o_i|}} = \tfrac{{1}}{{{G * min(n)}}}"
                 + ("" if min(n) == max(n) else rf" \ldots \tfrac{{1}}{{{G * max(n)}}}"))
    return SlideView([formulas.grpo_objective({"advantage", "aggregate"}), numbers, aggregate], figure, text)


# ----------------------------------------------------------------- 8. reward hacking


@functools.lru_cache(maxsize=64)
def hacking_runs(beta: float) -> tuple:
    """GRPO trained on the proxy for HACKING_ITERATIONS at beta = 0 and at ``beta``: (sweep, outcomes by beta)."""
    settings = Settings(seed=LESSON_SEED)
    proxy = proxy_rewards(settings.rewards)
    sweep = hacking_sweep(settings, {"GRPO": (0.0, float(beta))}, HACKING_ITERATIONS, proxy)
    outcomes = {o.beta: o for o in hacking_outcomes(sweep, settings.rewards, proxy)}
    return sweep, outcomes


def hacking_slide(beta: float = 3.0) -> SlideView:
    sweep, outcomes = hacking_runs(float(beta))
    run, free = outcomes[float(beta)], outcomes[0.0]
    text = (f"The proxy reward model overrates barked. After {HACKING_ITERATIONS} GRPO iterations with β = {beta:g}, "
            f"the proxy reward is {run.proxy_end:.2f} and the true reward {run.true_start:.2f} → {run.true_end:.2f}, "
            f"π(barked) {_p(run.p_end)}: β {hacking_verdict(run)}"
            + (f" (β = 0: true {free.true_end:.2f})." if beta else "."))
    figure = overoptimization_chart(sweep, title="GRPO trained on a proxy that overrates barked",
                                    subtitle="solid: proxy reward · dotted: true reward")
    proxy = proxy_rewards(TOY_REWARDS)
    tables = [rf"r_{{{name}}} = (" + r",\ ".join(rf"\text{{{w}}}\ {r:g}" for w, r in zip(TOY_WORDS, table)) + ")"
              for name, table in (("proxy", proxy), ("true", TOY_REWARDS))]
    return SlideView([formulas.grpo_objective({"kl"}), *tables], figure, text)


# ----------------------------------------------------------------- 9. where to go next


def next_slide() -> SlideView:
    rows = trained_probs("GRPO", 0.04, 60)
    columns = {"GRPO": {key: [row[key] for row in rows] for key in rows[0]}}
    figure = charts.training_probability_chart(TOY_WORDS, columns, ToyPolicy().probs().tolist(),
                                               title="GRPO on the toy, 60 iterations")
    text = (f"Over 60 iterations GRPO moves π(sat) from {_p(rows[0]['p_sat'])} to {_p(rows[-1]['p_sat'])}. Next: "
            "step through one iteration stage by stage, compare PPO and GRPO on one group, train longer, run a "
            "real language model, then take the settings to TRL.")
    return SlideView([formulas.grpo_objective()], figure, text)


SLIDES: tuple[Slide, ...] = (
    Slide("ppo", "PPO", "PPO's objective, term by term", ppo_objective_slide),
    Slide("softmax", "Softmax", "A state and a softmax over three next words", softmax_slide,
          Control("temperature", "Temperature T", 0.25, 3.0, 0.25, 1.0, "Logits are divided by T before the softmax.")),
    Slide("advantage", "Advantage", "Advantage = reward − value", advantage_slide),
    Slide("clip", "Clip", "The ratio and the clip", clip_slide,
          Control("epsilon", "Clip ε", 0.05, 0.6, 0.05, 0.2, "The band [1 − ε, 1 + ε] the ratio may move in."),
          redraws=True),
    Slide("kl", "KL", "A frozen reference and the KL penalty", kl_slide,
          Control("beta", "KL weight β", 0.0, 2.0, 0.1, 0.5, "How much each token's reward pays for drifting from π_ref.")),
    Slide("grpo", "GRPO", "GRPO: the group replaces the value model", grpo_slide,
          Control("group_size", "Group size G", 2, 16, 1, 8, "Answers sampled per prompt."), redraws=True),
    Slide("lm", "Tokens", "A language model: one advantage over many tokens", lm_slide, redraws=True),
    Slide("hacking", "Hacking", "Reward hacking, and what β does", hacking_slide,
          Control("beta", "KL weight β", 0.0, 4.0, 0.5, 3.0, "GRPO's weight on the KL term in the loss.")),
    Slide("next", "Next", "Where to go next", next_slide),
)


def build(slide: Slide, value: float | None = None, draw: int = 0) -> SlideView:
    """The slide's view at control value ``value`` (its default when None) and group draw ``draw``."""
    kwargs = {}
    if slide.control is not None:
        kwargs[slide.control.name] = slide.control.value(value)
    if slide.redraws:
        kwargs["draw"] = int(draw)
    return slide.build(**kwargs)


__all__ = ["Control", "MAX_WORDS", "SLIDES", "Slide", "SlideView", "build", "word_count"]

