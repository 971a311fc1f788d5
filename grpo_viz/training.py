"""Train the toy over many iterations with GRPO, PPO or both, and keep a history of what happened.

Plain Python (no Streamlit): a :class:`TrainingRun` owns its own policy (and, for
PPO, its own critic), takes one iteration at a time with the same
``grpo_iteration`` / ``ppo_iteration`` the step-through pages show, and appends one
row per iteration to its history.  Iteration k samples its group with
``make_generator(seed, k, 0)``, the same stream as the step-through page, so the
first iteration here is the first iteration there, and GRPO and PPO started from
the same policy see the same first group.

Also here: runs that differ in one knob (the "compare" setting) and the reward
hacking set-up, a proxy reward that overrates one word, trained on while the true
reward is recorded beside it.
"""

from __future__ import annotations

import atexit
import json
import math
import platform
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from .config import TOY_REWARDS, TOY_WORDS, Settings
from .policies.base import one_at_a_time
from .policies.toy import ToyPolicy, probs_from_logits
from .ppo import ToyValue, ppo_iteration
from .stepper import StepRun, grpo_iteration, make_generator
from .tasks import word_reward

ALGORITHMS = ("GRPO", "PPO")
MAX_ITERATIONS = 500  # a run never grows past this: the history stays small enough to redraw on every tick
DEFAULT_ITERATIONS = 50  # both algorithms put >= 0.9 on the best word well within this at default settings

# Knobs the "compare" setting can vary, with the two values drawn by default.
COMPARE_KNOBS: dict[str, tuple[float, float]] = {
    "beta": (0.0, 0.04),
    "epsilon": (0.1, 0.3),
    "lr": (0.3, 1.0),
    "group_size": (4, 16),
    "temperature": (0.7, 1.5),
}
COMPARE_LABELS = {"beta": "β", "epsilon": "ε", "lr": "η", "group_size": "G", "temperature": "T"}

# The reward-hacking demo: a proxy reward model that overrates the wrong word "barked"
# (true reward 0) above the best word "sat" (true reward 1).
HACKED_WORD = "barked"
PROXY_BONUS = 1.5
HACKING_BETA = 1.0  # one β for a single proxy run (tests, notebooks); the Training page sweeps HACKING_BETAS
# The Training page's default sweep, one β per regime at the default settings and 50 iterations (measured):
# too small (the policy is hacked), in between, and large enough to hold the policy near pi_ref. GRPO's are larger
# than PPO's: its advantages are divided by the group's spread, its KL term is not (see ``proxy_spread``).
HACKING_BETAS: dict[str, tuple[float, ...]] = {"GRPO": (0.04, 1.5, 3.0), "PPO": (0.05, 1.0, 1.5)}
HACKING_BETA_CHOICES = (0.0, 0.02, 0.04, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 4.0)
# A run "holds" when it keeps at least this share of the true reward it can lose to the proxy, and is "hacked"
# when it keeps less than HACKED_KEEPS (see ``hacking_outcome``).
HELD_KEEPS = 2 / 3
HACKED_KEEPS = 1 / 3


def proxy_rewards(true_rewards: Sequence[float] = TOY_REWARDS, words: Sequence[str] = TOY_WORDS,
                  overrated: str = HACKED_WORD, bonus: float = PROXY_BONUS) -> tuple[float, ...]:
    """The proxy reward model's table: the true rewards with ``bonus`` added to ``overrated``."""
    if overrated not in words:
        raise ValueError(f"The overrated word must be one of {', '.join(words)}, not {overrated!r}.")
    return tuple(float(r) + (bonus if w == overrated else 0.0) for w, r in zip(words, true_rewards))


def exact_kl(probs, ref_probs) -> float:
    """KL(pi_theta || pi_ref) = sum_w pi_theta(w) log(pi_theta(w) / pi_ref(w)), exact for the toy (no sampling)."""
    p = torch.as_tensor(probs, dtype=torch.float64)
    q = torch.as_tensor(ref_probs, dtype=torch.float64)
    terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))
    return float(terms.sum())


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


