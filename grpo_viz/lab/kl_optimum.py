"""The KL-regularized optimum pi*(w) ∝ pi_ref(w) exp(r(w) / beta), and where GRPO with k3 in the loss settles instead.

PPO puts -beta * k1 in the reward, so its expected objective is E_pi[r] - beta KL(pi || pi_ref), maximized by
pi*. GRPO adds beta * k3 to the loss, whose expected gradient is that of KL(pi_ref || pi) (the other direction,
see ``kl_estimators.expected_gradients``), and divides its advantages by the group's sigma. Its fixed point is
found here exactly: the expected gradient of ``objectives.grpo_loss`` over every possible group (all
C(G+2, 2) word counts of a group of G, with their multinomial probabilities), set to zero.
"""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import product

import torch
from scipy.optimize import brentq, root

from .. import charts
from ..config import TOY_REWARDS, TOY_START_PROBS, TOY_WORDS, Settings
from ..objectives import group_advantages, grpo_loss
from .toy_batch import table_rewards, train_seeds
from ..ppo import ToyValue, ppo_iteration
from ..policies.toy import ToyPolicy
from ..stepper import make_generator
from ..tasks import word_reward
from . import Experiment, LabResult, row

BETA = 0.5


def kl_optimum(ref_probs, rewards, beta: float) -> torch.Tensor:
    r"""pi*(w) = pi_ref(w) exp(r(w) / beta) / sum_v pi_ref(v) exp(r(v) / beta), the maximizer of
    E_pi[r] - beta KL(pi || pi_ref)."""
    ref = torch.as_tensor(ref_probs, dtype=torch.float64)
    r = torch.as_tensor(rewards, dtype=torch.float64)
    return torch.softmax(torch.log(ref) + r / beta, dim=-1)


def all_groups(group_size: int, words: int = 3) -> torch.Tensor:
    """Every multiset of ``group_size`` word ids as sorted rows [C(G + words - 1, words - 1), G]."""
    rows = [c for c in product(range(group_size + 1), repeat=words) if sum(c) == group_size]
    return torch.tensor([[w for w, n in enumerate(c) for _ in range(n)] for c in rows]), torch.tensor(rows)


