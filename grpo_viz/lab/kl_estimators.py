"""Schulman's KL estimators k1, k2, k3: his Gaussian table by Monte Carlo, on the toy as it trains, and their gradients.

Schulman ("Approximating KL divergence", 2020) estimates KL[q, p] from samples x ~ q with r = p(x) / q(x):
k1 = -log r, k2 = (log r)^2 / 2, k3 = (r - 1) - log r. That is ``objectives.kl_estimate(logp=log q,
ref_logp=log p)`` (its d = ref_logp - logp = log r), the same function GRPO's loss calls with q = pi_theta and
p = pi_ref.
"""

from __future__ import annotations

import math

import torch

from .. import charts
from ..config import Settings, TOY_WORDS
from ..objectives import KL_ESTIMATORS, kl_estimate
from ..policies.toy import ToyPolicy
from ..stepper import make_generator
from ..training import TrainingRun, exact_kl
from . import Experiment, LabResult, row

# His table: p = N(mu, 1) against q = N(0, 1); (bias / true KL, std / true KL) of each estimator.
SCHULMAN_TABLE = {
    0.1: {"k1": (0.0, 20.0), "k2": (0.002, 1.42), "k3": (0.0, 1.42)},
    1.0: {"k1": (0.0, 2.0), "k2": (0.25, 1.73), "k3": (0.0, 1.7)},
}
ESTIMATOR_COLORS = {"k1": "#1f77b4", "k2": "#ff7f0e", "k3": "#2ca02c"}


def gaussian_exact(mu: float) -> dict[str, tuple[float, float]]:
    r"""Exact (bias / KL, std / KL) for q = N(0, 1), p = N(mu, 1), KL[q, p] = mu^2 / 2.

    log r = mu x - mu^2/2 ~ N(-mu^2/2, mu^2), so
    k1: bias 0, std mu            -> std/KL = 2 / mu;
    k2: E = mu^2/2 + mu^4/8        -> bias/KL = mu^2 / 4, std/KL = sqrt(mu^2 + 2);
    k3: E = KL (E[r] = 1), Var = e^{mu^2} - 1 - mu^2 -> std/KL = sqrt(e^{mu^2} - 1 - mu^2) / (mu^2 / 2).
    """
    kl = mu * mu / 2
    return {"k1": (0.0, 2.0 / mu), "k2": (mu * mu / 4, math.sqrt(mu * mu + 2)),
            "k3": (0.0, math.sqrt(math.expm1(mu * mu) - mu * mu) / kl)}


def gaussian_monte_carlo(mu: float, samples: int = 1_000_000, seed: int = 0) -> dict[str, dict[str, float]]:
    r"""(bias / KL, std / KL) of k1, k2, k3 from ``samples`` draws x ~ q = N(0, 1), with their standard errors.

    log q(x) = -x^2/2, log p(x) = -(x - mu)^2/2 (the constant cancels), k = kl_estimate(log q, log p, k).
    s.e. of the mean: sd / sqrt(n); s.e. of the sd (delta method): sqrt(m4 - sd^4) / (2 sd sqrt(n)).
    """
    x = torch.randn(samples, generator=make_generator(seed, int(mu * 1000)), dtype=torch.float64)
    log_q, log_p = -x * x / 2, -(x - mu) ** 2 / 2
    kl = mu * mu / 2
    out = {}
    for k in KL_ESTIMATORS:
        values = kl_estimate(log_q, log_p, k)
        mean, sd = float(values.mean()), float(values.std())
        m4 = float(((values - mean) ** 4).mean())
        out[k] = {"bias": (mean - kl) / kl, "std": sd / kl, "bias_se": sd / math.sqrt(samples) / kl,
                  "std_se": math.sqrt(max(m4 - sd ** 4, 0.0)) / (2 * sd * math.sqrt(samples)) / kl}
    return out


