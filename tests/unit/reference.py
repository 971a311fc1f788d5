"""An independent, loop-by-loop NumPy reading of MATH.md, used only to check grpo_viz.objectives."""

from __future__ import annotations

import numpy as np


def advantages(rewards, G, scale="group"):
    r = np.asarray(rewards, dtype=np.float64)
    out = np.zeros_like(r)
    batch_std = np.std(r, ddof=1) if len(r) > 1 else 0.0
    for g in range(len(r) // G):
        block = r[g * G:(g + 1) * G]
        mean, std = block.mean(), np.std(block, ddof=1)
        for j in range(G):
            if block.max() == block.min():
                a = 0.0
            elif scale == "group":
                a = (block[j] - mean) / (std + 1e-4)
            elif scale == "batch":
                a = (block[j] - mean) / (batch_std + 1e-4)
            else:
                a = block[j] - mean
            out[g * G + j] = a
    return out


def kl(logp, ref, estimator):
    d = ref - logp
    return {"k1": -d, "k2": d * d / 2, "k3": np.exp(d) - d - 1}[estimator]


def grpo(logp, old, ref, A, mask, eps_low=0.2, eps_high=None, beta=0.0, loss_type="grpo", level="token",
         max_len=None, kl_ratio_correction=False):
    eps_high = eps_low if eps_high is None else eps_high
    B, T = logp.shape
    max_len = T if max_len is None else max_len
    L = np.zeros((B, T))
    W = np.zeros((B, T))
    low = high = n = 0
    for i in range(B):
        n_i = mask[i].sum()
        seq = sum(mask[i, t] * (logp[i, t] - old[i, t]) for t in range(T)) / max(n_i, 1)
        if level == "sequence":  # one ratio per completion, so each completion counts once in the clip fractions
            w = np.exp(seq)
            n += 1
            low += A[i] < 0 and w < 1 - eps_low
            high += A[i] > 0 and w > 1 + eps_high
        for t in range(T):
            w = np.exp(seq) if level == "sequence" else np.exp(logp[i, t] - old[i, t])
            wc = min(max(w, 1 - eps_low), 1 + eps_high)
            P = -min(w * A[i], wc * A[i])
            if beta != 0:
                k = kl(logp[i, t], ref[i, t], "k3")
                if kl_ratio_correction:
                    k *= w
                P += beta * k
            L[i, t], W[i, t] = P, w
            if mask[i, t] and level == "token":
                n += 1
                low += A[i] < 0 and w < 1 - eps_low
                high += A[i] > 0 and w > 1 + eps_high
    if loss_type == "grpo":
        loss = np.mean([(L[i] * mask[i]).sum() / max(mask[i].sum(), 1) for i in range(B)])
    elif loss_type in ("bnpo", "dapo"):
        loss = (L * mask).sum() / max(mask.sum(), 1)
    else:
        loss = (L * mask).sum() / (B * max_len)
    return loss, W, L, low / max(n, 1), high / max(n, 1)


def gae(rew, V, mask, gamma=1.0, lam=0.95):
    B, T = rew.shape
    A = np.zeros((B, T))
    for i in range(B):
        n = int(mask[i].sum())
        nxt_a = 0.0
        for t in reversed(range(n)):
            nxt_v = V[i, t + 1] if t + 1 < n else 0.0
            delta = rew[i, t] + gamma * nxt_v - V[i, t]
            nxt_a = delta + gamma * lam * nxt_a
            A[i, t] = nxt_a
    R = (A + V) * mask
    return A, R


def ppo(logp, old, A, V, V_old, R, mask, eps=0.2, c_v=0.2, vf_coef=0.1, whiten=True):
    m = mask.astype(bool)
    A = A.copy()
    if whiten and m.sum() >= 2:
        vals = A[m]
        A = (A - vals.mean()) / np.sqrt(np.var(vals, ddof=1) + 1e-8)
    w = np.exp(logp - old)
    pg = np.maximum(-A * w, -A * np.clip(w, 1 - eps, 1 + eps))[m].mean()
    Vc = np.clip(V, V_old - c_v, V_old + c_v)
    vf = 0.5 * np.maximum((V - R) ** 2, (Vc - R) ** 2)[m].mean()
    return pg + vf_coef * vf, pg, vf
