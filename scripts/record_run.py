"""Record a long language-model GRPO run into assets/runs/, for the Training page to show at once.

    python scripts/record_run.py                                    # built-in model, 500 iterations
    python scripts/record_run.py --model smollm2 --iterations 200   # SmolLM2 + LoRA, on its default task

Each iteration is an ``LMTraining`` iteration exactly as Training -> Language model trains it, with the page's
defaults unless told otherwise (the model's default task and Adam step, LM_PROMPTS_PER_ITERATION prompts x G,
the sidebar's default settings, an evaluation every LM_EVAL_EVERY iterations, the worker's torch threads), so the page's "Reproduce" button can train the first iterations again live and compare them number
by number. The file is JSON (format "grpo-viz recorded run 1", documented in ``grpo_viz.training`` above
``RecordedRun``): the settings, one value per iteration of mean reward, true reward, KL, loss, clip fractions and
seconds, the accuracy at each evaluation, and the completions of a few iterations. At most ~1 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from grpo_viz.config import Settings, default_lm_lr  # noqa: E402
from grpo_viz.policies.loading import load_model, make_policy  # noqa: E402
from grpo_viz.tasks import TASKS, default_task  # noqa: E402
from grpo_viz.training import (LM_EVAL_EVERY, LM_EVAL_PROBLEMS, LM_EVAL_SAMPLES, LM_PROMPTS_PER_ITERATION,  # noqa: E402
                               LM_WORKER_THREADS, RUNS_DIR, LMTraining, RecordedRun, record_run, recording)

MAX_BYTES = 1_000_000


def main() -> None:
    defaults = Settings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin", choices=("builtin", "smollm2"))
    ap.add_argument("--task", default=None, help="default: the model's on the page", choices=sorted(k for k, t in TASKS.items() if t.arithmetic))
    ap.add_argument("--iterations", type=int, default=None, help="default: 500 built-in, 200 SmolLM2")
    ap.add_argument("--prompts", type=int, default=LM_PROMPTS_PER_ITERATION, help="prompts (groups) per iteration")
    ap.add_argument("--group-size", type=int, default=defaults.group_size)
    ap.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
    ap.add_argument("--lr", type=float, default=None, help="default: the model's on the page")
    ap.add_argument("--seed", type=int, default=defaults.seed)
    ap.add_argument("--eval-every", type=int, default=LM_EVAL_EVERY)
    ap.add_argument("--eval-problems", type=int, default=LM_EVAL_PROBLEMS)
    ap.add_argument("--eval-samples", type=int, default=LM_EVAL_SAMPLES)
    ap.add_argument("--train-on-eval", action="store_true", help="draw training prompts from the evaluation's "
                    "sums too (default: they are held out, as on the page)")
    ap.add_argument("--completions-every", type=int, default=None, help="keep the completions of every k-th "
                    "iteration (default: about 10 iterations in all, the first included)")
    ap.add_argument("--save-every", type=int, default=10, help="write what is recorded so far every k iterations "
                    "(0: only at the end)")
    ap.add_argument("--threads", type=int, default=LM_WORKER_THREADS)
    ap.add_argument("--out", default=None, help=f"default: {RUNS_DIR.relative_to(ROOT)}/<model>_<task>.json")
    args = ap.parse_args()
    args.task = args.task or default_task(args.model)
    args.lr = args.lr or default_lm_lr(args.model)
    torch.set_num_threads(args.threads)
    iterations = args.iterations or (500 if args.model == "builtin" else 200)
    every = args.completions_every or max(1, iterations // 10)

    loaded = load_model(args.model)
    settings = replace(defaults, group_size=args.group_size, max_new_tokens=args.max_new_tokens, lm_lr=args.lr,
                       seed=args.seed)
    lm = LMTraining(make_policy(loaded, max_new_tokens=args.max_new_tokens), TASKS[args.task], settings,
                    chat=loaded.chat, prompts_per_iteration=args.prompts, eval_every=args.eval_every,
                    max_iterations=iterations, eval_problems=args.eval_problems, eval_samples=args.eval_samples,
                    held_out=not args.train_on_eval)
    out = Path(args.out) if args.out else RUNS_DIR / f"{args.model}_{args.task}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    started = time.time()

    def save(data: dict) -> int:
        text = json.dumps(data, separators=(",", ":"))
        size = len(text.encode())
        if size > MAX_BYTES:
            raise SystemExit(f"The recording is {size} bytes, over {MAX_BYTES}: keep fewer completions.")
        out.write_text(text)
        return size

    def report(run: LMTraining, kept: dict) -> None:
        acc = run.accuracy[-1]
        print(f"iteration {run.iteration}/{iterations}: reward {run.columns()['mean_reward'][-1]:.3f}, "
              f"accuracy {acc[1]:.3f} at {acc[0]} ({time.time() - started:.0f} s)", flush=True)
        if args.save_every and run.iteration % args.save_every == 0:  # a slow run stopped early keeps what it did
            save(recording(run, args.model, loaded.name, args.task, kept,
                           {"date": date.today().isoformat(), "commit": commit, "partial": True,
                            "seconds": time.time() - started}))

    data = record_run(lm, iterations, args.model, loaded.name, args.task,
                      completions_at=[1, *range(every, iterations + 1, every)], on_iteration=report,
                      recorded={"date": date.today().isoformat(), "commit": commit})
    size = save(data)
    run = RecordedRun.load(out)  # it reads back
    print(f"wrote {out} ({size} bytes): {run.iterations} iterations, "
          f"{run.seconds_per_iteration:.2f} s an iteration, accuracy {run.accuracy[0][1]:.3f} -> "
          f"{run.accuracy[-1][1]:.3f}")


if __name__ == "__main__":
    main()