def expected_grpo_gradient(logits: torch.Tensor, ref_logits: torch.Tensor, rewards, settings: Settings,
                           groups: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    r"""E over groups of grad_z of the GRPO loss (on-policy, mu = 1, loss_type "grpo"), exactly:

    sum_n P(n) grad_z [ (1/G) sum_i ( -A_i log pi(w_i) + beta k3_i ) ],  P(n) = G! / prod_w n_w! prod_w pi(w)^{n_w},

    over every count vector n of a group of G. The per-token loss is ``objectives.grpo_loss``'s; on-policy the
    ratio's gradient is grad log pi.
    """
    ids, counts = groups if groups is not None else all_groups(settings.group_size, len(logits))
    G = settings.group_size
    z = logits.detach().clone().requires_grad_(True)
    logp_all = torch.log_softmax(z, dim=-1)
    probs = torch.exp(logp_all.detach())
    log_multinomial = (math.lgamma(G + 1) - torch.lgamma(counts.to(torch.float64) + 1).sum(dim=1)
                       + (counts * torch.log(probs)).sum(dim=1))
    weight = torch.exp(log_multinomial)  # [groups]
    flat = ids.flatten()
    rewards_t = torch.as_tensor(rewards, dtype=torch.float64)[flat]
    advantages = group_advantages(rewards_t, G, settings.scale_rewards)
    logp = logp_all[flat].unsqueeze(-1)
    ref_logp = torch.log_softmax(ref_logits, dim=-1)[flat].unsqueeze(-1)
    trace = grpo_loss(logp, None, ref_logp, advantages, torch.ones_like(logp), beta=settings.beta,
                      epsilon_low=settings.epsilon_low, epsilon_high=settings.epsilon_high)
    per_group = trace.per_token_loss.view(-1, G).mean(dim=1)
    (grad,) = torch.autograd.grad((weight * per_group).sum(), z)
    return grad


def grpo_fixed_point(ref_probs, rewards, settings: Settings) -> torch.Tensor:
    """The policy where the expected GRPO gradient is zero: solve E[grad_z loss](z) = 0 for z (z_3 fixed at 0,
    softmax being shift-invariant), starting from ``sigma_scaled_forward_kl_point`` (from pi_ref the search can
    wander to a corner of the simplex, where the gradient also vanishes). Returns pi at the root."""
    ref_logits = torch.log(torch.as_tensor(ref_probs, dtype=torch.float64))
    groups = all_groups(settings.group_size, len(ref_logits))

    def f(free):
        z = torch.tensor([*free, 0.0], dtype=torch.float64)
        return expected_grpo_gradient(z, ref_logits, rewards, settings, groups)[:-1].numpy()

    guess = torch.log(sigma_scaled_forward_kl_point(ref_probs, rewards, settings.beta)[0])
    solution = root(f, (guess - guess[-1])[:-1].numpy(), tol=1e-12)
    if not solution.success:
        raise ValueError(f"The fixed point search did not converge: {solution.message}")
    return torch.softmax(torch.tensor([*solution.x, 0.0], dtype=torch.float64), dim=-1)


def sigma_scaled_forward_kl_point(ref_probs, rewards, beta: float) -> tuple[torch.Tensor, float]:
    r"""The population version of GRPO's condition: pi(w) (r(w) - E_pi r) / sigma_pi = beta (pi(w) - pi_ref(w)).

    With b = beta * sigma_pi fixed, pi(w) = pi_ref(w) / (1 - (r(w) - c) / b) for the c that normalizes it; sigma_pi is
    then solved for self-consistently. Returns (pi, sigma_pi)."""
    ref = torch.as_tensor(ref_probs, dtype=torch.float64)
    r = torch.as_tensor(rewards, dtype=torch.float64)

    def policy(sigma):
        b = beta * sigma
        # pi(w) = ref(w) b / (b - r(w) + c), c > max r - b so every term is positive; sum = 1 fixes c
        c = brentq(lambda c: float((ref * b / (b - r + c)).sum()) - 1, float(r.max() - b) + 1e-12, float(r.max()) + 1e3)
        return ref * b / (b - r + c)

    def gap(sigma):
        pi = policy(sigma)
        return float(torch.sqrt((pi * (r - (pi * r).sum()) ** 2).sum())) - sigma

    sigma = brentq(gap, 1e-6, float(r.max() - r.min()))
    return policy(sigma), sigma


def ppo_runs(beta: float, seeds, iterations: int) -> torch.Tensor:
    """PPO (KL as -beta * k1 in the reward) on the toy from pi_ref, per seed: probabilities [iterations + 1, S, 3]."""
    settings = Settings(beta=beta, kl_estimator="k1")
    reward_fn = word_reward(TOY_WORDS, TOY_REWARDS)
    out = []
    for seed in seeds:
        policy, value = ToyPolicy(), ToyValue()
        path = [policy.probs()]
        for k in range(iterations):
            trace = ppo_iteration(policy, value, reward_fn, replace(settings, seed=seed), make_generator(seed, k, 0))
            policy.load_trainable_state(trace.state_after)
            value.load_trainable_state(trace.value_state_after)
            path.append(policy.probs())
        out.append(torch.stack(path))
    return torch.stack(out, dim=1)


def _path_columns(probs: torch.Tensor) -> dict[str, list]:
    return {"iteration": list(range(len(probs))), **{f"p_{w}": probs[:, j].tolist() for j, w in enumerate(TOY_WORDS)}}


def optimum_chart(ref, points: dict[str, torch.Tensor], paths: dict[str, torch.Tensor]) -> "charts.go.Figure":
    """The simplex with the seed-mean path of each run and the two analytic points."""
    fig = charts.simplex_chart(TOY_WORDS, {k: _path_columns(v) for k, v in paths.items()}, ref.tolist(),
                               title="Where each algorithm heads (mean over seeds) and where theory puts it")
    for (name, p), symbol in zip(points.items(), ("diamond", "x", "cross")):
        fig.add_trace(dict(type="scatterternary", name=name, a=[float(p[0])], b=[float(p[1])], c=[float(p[2])],
                           mode="markers", marker=dict(symbol=symbol, size=16, color="black")))
    return fig


def run(beta: float = BETA, seeds: int = 8, iterations: int = 150, ppo_seeds: int = 2) -> LabResult:
    """pi*, GRPO's exact fixed point, and the seed-mean endpoints of GRPO and PPO runs on the toy."""
    ref = torch.tensor(TOY_START_PROBS, dtype=torch.float64)
    settings = Settings(beta=beta)
    star = kl_optimum(ref, TOY_REWARDS, beta)
    fixed = grpo_fixed_point(ref, TOY_REWARDS, settings)
    approx, sigma = sigma_scaled_forward_kl_point(ref, TOY_REWARDS, beta)
    grpo = train_seeds(ref.tolist(), table_rewards(TOY_REWARDS), settings, list(range(seeds)), iterations)["probs"]
    ppo = ppo_runs(beta, range(ppo_seeds), iterations)
    tail = iterations // 3  # the last third: past the transient
    grpo_end, ppo_end = grpo[-tail:].mean(dim=(0, 1)), ppo[-tail:].mean(dim=(0, 1))
    grpo_sd = grpo[-tail:].mean(dim=0).std(dim=0) / math.sqrt(seeds)
    ppo_sd = ppo[-tail:].mean(dim=0).std(dim=0) / math.sqrt(ppo_seeds)
    w = TOY_WORDS
    table = [row(f"π*({w[j]}) = π_ref e^(r/β)/Z, β = {beta:g}", round(float(star[j]), 6),
                 round(float(ppo_end[j]), 4), f"PPO, {ppo_seeds} seeds, last {tail} its: ±{3 * float(ppo_sd[j]):.4f} (3 s.e.)")
             for j in range(3)]
    table += [row(f"GRPO fixed point π({w[j]}) (solved)", round(float(fixed[j]), 6), round(float(grpo_end[j]), 4),
                  f"GRPO, {seeds} seeds, last {tail} its: ±{3 * float(grpo_sd[j]):.4f} (3 s.e.)") for j in range(3)]
    best = int(torch.argmax(torch.as_tensor(TOY_REWARDS)))
    text = [
        f"With β = {beta:g}, PPO's target is π* = ({', '.join(f'{float(p):.3f}' for p in star)}); its runs end, on average over "
        f"the last {tail} iterations, at ({', '.join(f'{float(p):.3f}' for p in ppo_end)}).",
        f"GRPO with β·k3 in the loss settles where its expected gradient vanishes: ({', '.join(f'{float(p):.3f}' for p in fixed)}), "
        f"{float(fixed[best]):.3f} on “{w[best]}” against π*'s {float(star[best]):.3f}; its runs average "
        f"({', '.join(f'{float(p):.3f}' for p in grpo_end)}).",
        f"Why: k3's expected gradient is that of KL(π_ref‖π_θ), and GRPO divides advantages by σ but not the KL term, so its "
        f"condition is π(w)(r(w) − E r)/σ = β(π(w) − π_ref(w)): solved with σ_π = {sigma:.3f} (β·σ = {beta * sigma:.3f}) it "
        f"gives ({', '.join(f'{float(p):.3f}' for p in approx)}), within {float((approx - fixed).abs().max()):.3f} of the "
        f"exact fixed point (the rest: the sample σ of a group of {settings.group_size}, and groups whose rewards are all equal).",
    ]
    points = {"π* (PPO's target)": star, "GRPO fixed point": fixed}
    figures = [optimum_chart(ref, points, {"GRPO (k3 in loss)": grpo.mean(dim=1), "PPO (k1 in reward)": ppo.mean(dim=1)}),
               charts.distribution_chart(w, {"π_ref": ref.tolist(), "π*": star.tolist(), "GRPO fixed point": fixed.tolist(),
                                             "GRPO runs": grpo_end.tolist(), "PPO runs": ppo_end.tolist()},
                                         title="The policies side by side")]
    return LabResult(figures=figures, table=table, text=text)


EXPERIMENT = Experiment(
    key="kl_optimum",
    title="2. The KL-regularized optimum",
    claim="Maximizing E[r] − β·KL(π‖π_ref) has the solution π*(w) ∝ π_ref(w)·e^(r(w)/β); PPO with the KL in the reward "
          "heads there, GRPO with k3 in the loss settles elsewhere.",
    source="Rafailov et al. 2023, DPO (eq. 4); Shao et al. 2024, DeepSeekMath (GRPO's k3 in the loss)",
    link="https://arxiv.org/abs/2305.18290",
    run=run,
    seconds=20.0,
)
