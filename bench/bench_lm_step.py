"""How long does one GRPO iteration on a language model take, against bare torch doing the same work?

    python bench/bench_lm_step.py                                   # built-in, G = 8, 24 new tokens
    python bench/bench_lm_step.py --model smollm2 --group-size 4 --new-tokens 16
    python bench/bench_lm_step.py --model hf --source /path/to/model

"ours" is ``grpo_iteration`` exactly as the app calls it (mu = 1, beta = 0.04):
sample the group, score it, log-probs under pi_old and pi_ref, one
forward/backward of the GRPO loss, one optimizer step, and the copies of the
trainable state the trace keeps; once in the app's default precision and once
in float32 (``--precisions``).  The "floor" is the straightforward transformers
loop in the same process, in float32: the G copies of the prompt read together,
one token a step with the KV cache, then one forward/backward of the same model
on the G whole sequences (no pi_ref forward, no optimizer step).  To compare
equal work, EOS does not stop sampling here: every completion has exactly
--new-tokens tokens.  All lines are measured in turn, one repeat of each, so that
load from other processes hits them alike.

Also prints each extra session's memory: resident memory after building
--sessions more sessions (own policy + one iteration's trace) divided by
their number.  The last line is

    lm_step model=<name> precision=<p> median_ms=<x> floor_ms=<y> ratio=<x/y>

for the first of --precisions.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from grpo_viz.config import Settings  # noqa: E402
from grpo_viz.policies.loading import load_model, make_policy  # noqa: E402
from grpo_viz.stepper import StepRun, grpo_iteration, make_generator  # noqa: E402
from grpo_viz.tasks import TASKS  # noqa: E402


def no_eos(policy) -> None:
    """Sample exactly max_new_tokens tokens: an id that never occurs marks the end."""
    policy.tokenizer.eos_ids = (-1,)


@torch.no_grad()
def floor_sampling(model, prompt_ids, group_size, new_tokens, generator, temperature):
    x = torch.tensor([prompt_ids]).expand(group_size, -1)
    out = model(input_ids=x, use_cache=True)
    logits = out.logits[:, -1]
    tokens = []
    for step in range(new_tokens):
        nxt = torch.multinomial(torch.softmax(logits.float() / temperature, -1), 1, generator=generator)
        tokens.append(nxt)
        if step == new_tokens - 1:
            break
        out = model(input_ids=nxt, cache=out.cache, use_cache=True)
        logits = out.logits[:, -1]
    return torch.cat(tokens, dim=1)


def floor_step(model, params, prompt_ids, group_size, new_tokens, seed, temperature):
    """Bare torch: the same sampling, then one forward/backward of a policy-gradient loss."""
    ids = floor_sampling(model, prompt_ids, group_size, new_tokens, make_generator(seed, 0), temperature)
    x = torch.cat([torch.tensor([prompt_ids]).expand(group_size, -1), ids[:, :-1]], dim=1)
    logits = model(input_ids=x, use_cache=False, logits_to_keep=new_tokens).logits[:, -new_tokens:]
    logp = torch.log_softmax(logits.float() / temperature, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    loss = -(logp * torch.randn(group_size, 1)).mean()
    loss.backward()
    for p in params:
        p.grad = None
    return ids


@torch.no_grad()
def precision_gap(loaded, task, groups: int, group_size: int, new_tokens: int) -> None:
    """How far bfloat16 per-token log-probs sit from float32 ones on real groups: ``groups`` groups of the task's
    prompts sampled in float32 (EOS stops them, as in the app), both precisions scoring the same tokens."""
    policy = make_policy(loaded, max_new_tokens=new_tokens, precision="float32")
    if not policy.can_use_bfloat16:
        return
    gaps, sums = [], []
    for g in range(groups):
        policy.set_precision("float32")
        group = policy.sample_group(task.prompts(g, 0, chat=loaded.chat)[:1], group_size, make_generator(g, 0), 1.0)
        exact = policy.log_probs(group, 1.0)
        policy.set_precision("bfloat16")
        gap = (policy.log_probs(group, 1.0) - exact)[group.mask.bool()]
        gaps.append(gap.abs())
        sums.append(((policy.log_probs(group, 1.0) - exact) * group.mask).sum(-1).abs())
    gaps, sums = torch.cat(gaps), torch.cat(sums)
    print(f"bfloat16 - float32 log-probs, {gaps.numel()} sampled tokens in {groups} groups of {group_size}: "
          f"|gap| median {gaps.median():.4f}, mean {gaps.mean():.4f}, p99 {gaps.quantile(0.99):.4f}, "
          f"max {gaps.max():.4f}; per completion |sum of gaps| median {sums.median():.4f}, max {sums.max():.4f}")


def rss_mb() -> float:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin", choices=("builtin", "smollm2", "hf"))
    ap.add_argument("--source", default="", help="folder or cached hub id for --model hf")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sessions", type=int, default=4, help="extra sessions for the memory measurement (0 = skip)")
    ap.add_argument("--gap-groups", type=int, default=0,
                    help="also measure bfloat16's log-prob gap to float32 on this many sampled groups (0 = skip)")
    ap.add_argument("--precisions", nargs="+", default=[Settings.lm_precision, "float32"],
                    choices=("float32", "bfloat16"), help="ours in each of these (the first is the last line's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    loaded = load_model(args.model, args.source)
    load_s = time.perf_counter() - t0
    print(f"model {loaded.name}: {loaded.num_parameters / 1e6:.2f}M parameters, loaded in {load_s:.1f} s "
          f"({loaded.source})")
    task = TASKS["sum"]
    prompt = task.prompts(0, 0, chat=loaded.chat)
    policies = {}
    for precision in args.precisions:
        policies[precision] = make_policy(loaded, max_new_tokens=args.new_tokens, precision=precision)
        no_eos(policies[precision])
    floor_policy = make_policy(loaded, max_new_tokens=args.new_tokens, precision="float32")
    settings = replace(Settings(), group_size=args.group_size, mu=1, beta=0.04)
    prompt_ids = floor_policy.tokenizer.encode_prompt(prompt[0])
    trainable = floor_policy.parameters()
    print(f"prompt {prompt[0]!r} ({len(prompt_ids)} tokens), G = {args.group_size}, {args.new_tokens} new tokens, "
          f"{sum(p.numel() for p in trainable) / 1e6:.3f}M trainable parameters, {args.threads} threads; "
          f"ours in {', '.join(f'{p} (runs {policies[p].precision})' for p in policies)}")

    if args.gap_groups:
        precision_gap(loaded, task, args.gap_groups, args.group_size, args.new_tokens)
    if not args.repeats:
        return
    times = {name: [] for name in [*policies, "floor"]}
    for k in range(args.warmup + args.repeats):
        for precision, policy in policies.items():
            t = time.perf_counter()
            grpo_iteration(policy, task.reward, replace(settings, lm_precision=precision), make_generator(k, 0),
                           prompts=prompt)
            times[precision].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        ids = floor_step(floor_policy.model, trainable, prompt_ids, args.group_size, args.new_tokens, k, 1.0)
        times["floor"].append((time.perf_counter() - t) * 1000)
        assert ids.shape == (args.group_size, args.new_tokens)
    medians = {}
    for name, values in times.items():
        values = values[args.warmup:]
        medians[name] = statistics.median(values)
        label = "floor" if name == "floor" else f"ours {name}"
        ratio = "" if name == "floor" else f", {medians[name] / statistics.median(times['floor'][args.warmup:]):.2f}x the floor"
        print(f"{label + ':':16} median {medians[name]:.1f} ms  (min {min(values):.1f}, max {max(values):.1f}){ratio}")
    main_precision = args.precisions[0]
    median, floor_median = medians[main_precision], medians["floor"]

    if args.sessions:
        before = rss_mb()
        runs = []
        for s in range(args.sessions):
            p = make_policy(loaded, max_new_tokens=args.new_tokens, precision=main_precision)
            run = StepRun(p)
            run.trace(replace(settings, seed=s, lm_precision=main_precision), task.reward, prompt)
            runs.append(run)
        per_session = (rss_mb() - before) / args.sessions
        print(f"memory: {per_session:.1f} MB per extra session (own trainable copy or LoRA adapters, "
              f"the trace of one iteration; resident memory over {args.sessions} sessions)")
    print(f"lm_step model={args.model} precision={main_precision} median_ms={median:.1f} floor_ms={floor_median:.1f} "
          f"ratio={median / floor_median:.2f}")


if __name__ == "__main__":
    main()