class TrainingRun:
    """One algorithm trained on the toy from its starting policy, one iteration at a time.

    ``train_rewards`` is the reward table the algorithm optimizes (a proxy in the
    reward-hacking demo); the history also records the expected *true* reward
    (``settings.rewards``) so the two can be drawn side by side.
    """

    def __init__(self, algorithm: str, settings: Settings, label: str | None = None,
                 train_rewards: Sequence[float] | None = None, max_iterations: int = MAX_ITERATIONS):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}.")
        problems = settings.validate()
        if problems:
            raise ValueError(" ".join(problems))
        self.algorithm = algorithm
        self.settings = settings
        self.label = label or algorithm
        self.max_iterations = int(max(1, min(max_iterations, MAX_ITERATIONS)))
        self.policy = ToyPolicy()
        self.value = ToyValue()
        self.true_rewards = tuple(float(r) for r in settings.rewards)
        self.train_rewards = tuple(float(r) for r in (train_rewards if train_rewards is not None else settings.rewards))
        self.reward_fn = word_reward(self.policy.words, self.train_rewards)
        self.iteration = 0
        self.history: list[dict] = [self._row(None)]

    @property
    def words(self) -> tuple[str, ...]:
        return self.policy.words

    @property
    def done(self) -> bool:
        return self.iteration >= self.max_iterations

    def probs(self) -> list[float]:
        return self.policy.probs(self.settings.temperature).tolist()

    def _row(self, stats: dict | None) -> dict:
        """The history row for the policy as it is now (after ``self.iteration`` updates)."""
        probs = self.probs()
        ref = self.policy.ref_probs(self.settings.temperature).tolist()
        row = {
            "run": self.label,
            "algorithm": self.algorithm,
            "iteration": self.iteration,
            **{f"p_{w}": p for w, p in zip(self.words, probs)},
            # expected rewards under pi_theta are exact for the toy: smoother than a group's sample mean
            "expected_reward": sum(p * r for p, r in zip(probs, self.true_rewards)),
            "expected_train_reward": sum(p * r for p, r in zip(probs, self.train_rewards)),
            "kl": exact_kl(probs, ref),
            "value": float(self.value) if self.algorithm == "PPO" else None,
        }
        empty = {"group_mean_reward": None, "loss": None, "clip_low": None, "clip_high": None, "value_loss": None}
        return {**row, **(stats or empty)}

    @one_at_a_time
    def step(self) -> dict:
        """Sample a group from the current policy, update on it, keep the update, and return the new history row."""
        if self.done:
            raise ValueError(f"This run has reached its limit of {self.max_iterations} iterations; reset it to go on.")
        s = self.settings
        generator = make_generator(s.seed, self.iteration, 0)
        if self.algorithm == "GRPO":
            trace = grpo_iteration(self.policy, self.reward_fn, s, generator)
            steps = [step.trace for step in trace.steps]
            stats = {
                "group_mean_reward": float(trace.rewards.mean()),
                "loss": _mean([float(t.loss) for t in steps]),
                "clip_low": _mean([float(t.clip_low_fraction) for t in steps]),
                "clip_high": _mean([float(t.clip_high_fraction) for t in steps]),
                "value_loss": None,
            }
        else:
            trace = ppo_iteration(self.policy, self.value, self.reward_fn, s, generator)
            steps = [epoch.trace for epoch in trace.epochs]
            stats = {
                "group_mean_reward": float(trace.rewards.mean()),
                "loss": _mean([float(t.loss) for t in steps]),
                # PPO's clip is symmetric; split its clipped tokens by the side the advantage pushes toward
                "clip_low": _mean([float((t.is_clipped & (t.advantages < 0)).to(torch.float64).mean()) for t in steps]),
                "clip_high": _mean([float((t.is_clipped & (t.advantages > 0)).to(torch.float64).mean()) for t in steps]),
                "value_loss": _mean([float(t.value_loss) for t in steps]),
            }
            self.value.load_trainable_state(trace.value_state_after)
        self.policy.load_trainable_state(trace.state_after)
        self.iteration += 1
        row = self._row(stats)
        self.history.append(row)
        return row

    @one_at_a_time
    def run(self, iterations: int) -> None:
        for _ in range(max(0, min(iterations, self.max_iterations - self.iteration))):
            self.step()

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history)

    def columns(self) -> dict[str, list]:
        """The history column by column ({"iteration": [...], "p_sat": [...], ...})."""
        return {key: [row[key] for row in self.history] for key in self.history[0]}


@dataclass(frozen=True)
class RunSpec:
    """What one run is: its label, algorithm, settings and (for reward hacking) the reward it trains on."""

    label: str
    algorithm: str
    settings: Settings
    train_rewards: tuple[float, ...] | None = None

    def start(self, max_iterations: int = MAX_ITERATIONS) -> TrainingRun:
        return TrainingRun(self.algorithm, self.settings, self.label, self.train_rewards, max_iterations)


def with_knob(settings: Settings, knob: str, value: float) -> Settings:
    """``settings`` with one compare knob set (``epsilon`` sets both clip edges)."""
    if knob not in COMPARE_KNOBS:
        raise ValueError(f"The compare knob must be one of {', '.join(COMPARE_KNOBS)}, not {knob!r}.")
    if knob == "epsilon":
        return replace(settings, epsilon_low=float(value), epsilon_high=float(value))
    if knob == "group_size":
        return replace(settings, group_size=int(value))
    return replace(settings, **{knob: float(value)})


def run_specs(settings: Settings, algorithms: Sequence[str], compare: tuple[str, float, float] | None = None
              ) -> list[RunSpec]:
    """One run per algorithm, or two per algorithm (values a and b of one knob) when ``compare`` is given."""
    algorithms = [a for a in ALGORITHMS if a in algorithms]
    if not algorithms:
        raise ValueError("Choose at least one algorithm to train: GRPO, PPO or both.")
    if compare is None:
        return [RunSpec(a, a, settings) for a in algorithms]
    knob, a_value, b_value = compare
    symbol = COMPARE_LABELS.get(knob, knob)
    return [RunSpec(f"{alg} · {symbol} = {v:g}", alg, with_knob(settings, knob, v))
            for alg in algorithms for v in (a_value, b_value)]


def reward_hacking_specs(settings: Settings, algorithm: str, beta: float,
                         train_rewards: Sequence[float] | None = None) -> list[RunSpec]:
    """Two runs trained on the proxy reward: beta = 0 and the chosen beta."""
    proxy = tuple(train_rewards) if train_rewards is not None else proxy_rewards(settings.rewards)
    return [RunSpec(f"{algorithm} · β = {b:g}", algorithm, replace(settings, beta=float(b)), proxy)
            for b in (0.0, beta)]


