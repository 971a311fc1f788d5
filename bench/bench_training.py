"""Time 500 toy iterations of GRPO and of PPO at default settings, and iterations to 0.9 on the best word.

    python bench/bench_training.py [--iterations 500] [--repeats 3]

Prints one line per algorithm: `train_<alg> iterations=<n> best_s=<t> per_iter_ms=<t/n> to_0.9=<k>`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grpo_viz.config import Settings  # noqa: E402
from grpo_viz.training import TrainingRun, iterations_to_reach  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    TrainingRun("PPO", settings).run(3)  # warm up torch
    for algorithm in ("GRPO", "PPO"):
        times = []
        for _ in range(args.repeats):
            run = TrainingRun(algorithm, settings)
            t0 = time.perf_counter()
            run.run(args.iterations)
            times.append(time.perf_counter() - t0)
        best = min(times)
        reached = iterations_to_reach(run.frame(), "sat", 0.9)
        print(f"train_{algorithm.lower()} iterations={args.iterations} best_s={best:.3f} "
              f"per_iter_ms={1000 * best / args.iterations:.2f} to_0.9={reached}")


if __name__ == "__main__":
    main()
