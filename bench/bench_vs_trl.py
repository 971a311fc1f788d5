"""One SmolLM2 + LoRA GRPO step: ours against TRL's GRPOTrainer taking the same step, in the same run.

    python bench/bench_vs_trl.py                      # G = 4, 16 new tokens, 6 timed steps each
    python bench/bench_vs_trl.py --group-size 8 --new-tokens 24 --steps 4

The same step on both sides: SmolLM2-135M-Instruct (the app's converted folder, float32 weights on disk), LoRA
r = 8, alpha = 16 on q_proj / v_proj, one group of G completions of the sum task's chat prompt, exactly
--new-tokens tokens each (EOS does not stop ours; TRL gets min_new_tokens), mu = 1, beta = 0.04, Adam. TRL runs with
the settings the app exports (``export.trl_config_kwargs`` and ``TRL_PLUMBING``: float32 on the CPU); ours is
``grpo_iteration`` in the app's default precision and in float32 (``--precisions``).

TRL's steps are timed by a trainer callback from ``on_step_begin`` to ``on_step_end`` (generation, rewards, the
reference and policy forwards, backward and the optimizer step); after each, still inside the callback, one of ours
per precision is timed, so that load from other processes hits both alike. The last line is

    vs_trl precision=<p> ours_ms=<x> trl_ms=<y> ratio=<x/y>

for the first of --precisions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from grpo_viz.config import Settings  # noqa: E402
from grpo_viz.export import TRL_PLUMBING, trl_config_kwargs  # noqa: E402
from grpo_viz.policies.loading import convert_smollm2, load_smollm2, make_policy  # noqa: E402
from grpo_viz.stepper import grpo_iteration, make_generator  # noqa: E402
from grpo_viz.tasks import TASKS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6, help="timed steps of each")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", nargs="+", default=[Settings.lm_precision, "float32"],
                    choices=("float32", "bfloat16"), help="ours in each of these (the first is the last line's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)  # TRL's and transformers' own, not ours

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    task = TASKS["sum"]
    loaded = load_smollm2()
    prompt = task.prompts(0, 0, chat=True)
    settings = replace(Settings(), group_size=args.group_size, mu=1, beta=0.04, max_new_tokens=args.new_tokens)
    policies = {}
    for precision in args.precisions:
        policies[precision] = make_policy(loaded, max_new_tokens=args.new_tokens, precision=precision)
        policies[precision].tokenizer.eos_ids = (-1,)  # exactly --new-tokens tokens, as TRL's min_new_tokens
    ours: dict[str, list[float]] = {p: [] for p in policies}
    trl_times: list[float] = []

    def reward(prompts, completions, **kwargs):
        return [0.0 if i % 2 else 1.0 for i in range(len(completions))]  # a spread, so the loss has a gradient

    class Alternate(TrainerCallback):
        """Times TRL's step, then one of ours per precision."""

        def on_step_begin(self, *_, **__):
            self.start = time.perf_counter()

        def on_step_end(self, _args, state, *_, **__):
            trl_times.append((time.perf_counter() - self.start) * 1000)
            for precision, policy in policies.items():
                t = time.perf_counter()
                grpo_iteration(policy, task.reward, replace(settings, lm_precision=precision),
                               make_generator(state.global_step, 0), prompts=prompt)
                ours[precision].append((time.perf_counter() - t) * 1000)

    steps = args.warmup + args.steps
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": prompt[0]}]] * (steps * args.group_size)})
    plumbing = {k: v for k, v, _ in TRL_PLUMBING}
    config = GRPOConfig(output_dir=str(Path("/tmp") / f"bench_vs_trl_{os.getpid()}"), max_steps=steps,
                        **trl_config_kwargs(settings), **plumbing,
                        generation_kwargs={"min_new_tokens": args.new_tokens}, save_strategy="no",
                        dataloader_num_workers=0)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=str(convert_smollm2()), reward_funcs=[reward], args=config, train_dataset=dataset,
                          peft_config=lora, callbacks=[Alternate()])
    torch.set_num_threads(args.threads)  # the trainer's setup may change it
    print(f"SmolLM2-135M-Instruct + LoRA r=8, G = {args.group_size}, {args.new_tokens} new tokens, mu = 1, "
          f"{args.threads} threads, {args.steps} timed steps after {args.warmup}")
    trainer.train()
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    trl_median = statistics.median(trl_times[args.warmup:])
    print(f"TRL GRPOTrainer:  median {trl_median:.1f} ms  (min {min(trl_times[args.warmup:]):.1f}); "
          f"mean completion length {statistics.mean(lengths):.1f} tokens")
    for precision, values in ours.items():
        median = statistics.median(values[args.warmup:])
        print(f"ours {precision + ':':12} median {median:.1f} ms  (min {min(values[args.warmup:]):.1f}), "
              f"{median / trl_median:.2f}x TRL")
    main_precision = args.precisions[0]
    median = statistics.median(ours[main_precision][args.warmup:])
    print(f"vs_trl precision={main_precision} ours_ms={median:.1f} trl_ms={trl_median:.1f} "
          f"ratio={median / trl_median:.2f}")


if __name__ == "__main__":
    main()