def proxy_spread(probs: Sequence[float], train_rewards: Sequence[float]) -> float:
    """sigma_pi(r) = sqrt( sum_w pi(w) (r(w) - sum_v pi(v) r(v))^2 ): the spread of the trained-on reward under pi.

    GRPO divides r_i - mean by a group's spread (which estimates sigma_pi) and adds beta * KL to the loss
    unscaled: multiplied back into reward units, its KL weight is beta * sigma_pi. PPO adds -beta * KL to the
    reward itself, so its beta is already in reward units (whitening scales r and the KL together).
    """
    p = torch.as_tensor(probs, dtype=torch.float64)
    r = torch.as_tensor(train_rewards, dtype=torch.float64)
    mean = (p * r).sum()
    return float(torch.sqrt((p * (r - mean) ** 2).sum()))


def hacking_run(algorithm: str, settings: Settings, beta: float, train_rewards: Sequence[float],
                iterations: int) -> pd.DataFrame:
    """One run trained on ``train_rewards`` (the proxy) with KL weight ``beta``: its history, one row per iteration.

    Besides the history's columns: ``beta``, ``sqrt_kl`` = sqrt(KL(pi_theta || pi_ref)) (the x axis of
    Gao et al. 2022's over-optimization plots) and ``proxy_spread`` = sigma_pi of the proxy.
    """
    label = f"{algorithm} · β = {float(beta):g}"
    run = TrainingRun(algorithm, replace(settings, beta=float(beta)), label, tuple(train_rewards))
    run.run(int(iterations))
    frame = run.frame()
    frame["beta"] = float(beta)
    frame["sqrt_kl"] = frame["kl"].clip(lower=0.0) ** 0.5
    probs = torch.tensor(frame[[f"p_{w}" for w in run.words]].to_numpy(), dtype=torch.float64)
    r = torch.as_tensor(run.train_rewards, dtype=torch.float64)
    mean = probs @ r
    frame["proxy_spread"] = torch.sqrt((probs * (r - mean[:, None]) ** 2).sum(dim=1)).numpy()  # proxy_spread, row-wise
    return frame


def hacking_sweep(settings: Settings, betas: Mapping[str, Sequence[float]], iterations: int,
                  train_rewards: Sequence[float] | None = None, runner=hacking_run) -> pd.DataFrame:
    """Every (algorithm, beta) of ``betas`` trained on the proxy for ``iterations``: their histories, stacked.

    ``runner`` makes one run (``hacking_run``'s signature); the page passes a cached one, so changing one beta
    trains one run again, not the sweep.
    """
    proxy = tuple(train_rewards) if train_rewards is not None else proxy_rewards(settings.rewards)
    frames = [runner(algorithm, replace(settings, beta=float(beta)), float(beta), proxy, int(iterations))
              for algorithm in ALGORITHMS for beta in sorted(set(float(b) for b in betas.get(algorithm, ())))]
    if not frames:
        raise ValueError("Choose at least one β for GRPO or PPO.")
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class HackingOutcome:
    """Where one proxy run started and ended, and whether its beta held it.

    ``floor`` is the true reward of the policy the proxy wants (all mass on its favourite word, the worst such
    word when several tie); ``kept`` = (true_end - floor) / (true_start - floor): 1 where it started, 0 hacked
    all the way. ``regime``: "held" (kept >= HELD_KEEPS), "hacked" (kept < HACKED_KEEPS), "partly held"
    in between, or "nothing to hack" when the proxy's favourite is truly worth as much as pi_ref.
    """

    algorithm: str
    beta: float
    iterations: int
    true_start: float
    true_end: float
    proxy_start: float
    proxy_end: float
    p_start: float  # pi(overrated word)
    p_end: float
    kl_end: float
    spread_start: float
    spread_end: float
    floor: float
    kept: float | None
    regime: str


def hacking_outcome(run: pd.DataFrame, true_rewards: Sequence[float], train_rewards: Sequence[float],
                    overrated: str = HACKED_WORD) -> HackingOutcome:
    """The outcome of one run's history (rows of ``hacking_run``), classified as in ``HackingOutcome``."""
    first, last = run.iloc[0], run.iloc[-1]
    best = max(train_rewards)
    floor = min(float(t) for t, p in zip(true_rewards, train_rewards) if p >= best - 1e-12)
    start, end = float(first["expected_reward"]), float(last["expected_reward"])
    room = start - floor
    kept = (end - floor) / room if room > 1e-9 else None
    if kept is None:
        regime = "nothing to hack"
    elif kept >= HELD_KEEPS:
        regime = "held"
    elif kept < HACKED_KEEPS:
        regime = "hacked"
    else:
        regime = "partly held"
    return HackingOutcome(
        algorithm=str(first["algorithm"]), beta=float(first["beta"]), iterations=int(last["iteration"]),
        true_start=start, true_end=end, proxy_start=float(first["expected_train_reward"]),
        proxy_end=float(last["expected_train_reward"]), p_start=float(first[f"p_{overrated}"]),
        p_end=float(last[f"p_{overrated}"]), kl_end=float(last["kl"]), spread_start=float(first["proxy_spread"]),
        spread_end=float(last["proxy_spread"]), floor=floor, kept=kept, regime=regime)


def hacking_outcomes(sweep: pd.DataFrame, true_rewards: Sequence[float], train_rewards: Sequence[float],
                     overrated: str = HACKED_WORD) -> list[HackingOutcome]:
    """``hacking_outcome`` of every run of a sweep, GRPO first, then by beta."""
    return [hacking_outcome(group, true_rewards, train_rewards, overrated)
            for _, group in sweep.groupby(["algorithm", "beta"], sort=True)]


