"""How fast does GRPO make a language model good at its task?  Start accuracy, then iterations to a target.

    python scripts/measure_lm_grpo.py                       # built-in model, sums, G = 8
    python scripts/measure_lm_grpo.py --model smollm2 --iterations 20 --problems 20 --group-size 4

Each iteration is one ``StepRun`` iteration exactly as the app runs it (one
prompt, G completions, mu inner updates, ``grpo_iteration``), then ``advance``.
Accuracy is the task's true reward averaged over sampled completions (T = 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from grpo_viz.config import Settings  # noqa: E402
from grpo_viz.policies.loading import load_model, make_policy  # noqa: E402
from grpo_viz.stepper import StepRun  # noqa: E402
from grpo_viz.tasks import TASKS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin", choices=("builtin", "smollm2", "hf"))
    ap.add_argument("--source", default="", help="folder or cached hub id for --model hf")
    ap.add_argument("--task", default="sum", choices=sorted(TASKS))
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=1, help="prompts (groups) per iteration")
    ap.add_argument("--lr", type=float, default=Settings().lm_lr)
    ap.add_argument("--mu", type=int, default=1)
    ap.add_argument("--beta", type=float, default=0.04)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--problems", type=int, default=100, help="sums in the accuracy evaluation")
    ap.add_argument("--samples", type=int, default=8, help="samples per sum in the evaluation")
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    loaded = load_model(args.model, args.source)
    policy = make_policy(loaded, max_new_tokens=args.max_new_tokens)
    task = TASKS[args.task]
    chat = loaded.chat
    settings = replace(Settings(), group_size=args.group_size, lm_lr=args.lr, mu=args.mu, beta=args.beta, seed=args.seed)
    run = StepRun(policy)

    def accuracy() -> float:
        return task.accuracy(policy, samples=args.samples, seed=12345, problems=args.problems, chat=chat)

    start_acc = accuracy()
    print(f"model={loaded.name} task={task.key} G={args.group_size} lr={args.lr} mu={args.mu} beta={args.beta} "
          f"start accuracy {start_acc:.3f}", flush=True)
    reached, t0 = None, time.time()
    for it in range(1, args.iterations + 1):
        prompts = task.prompts(args.seed, run.iteration, n=args.prompts, chat=chat)
        run.trace(settings, task.reward, prompts)
        run.advance()
        if it % args.eval_every == 0:
            acc = accuracy()
            print(f"iteration {it}: accuracy {acc:.3f} ({time.time() - t0:.0f} s)", flush=True)
            if reached is None and acc >= args.target:
                reached = it
                break
    print(f"lm_grpo model={loaded.name} start_accuracy={start_acc:.3f} "
          f"iterations_to_{args.target:g}={reached if reached is not None else f'>{args.iterations}'}")


if __name__ == "__main__":
    main()