def toy_estimates(probs: torch.Tensor, ref_probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each estimator's value for each of the three words, as a sample of that word would give it: k(w) with
    d = log pi_ref(w) - log pi_theta(w)."""
    logp, ref_logp = torch.log(probs), torch.log(ref_probs)
    return {k: kl_estimate(logp, ref_logp, k) for k in KL_ESTIMATORS}


def expected_gradients(logits: torch.Tensor, ref_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""Exact expected gradient with respect to the logits z of each estimator put in a loss, on-policy.

    E_{w ~ pi_theta}[ grad_z k(w) ] = sum_w pi(w) grad_z k(log pi_theta(w), log pi_ref(w)), with the samples'
    probabilities pi(w) held fixed (they are the sampling weights, not part of the loss). Analytically:
    k1: sum_w pi grad log pi = 0;  k2: sum_w pi log(pi/ref) grad log pi = grad KL(pi || ref);
    k3: sum_w (pi - ref) grad log pi = grad KL(ref || pi) = pi - ref. Returned beside the two true gradients.
    """
    z = logits.detach().clone().requires_grad_(True)
    logp = torch.log_softmax(z, dim=-1)
    ref_logp = torch.log_softmax(ref_logits, dim=-1)
    weights = torch.softmax(logits.detach(), dim=-1)
    out = {}
    for k in KL_ESTIMATORS:
        (out[f"E∇{k}"],) = torch.autograd.grad((weights * kl_estimate(logp, ref_logp, k)).sum(), z, retain_graph=True)
    pi = torch.exp(logp)
    (out["∇KL(π_θ‖π_ref)"],) = torch.autograd.grad((pi * (logp - ref_logp)).sum(), z, retain_graph=True)
    (out["∇KL(π_ref‖π_θ)"],) = torch.autograd.grad((torch.exp(ref_logp) * (ref_logp - logp)).sum(), z)
    return out


def training_path(iterations: int = 60, samples: int = 64, every: int = 5, seed: int = 0) -> dict[str, list]:
    r"""GRPO (DeepSeekMath defaults, beta 0.04) on the toy; every ``every`` iterations, the exact
    KL(pi_theta || pi_ref) = sum_w pi log(pi / ref) against ``samples`` draws w ~ pi_theta of k1, k2, k3
    (their mean and sd) and the exact E[k2] = sum_w pi(w) (log pi_ref(w) - log pi(w))^2 / 2."""
    run = TrainingRun("GRPO", Settings(seed=seed))
    ref = run.policy.ref_probs()
    out: dict[str, list] = {"iteration": [], "exact": [], "E[k2]": []}
    for k in KL_ESTIMATORS:
        out[f"{k} mean"], out[f"{k} sd"] = [], []
    for it in range(0, iterations + 1, every):
        run.run(it - run.iteration)
        probs = run.policy.probs()
        values = toy_estimates(probs, ref)
        ids = torch.multinomial(probs, samples, replacement=True, generator=make_generator(seed, it, 7))
        out["iteration"].append(it)
        out["exact"].append(exact_kl(probs, ref))
        out["E[k2]"].append(float((probs * values["k2"]).sum()))
        for k in KL_ESTIMATORS:
            drawn = values[k][ids]
            out[f"{k} mean"].append(float(drawn.mean()))
            out[f"{k} sd"].append(float(drawn.std()))
    out["final_logits"] = run.policy.logits.detach().clone()
    out["ref_logits"] = run.policy.ref_logits.clone()
    return out


# ----------------------------------------------------------------- figures


def path_chart(path: dict[str, list], samples: int) -> "charts.go.Figure":
    """The exact KL and each estimator's sample mean ± one sample sd over training."""
    x = path["iteration"]
    data = [dict(type="scatter", name="exact KL(π_θ‖π_ref)", x=x, y=path["exact"], mode="lines",
                 line=dict(color="black", width=3))]
    for k in KL_ESTIMATORS:
        data.append(dict(type="scatter", name=f"{k}: mean of {samples} samples ± sd", x=x, y=path[f"{k} mean"],
                         mode="markers", marker=dict(color=ESTIMATOR_COLORS[k], size=8),
                         error_y=dict(type="data", array=path[f"{k} sd"], visible=True, thickness=1)))
    data.append(dict(type="scatter", name="exact E[k2]", x=x, y=path["E[k2]"], mode="lines",
                     line=dict(color=ESTIMATOR_COLORS["k2"], dash="dot", width=2)))
    return charts._figure(data, "KL to the reference as GRPO trains the toy: exact against sampled", height=400,
                          legend_below=True, xaxis=dict(title="iteration"), yaxis=dict(title="KL (nats)"))


def per_word_chart(words, values: dict[str, torch.Tensor], probs) -> "charts.go.Figure":
    """What one sample of each word contributes to each estimator at the end of training."""
    labels = [f"{w} (π = {float(p):.3f})" for w, p in zip(words, probs)]
    data = [charts._bar(k, labels, values[k].tolist(), ESTIMATOR_COLORS[k], [charts.signed(v) for v in values[k]])
            for k in KL_ESTIMATORS]
    return charts._figure(data, "One sample's estimate, word by word, at the end (k1 < 0 where π_θ < π_ref)",
                          barmode="group", xaxis=dict(type="category"), yaxis=dict(title="k(w)"))


def gradient_chart(words, grads: dict[str, torch.Tensor]) -> "charts.go.Figure":
    """Expected gradient of each estimator in the loss, beside the gradients of the two KL directions."""
    palette = {**ESTIMATOR_COLORS, "∇KL(π_θ‖π_ref)": "#7f7f7f", "∇KL(π_ref‖π_θ)": "#9467bd"}
    data = [charts._bar(name, [f"z_{w}" for w in words], g.tolist(), palette.get(name.replace("E∇", ""), "#7f7f7f"),
                        [charts.signed(v) for v in g]) for name, g in grads.items()]
    return charts._figure(data, "Expected gradient with respect to the logits, each estimator in the loss",
                          barmode="group", xaxis=dict(type="category"), yaxis=dict(title="∂ loss / ∂ z"))


# ----------------------------------------------------------------- the experiment


def run(samples: int = 1_000_000, seed: int = 0, iterations: int = 60, toy_samples: int = 64) -> LabResult:
    """Schulman's table by Monte Carlo, the toy's exact vs sampled KL over training, and the estimators' gradients."""
    table = []
    for mu, paper in SCHULMAN_TABLE.items():
        mc, exact = gaussian_monte_carlo(mu, samples, seed), gaussian_exact(mu)
        for k in KL_ESTIMATORS:
            for j, stat in enumerate(("bias", "std")):
                se = mc[k][f"{stat}_se"]
                table.append({**row(f"p = N({mu:g}, 1), {k}: {stat} / true KL", paper[k][j], round(mc[k][stat], 4),
                                    f"±{4 * se:.4f} (4 s.e., {samples:,} samples)"),
                              "exact": round(exact[k][j], 4)})
    path = training_path(iterations, toy_samples, seed=seed)
    words = TOY_WORDS
    policy = ToyPolicy(logits=path["final_logits"])
    probs, ref = policy.probs(), torch.softmax(path["ref_logits"], dim=-1)
    values = toy_estimates(probs, ref)
    grads = expected_gradients(path["final_logits"], path["ref_logits"])
    reverse, forward = grads["∇KL(π_θ‖π_ref)"], grads["∇KL(π_ref‖π_θ)"]
    k1_norm = float(grads["E∇k1"].norm())
    k2_gap = float((grads["E∇k2"] - reverse).norm())
    k3_gap, k3_fwd_gap = float((grads["E∇k3"] - reverse).norm()), float((grads["E∇k3"] - forward).norm())
    table += [
        row("toy: ‖E∇k1‖ on-policy", 0.0, k1_norm, "1e-12"),
        row("toy: ‖E∇k2 − ∇KL(π_θ‖π_ref)‖", 0.0, k2_gap, "1e-12"),
        row("toy: ‖E∇k3 − ∇KL(π_θ‖π_ref)‖ (not 0)", "> 0", k3_gap, "—"),
        row("toy: ‖E∇k3 − ∇KL(π_ref‖π_θ)‖", 0.0, k3_fwd_gap, "1e-12"),
    ]
    neg = [w for w, v in zip(words, values["k1"]) if v < 0]
    end = len(path["iteration"]) - 1
    text = [
        f"Schulman's table, {samples:,} samples from q = N(0, 1): the exact values (last column) are "
        f"k2's bias/KL = μ²/4 and std/KL = √(μ² + 2), k3's std/KL = √(e^(μ²) − 1 − μ²)/(μ²/2); his printed numbers are these, "
        f"rounded.",
        f"On the toy after {path['iteration'][end]} GRPO iterations, KL(π_θ‖π_ref) = {path['exact'][end]:.4f}; "
        f"{toy_samples} samples give k1 = {path['k1 mean'][end]:.4f} ± {path['k1 sd'][end]:.4f} (sd), "
        f"k2 = {path['k2 mean'][end]:.4f} ± {path['k2 sd'][end]:.4f}, k3 = {path['k3 mean'][end]:.4f} ± {path['k3 sd'][end]:.4f}; "
        f"k2's exact mean is {path['E[k2]'][end]:.4f}, biased by {path['E[k2]'][end] - path['exact'][end]:+.4f}.",
        (f"A single sample of {', '.join(neg)} gives a negative k1 (π_θ < π_ref there); k3 is never negative."
         if neg else "No word has π_θ < π_ref here, so no k1 sample is negative."),
        f"In the loss, on-policy: k1's expected gradient has norm {k1_norm:.1e} (zero: E[∇log π] = 0), k2's equals the "
        f"gradient of KL(π_θ‖π_ref) to {k2_gap:.1e}, and k3's misses it by {k3_gap:.4f}: k3's is the gradient of the "
        f"other direction, KL(π_ref‖π_θ) = π_θ − π_ref in the logits (to {k3_fwd_gap:.1e}).",
    ]
    figures = [path_chart(path, toy_samples), per_word_chart(words, values, probs), gradient_chart(words, grads)]
    return LabResult(figures=figures, table=table, text=text)


EXPERIMENT = Experiment(
    key="kl_estimators",
    title="1. KL estimators k1, k2, k3",
    claim="k1 and k3 are unbiased estimates of KL and k3 is never negative, k2 is biased but low-variance; in a loss, "
          "on-policy k1's gradient is zero in expectation, k2's is the gradient of KL(π_θ‖π_ref), and k3's is not.",
    source="John Schulman, “Approximating KL divergence” (2020)",
    link="http://joschu.net/blog/kl-approx.html",
    run=run,
    seconds=1.5,
)