class Experiment:
    """Several runs stepped together (what the Training page holds per session)."""

    def __init__(self, specs: Sequence[RunSpec], max_iterations: int = MAX_ITERATIONS):
        self.specs = tuple(specs)
        self.runs = [spec.start(max_iterations) for spec in self.specs]

    @property
    def iteration(self) -> int:
        return min(r.iteration for r in self.runs)

    @property
    def max_iterations(self) -> int:
        return min(r.max_iterations for r in self.runs)

    @property
    def done(self) -> bool:
        return all(r.done for r in self.runs)

    def step(self, iterations: int = 1) -> None:
        for run in self.runs:
            run.run(iterations)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([row for run in self.runs for row in run.history])

    def columns(self) -> dict[str, dict[str, list]]:
        """{run label: {history column: values}}: what the figure builders take."""
        return {run.label: run.columns() for run in self.runs}


def iterations_to_reach(history: pd.DataFrame | list[dict], word: str, threshold: float = 0.9) -> int | None:
    """The first iteration at which pi_theta(word) >= threshold, or None if it never does."""
    frame = history if isinstance(history, pd.DataFrame) else pd.DataFrame(history)
    hit = frame.loc[frame[f"p_{word}"] >= threshold, "iteration"]
    return None if hit.empty else int(hit.iloc[0])


def train(algorithm: str, settings: Settings, iterations: int = DEFAULT_ITERATIONS, **kwargs) -> pd.DataFrame:
    """Convenience for notebooks and tests: one run of ``iterations`` iterations, its history as a DataFrame."""
    run = TrainingRun(algorithm, settings, **kwargs)
    run.run(iterations)
    return run.frame()


def finite_or_none(x) -> float | None:
    """A number for display, or None (a gap in a chart, a dash in a table) for a missing one."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def start_probs(settings: Settings) -> list[float]:
    """The toy's starting (= reference) distribution at the settings' temperature."""
    return probs_from_logits(ToyPolicy().ref_logits, settings.temperature).tolist()


__all__ = [
    "ALGORITHMS", "COMPARE_KNOBS", "DEFAULT_ITERATIONS", "Experiment", "HACKED_KEEPS", "HACKED_WORD", "HACKING_BETA",
    "HACKING_BETAS", "HACKING_BETA_CHOICES", "HELD_KEEPS", "HackingOutcome", "MAX_ITERATIONS", "PROXY_BONUS",
    "RunSpec", "TrainingRun", "exact_kl", "hacking_outcome", "hacking_outcomes", "hacking_run", "hacking_sweep",
    "iterations_to_reach", "proxy_rewards", "proxy_spread", "reward_hacking_specs", "run_specs", "start_probs",
    "train", "with_knob",
    "LMTraining", "LM_DEFAULT_ITERATIONS", "LM_EVAL_EVERY", "LM_MAX_ITERATIONS", "LM_PROMPTS_PER_ITERATION",
    "LM_WORKER_THREADS",
    "LMSnapshot", "LMWorker", "LMWorkerSlot",
    "stop_all_workers", "RECORD_FORMAT", "RUNS_DIR", "RecordedRun", "record_run", "recorded_runs", "recording",
    "reproduction", "machine_cpu", "mismatch_explanation",
]


# ============================================================================ a language model, many iterations
#
# The same loop as scripts/measure_lm_grpo.py: each iteration is one StepRun
# iteration exactly as the Toy-vs-LM page runs it (the task's prompts for
# (seed, iteration), G completions each, mu inner updates), then ``advance``.
# A long run trains in a background thread (``LMWorker``): the page only ever
# reads the worker's latest ``LMSnapshot``, so it never waits for an iteration.

LM_MAX_ITERATIONS = 200  # a session's LM run never grows past this
LM_DEFAULT_ITERATIONS = 40
LM_PROMPTS_PER_ITERATION = 2  # the Training page's defaults: groups an iteration, and an evaluation every k
LM_EVAL_EVERY = 5
LM_EVAL_PROBLEMS = 40  # a fixed evaluation set held out of training: 40 sums x 2 samples
LM_EVAL_SAMPLES = 2
LM_EVAL_SEED = 12345  # the same problems and sampling stream at every evaluation
LM_WORKER_THREADS = 1  # torch's intra-op threads in a worker (see LMWorker._work)
LM_COMPLETIONS_KEPT = 16  # the latest iteration's completions a snapshot carries (the page shows them)


@dataclass(frozen=True)
class Completion:
    """One sampled completion of the latest iteration: its prompt, text and the reward GRPO optimized."""

    prompt: str
    text: str
    reward: float


class LMTraining:
    """A language-model policy trained with GRPO for many iterations, with a history and periodic accuracy.

    ``columns()`` has one entry per trained iteration (the mean optimized reward of that iteration's
    sampled groups, the true reward of the same completions, KL to pi_ref, loss, clip fractions);
    ``accuracy`` one (iteration, accuracy) pair per evaluation: at 0, every ``eval_every`` iterations,
    and wherever ``evaluate_now`` is called. Accuracy is the task's true reward on ``eval_problems`` fixed
    problems x ``eval_samples`` samples (T = 1); with ``held_out`` those problems are never trained on. With
    ``batched_evaluation`` the problems are sampled in one batch (``Task.accuracy(batched=True)``): the same
    distribution, another random stream, and a fraction of the time of one decode loop per problem.
    """

    def __init__(self, policy, task, settings: Settings, chat: bool = False, prompts_per_iteration: int = 4,
                 eval_every: int = 5, max_iterations: int = LM_MAX_ITERATIONS, eval_problems: int = LM_EVAL_PROBLEMS,
                 eval_samples: int = LM_EVAL_SAMPLES, held_out: bool = False, batched_evaluation: bool = True):
        if prompts_per_iteration < 1 or eval_every < 1 or eval_problems < 1 or eval_samples < 1:
            raise ValueError("Use at least one prompt per iteration, evaluate at least every iteration, and "
                             "evaluate on at least one problem and one sample.")
        self.run = StepRun(policy)
        self.task, self.settings, self.chat = task, settings, chat
        self.prompts_per_iteration, self.eval_every = int(prompts_per_iteration), int(eval_every)
        self.eval_problems, self.eval_samples = int(eval_problems), int(eval_samples)
        self.held_out = bool(held_out)
        self.batched_evaluation = bool(batched_evaluation)
        self._held_out_pairs = (tuple(task.evaluation_pairs(self.eval_problems, LM_EVAL_SEED))
                                if self.held_out and task.arithmetic else ())
        self.max_iterations = min(int(max_iterations), StepRun.MAX_HISTORY)
        self.true_rewards: list[float] = []
        self.iteration_seconds: list[float] = []  # wall time of each trained iteration (sampling + updates)
        self.accuracy: list[tuple[int, float]] = []
        self.eval_seconds = 0.0
        self.latest_completions: tuple[Completion, ...] = ()

    @property
    def policy(self):
        return self.run.policy

    @property
    def iteration(self) -> int:
        return self.run.iteration

    @property
    def done(self) -> bool:
        return self.iteration >= self.max_iterations

    @property
    def train_seconds(self) -> float:
        """Wall time of the trained iterations (sampling + updates), evaluations excluded."""
        return sum(self.iteration_seconds)

    @property
    def seconds_per_iteration(self) -> float | None:
        return self.train_seconds / len(self.iteration_seconds) if self.iteration_seconds else None

    @property
    def evaluation_due(self) -> bool:
        """No accuracy yet, or an ``eval_every``-th iteration not yet evaluated."""
        if not self.accuracy:
            return True
        return self.iteration % self.eval_every == 0 and self.accuracy[-1][0] != self.iteration

    @one_at_a_time
    def evaluate_now(self) -> float:
        """The task's accuracy (mean true reward) on the fixed evaluation set, recorded at this iteration."""
        if self.accuracy and self.accuracy[-1][0] == self.iteration:
            return self.accuracy[-1][1]
        start = time.perf_counter()
        acc = self.task.accuracy(self.policy, samples=self.eval_samples, seed=LM_EVAL_SEED,
                                 problems=self.eval_problems, chat=self.chat, batched=self.batched_evaluation)
        self.eval_seconds += time.perf_counter() - start
        self.accuracy.append((self.iteration, acc))
        return acc

    @one_at_a_time
    def train_one(self) -> None:
        """One iteration (sample, score, mu updates, keep them), no evaluation; ValueError if it cannot run."""
        if self.done:
            raise ValueError(f"This run has reached its limit of {self.max_iterations} iterations; reset it to go on.")
        start = time.perf_counter()
        prompts = self.task.prompts(self.settings.seed, self.iteration, n=self.prompts_per_iteration, chat=self.chat,
                                    held_out=self._held_out_pairs)
        trace = self.run.trace(self.settings, self.task.reward, prompts)
        true = self.task.true_reward(trace.group) if self.task.is_hackable else trace.rewards
        self.run.advance()
        self.true_rewards.append(float(true.mean()))
        self.iteration_seconds.append(time.perf_counter() - start)
        group = trace.group
        self.latest_completions = tuple(
            Completion(p, t, float(r))
            for p, t, r in zip(group.prompts, group.texts, trace.rewards.tolist()))[:LM_COMPLETIONS_KEPT]

    @one_at_a_time
    def step(self, iterations: int = 1) -> None:
        """Train up to ``iterations`` more (never past ``max_iterations``), evaluating when due; ValueError if a
        step cannot run."""
        if not self.accuracy:
            self.evaluate_now()
        for _ in range(max(0, min(int(iterations), self.max_iterations - self.iteration))):
            self.train_one()
            if self.evaluation_due:
                self.evaluate_now()

    def train(self, iterations: int, on_iteration: Callable[[int, int, int], object] | None = None) -> None:
        """``iterations`` more (never past ``max_iterations``), one at a time, calling ``on_iteration(iteration,
        start, target)`` after each (a progress bar); then the accuracy where they end, whatever ``eval_every`` is."""
        start = self.iteration
        target = min(start + int(iterations), self.max_iterations)
        while self.iteration < target:
            self.step(1)
            if on_iteration is not None:
                on_iteration(self.iteration, start, target)
        self.evaluate_now()

    def columns(self) -> dict[str, list]:
        """History columns named as the toy's (``training_metric_chart`` and ``clip_fraction_chart`` read them)."""
        rows = self.run.history
        return {
            "iteration": [r["iteration"] for r in rows],
            "mean_reward": [r["mean_reward"] for r in rows],
            "true_reward": self.true_rewards[-len(rows):] if rows else [],
            "kl": [r["kl_to_ref"] for r in rows],
            "loss": [r["loss"] for r in rows],
            "clip_low": [r["clip_low_fraction"] for r in rows],
            "clip_high": [r["clip_high_fraction"] for r in rows],
            "seconds": self.iteration_seconds[-len(rows):] if rows else [],
        }


# ---------------------------------------------------------------------------- the background worker

LM_STATUSES = ("idle", "evaluating", "training", "done", "stopped", "failed")


@dataclass(frozen=True)
class LMSnapshot:
    """What a page draws of a run at one moment: copies, never the live lists, so reading it needs no lock.

    ``status``: "idle" (nothing asked yet), "evaluating" or "training" (the worker is busy), "done" (it reached
    ``target``), "stopped" (Stop, or the session ended, before ``target``), "failed" (``error`` says why).
    """

    iteration: int
    target: int
    max_iterations: int
    status: str
    columns: dict
    accuracy: tuple[tuple[int, float], ...]
    completions: tuple[Completion, ...]
    seconds_per_iteration: float | None
    eval_seconds: float
    error: str | None = None
    version: int = 0

    @property
    def running(self) -> bool:
        return self.status in ("evaluating", "training")


_RUNNING_WORKERS: "weakref.WeakSet[LMWorker]" = weakref.WeakSet()


def stop_all_workers(timeout: float | None = 5.0) -> bool:
    """Stop every worker of this process and wait for their threads; True when none is left. Registered at exit:
    a thread still inside torch while the interpreter finalizes aborts the process."""
    workers = list(_RUNNING_WORKERS)
    for worker in workers:
        worker.request_stop()
    return all([worker.join(timeout) for worker in workers])


atexit.register(stop_all_workers)


class LMWorker:
    """One session's ``LMTraining`` trained in a background thread, one iteration at a time.

    ``start(n)`` returns at once; the thread measures the start accuracy if there is none, trains up to n
    iterations (evaluating when due), and measures the accuracy where it ends. ``snapshot()`` is the latest
    published state (after every iteration and evaluation). ``request_stop()`` makes the thread finish the
    iteration or evaluation under way and do nothing more; ``stop()`` also waits for the thread to end. Each
    worker trains its own policy: two sessions' workers share nothing but read-only weights.
    """

    def __init__(self, lm: LMTraining, name: str = "lm-worker"):
        self.lm = lm
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the published snapshot and the start of a thread
        self._status = "idle"
        self._target = lm.iteration
        self._error: str | None = None
        self._version = 0
        self._snapshot = self._make_snapshot()

    # -- what the page calls
    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def snapshot(self) -> LMSnapshot:
        return self._snapshot

    def start(self, iterations: int = 0) -> bool:
        """Train ``iterations`` more in the background (0: only the start accuracy). False when the worker is busy
        already, or the run is at its end and there is nothing to measure."""
        with self._lock:
            if self.running:
                return False
            target = min(self.lm.iteration + max(int(iterations), 0), self.lm.max_iterations)
            if target == self.lm.iteration and self.lm.accuracy and self.lm.accuracy[-1][0] == target:
                return False
            self._stop.clear()
            self._target, self._error = target, None
            self._status = "evaluating" if self.lm.evaluation_due else "training"
            self._publish_locked()  # before the thread starts: afterwards only the thread reads the run
            self._thread = threading.Thread(target=self._work, args=(target,), name=self.name, daemon=True)
            _RUNNING_WORKERS.add(self)
            self._thread.start()
            return True

    def request_stop(self) -> None:
        """Finish the iteration (or evaluation) under way, then stop; returns at once."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (its run done or stopped); True when no thread is left."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return not self.running

    def stop(self, timeout: float | None = None) -> bool:
        """``request_stop`` and wait for the thread to end; True when no thread is left."""
        self.request_stop()
        return self.join(timeout)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # -- the thread
    def _work(self, target: int) -> None:
        # One intra-op thread: a server's cores are shared (other sessions, the page itself), and two torch threads
        # that wait on each other there while one is descheduled lose far more than a second core gains. Threads
        # started after this one (Streamlit's script threads) take the same setting.
        torch.set_num_threads(LM_WORKER_THREADS)
        lm = self.lm
        try:
            if not lm.accuracy:
                self._set_status("evaluating")
                lm.evaluate_now()
                self._publish()
            while lm.iteration < target and not self._stop.is_set():
                self._set_status("training")
                lm.train_one()
                self._publish()
                if self._stop.is_set():
                    break
                if lm.evaluation_due or lm.iteration == target:
                    self._set_status("evaluating")
                    lm.evaluate_now()
                    self._publish()
            final = "stopped" if self._stop.is_set() and lm.iteration < target else "done"
        except Exception as err:  # the page shows the sentence; the thread must not die silently
            self._error = str(err) or type(err).__name__
            final = "failed"
        self._set_status(final)

    def _set_status(self, status: str) -> None:
        with self._lock:
            self._status = status
            self._publish_locked()

    def _publish(self) -> None:
        with self._lock:
            self._publish_locked()

    def _publish_locked(self) -> None:
        self._version += 1
        self._snapshot = self._make_snapshot()

    def _make_snapshot(self) -> LMSnapshot:
        lm = self.lm
        return LMSnapshot(
            iteration=lm.iteration, target=self._target, max_iterations=lm.max_iterations, status=self._status,
            columns=lm.columns(), accuracy=tuple(lm.accuracy), completions=lm.latest_completions,
            seconds_per_iteration=lm.seconds_per_iteration, eval_seconds=lm.eval_seconds, error=self._error,
            version=self._version)


class LMWorkerSlot:
    """The one place a session keeps its worker(s) by name: putting a new one in stops the one it replaces,
    and ``close()`` (when the session ends) stops them all."""

    def __init__(self):
        self._workers: dict[str, tuple[object, LMWorker]] = {}
        self._retired: list[LMWorker] = []  # replaced workers still finishing their last iteration
        self._lock = threading.Lock()
        self.closed = False

    def get(self, name: str, key) -> LMWorker | None:
        """The worker called ``name`` if it was made for ``key``, else None."""
        held = self._workers.get(name)
        return held[1] if held is not None and held[0] == key else None

    def put(self, name: str, key, worker: LMWorker) -> LMWorker:
        with self._lock:
            old = self._workers.get(name)
            self._workers[name] = (key, worker)
            self._retired = [w for w in self._retired if w.running]
            if old is not None and old[1] is not worker:
                old[1].request_stop()  # it ends after its current iteration; the page does not wait for it
                self._retired.append(old[1])
        if self.closed:
            worker.request_stop()
        return worker

    def workers(self) -> list[LMWorker]:
        """The current workers and the replaced ones still running."""
        with self._lock:
            return [w for _, w in self._workers.values()] + list(self._retired)

    def close(self) -> None:
        """Ask every worker to stop after its current iteration, and start no new one; returns at once (the
        server calls it when a session ends, and must not wait for an iteration)."""
        self.closed = True
        for worker in self.workers():
            worker.request_stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every worker's thread to end; True when none is left."""
        return all([worker.join(timeout) for worker in self.workers()])


# ---------------------------------------------------------------------------- recorded runs
#
# A recorded run is one JSON file in assets/runs/ (scripts/record_run.py writes them), at most ~1 MB:
#
#   {"format": "grpo-viz recorded run 1",
#    "model": "builtin" | "smollm2", "model_name": str, "task": a key of tasks.TASKS,
#    "settings": every field of config.Settings (seed included), "prompts_per_iteration": int,
#    "eval_every": int, "eval_problems": int, "eval_samples": int, "eval_seed": int,
#    "held_out": bool (the evaluation's sums are never trained on),
#    "batched_evaluation": bool (the evaluation samples its problems in one batch; absent in older files: false),
#    "columns": {"iteration": [1..n], "mean_reward", "true_reward", "kl", "loss", "clip_low", "clip_high",
#                "seconds": [one number per iteration]},
#    "accuracy": [[iteration, accuracy], ...],
#    "completions": {"<iteration>": [[prompt, completion, reward], ...], ...} (a few iterations),
#    "recorded": {"date": ISO date, "torch": version, "threads": int, "commit": git commit or "",
#                 "cpu": the recording machine's processor (``machine_cpu``; absent in older files),
#                 "seconds": wall time of the whole recording, evaluations included}}
#
# Iteration k of a recording is iteration k of a live LMTraining with the same model, task and settings:
# ``reproduction`` compares the two number by number.

RECORD_FORMAT = "grpo-viz recorded run 1"
RUNS_DIR = Path(__file__).resolve().parents[1] / "assets" / "runs"
RECORD_METRICS = ("mean_reward", "true_reward", "kl", "loss", "clip_low", "clip_high")
# how close a live iteration must come to its recording: sampled completions and rewards are discrete and must
# agree; the float losses and KLs may differ in their last bits with the number of torch threads
REPRODUCE_REL, REPRODUCE_ABS = 1e-4, 1e-6


@dataclass(frozen=True)
class RecordedRun:
    """A run read from a recording (see the format above)."""

    model: str
    model_name: str
    task: str
    settings: Settings
    prompts_per_iteration: int
    eval_every: int
    eval_problems: int
    eval_samples: int
    columns: dict
    accuracy: tuple[tuple[int, float], ...]
    completions: dict
    recorded: dict
    path: str = ""
    held_out: bool = False
    batched_evaluation: bool = False

    @property
    def iterations(self) -> int:
        return len(self.columns["iteration"])

    @property
    def seconds_per_iteration(self) -> float | None:
        seconds = self.columns.get("seconds") or []
        return sum(seconds) / len(seconds) if seconds else None

    def training(self, policy, task, chat: bool = False, max_iterations: int = LM_MAX_ITERATIONS) -> LMTraining:
        """A fresh LMTraining of ``policy`` (a new copy of the recorded model) with the recording's settings."""
        return LMTraining(policy, task, self.settings, chat=chat, prompts_per_iteration=self.prompts_per_iteration,
                          eval_every=self.eval_every, max_iterations=max_iterations,
                          eval_problems=self.eval_problems, eval_samples=self.eval_samples, held_out=self.held_out,
                          batched_evaluation=self.batched_evaluation)

    @classmethod
    def from_dict(cls, data: dict, path: str = "") -> "RecordedRun":
        if data.get("format") != RECORD_FORMAT:
            raise ValueError(f"{path or 'This file'} is not a recorded run of this version ({RECORD_FORMAT!r}).")
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data["settings"].items()}
        return cls(model=data["model"], model_name=data["model_name"], task=data["task"],
                   settings=Settings(**fields), prompts_per_iteration=int(data["prompts_per_iteration"]),
                   eval_every=int(data["eval_every"]), eval_problems=int(data["eval_problems"]),
                   eval_samples=int(data["eval_samples"]), columns=data["columns"],
                   accuracy=tuple((int(i), float(a)) for i, a in data["accuracy"]),
                   completions={int(k): [Completion(*c) for c in v] for k, v in data.get("completions", {}).items()},
                   recorded=data.get("recorded", {}), path=path, held_out=bool(data.get("held_out", False)),
                   batched_evaluation=bool(data.get("batched_evaluation", False)))

    @classmethod
    def load(cls, path) -> "RecordedRun":
        path = Path(path)
        return cls.from_dict(json.loads(path.read_text()), str(path))


def recorded_runs(model: str, task: str, folder: Path | str = RUNS_DIR) -> list[RecordedRun]:
    """The recordings of ``model`` on ``task`` in ``folder``, longest first (unreadable files are skipped)."""
    found = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            run = RecordedRun.load(path)
        except (ValueError, KeyError, TypeError, OSError):
            continue
        if run.model == model and run.task == task:
            found.append(run)
    return sorted(found, key=lambda r: -r.iterations)


def recording(lm: LMTraining, model: str, model_name: str, task_key: str, completions: Mapping | None = None,
              recorded: Mapping | None = None) -> dict:
    """``lm`` as it is now, as a recording (the format above); ``completions``: {iteration: [[prompt, completion,
    reward], ...]} kept along the way."""
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(lm.settings).items()}
    return {
        "format": RECORD_FORMAT, "model": model, "model_name": model_name, "task": task_key, "settings": settings,
        "prompts_per_iteration": lm.prompts_per_iteration, "eval_every": lm.eval_every,
        "eval_problems": lm.eval_problems, "eval_samples": lm.eval_samples, "eval_seed": LM_EVAL_SEED,
        "held_out": lm.held_out, "batched_evaluation": lm.batched_evaluation, "columns": lm.columns(), "accuracy": [[i, a] for i, a in lm.accuracy],
        "completions": {str(k): v for k, v in (completions or {}).items()},
        "recorded": {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": machine_cpu(),
                     **dict(recorded or {})},
    }


def record_run(lm: LMTraining, iterations: int, model: str, model_name: str, task_key: str,
               completions_at: Sequence[int] = (), on_iteration: Callable[[LMTraining, dict], object] | None = None,
               recorded: Mapping | None = None) -> dict:
    """Train ``lm`` ``iterations`` more (evaluating when due and at the end) and return the recording as a dict
    (the format above), keeping the completions of the iterations in ``completions_at``. ``on_iteration(lm,
    kept completions)`` after each iteration can save what is recorded so far (``recording``)."""
    start = time.perf_counter()
    kept: dict[int, list] = {}
    if not lm.accuracy:
        lm.evaluate_now()
    target = min(lm.iteration + int(iterations), lm.max_iterations)
    while lm.iteration < target:
        lm.train_one()
        if lm.iteration in completions_at:
            kept[lm.iteration] = [[c.prompt, c.text, c.reward] for c in lm.latest_completions]
        if lm.evaluation_due or lm.iteration == target:
            lm.evaluate_now()
        if on_iteration is not None:
            on_iteration(lm, kept)
    return recording(lm, model, model_name, task_key, kept,
                     {"seconds": time.perf_counter() - start, **dict(recorded or {})})


def machine_cpu() -> str:
    """This machine's processor as /proc/cpuinfo names it, with the matrix instructions that change how torch sums
    products (" with AMX and AVX512-BF16"); elsewhere what ``platform`` knows."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    first_processor = info.split("\n\n", 1)[0]
    fields = dict(line.split(":", 1) for line in first_processor.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    extras = [name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16")) if flag in flags]
    name = fields.get("model name") or platform.machine()
    return f"{name} with {' and '.join(extras)}" if extras else name


def mismatch_explanation(run: "RecordedRun", here: str | None = None) -> str:
    """Why a live reproduction can differ from ``run``, in a sentence that is true for where it runs now
    (``here``: this machine's ``machine_cpu``)."""
    here = machine_cpu() if here is None else here
    recorded_on = run.recorded.get("cpu", "")
    rounding = ("another processor sums matrix products in another order, so the last bits differ, and one sampled "
                "token that flips changes everything after it")
    if recorded_on == here:
        return ("It was recorded on this kind of processor, so the code or the model changed since; "
                "`python scripts/record_run.py` records it again.")
    if recorded_on:
        return (f"It was recorded on {recorded_on}, and this server runs on {here}: {rounding}. "
                "`python scripts/record_run.py` records it on this machine.")
    return (f"The recording does not say which processor made it; this server runs on {here}. Either {rounding}, "
            "or the code or the model changed since. `python scripts/record_run.py` records it on this machine.")


def _close(recorded: float, live: float) -> bool:
    return abs(recorded - live) <= REPRODUCE_ABS + REPRODUCE_REL * abs(recorded)


def reproduction(run: RecordedRun, live_columns: Mapping, live_accuracy: Sequence[tuple[int, float]] = ()
                 ) -> list[dict]:
    """One row per live iteration (0: the start accuracy): the recorded and live numbers side by side, the
    largest absolute difference of the iteration's metrics, and whether every number matches: |recorded - live|
    <= REPRODUCE_ABS + REPRODUCE_REL |recorded|."""
    rows = []
    recorded_acc = dict(run.accuracy)
    for iteration, live_acc in live_accuracy:
        if iteration == 0 and 0 in recorded_acc:
            rows.append({"iteration": 0, "quantity": "start accuracy", "recorded": recorded_acc[0], "live": live_acc,
                         "largest difference": abs(recorded_acc[0] - live_acc),
                         "match": _close(recorded_acc[0], live_acc)})
    for i, iteration in enumerate(live_columns.get("iteration", [])):
        if iteration > run.iterations:
            break
        j = iteration - 1
        pairs = [(run.columns[m][j], live_columns[m][i]) for m in RECORD_METRICS]
        rows.append({"iteration": iteration, "quantity": "reward, KL, loss, clip",
                     "recorded": run.columns["mean_reward"][j], "live": live_columns["mean_reward"][i],
                     "recorded loss": run.columns["loss"][j], "live loss": live_columns["loss"][i],
                     "largest difference": max(abs(a - b) for a, b in pairs),
                     "match": all(_close(a, b) for a, b in pairs)})
    return rows
