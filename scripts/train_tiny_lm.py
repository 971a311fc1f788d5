"""Train grpo-viz's built-in language model from scratch and write it to assets/.

    python scripts/train_tiny_lm.py            # about 5 minutes on one CPU core

The script writes its own corpus (fixed seed), so the result is reproducible:
- sentences that start like the toy, "The cat" + sat / slept / barked in the
  toy's starting proportions 0.3 / 0.2 / 0.5, and a few other simple sentences;
- single-digit sums "3+4=7", some of them in the DeepSeek-R1 answer format
  "3+4=<answer>7</answer>".

The sums are written by three kinds of writer, as in text scraped from the web:
- a careful one, "3+4=<answer>7</answer>" (CAREFUL_FRACTION of the sums),
  always right;
- a sloppy one, "3+4=9", right only SLOPPY_CORRECT of the time, otherwise off
  by one or two or random;
- a hedger, "3+4=6 or 7 or 9" (HEDGE_FRACTION), whose last number (the one
  that counts) is right a third of the time.
A model that learns this corpus is a mediocre adder (roughly 40% right when
sampled at T = 1).  Writing carefully is one behaviour shared by every prompt,
so GRPO with a correctness reward can find it in a few dozen iterations, the
way DeepSeek-R1 found that reasoning before answering pays.  The hedger gives
the reward-hacking demo its hack: a length reward prefers "6 or 7 or 9".
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from grpo_viz.config import TOY_START_PROBS, TOY_WORDS  # noqa: E402
from grpo_viz.policies.tiny_gpt import ASSETS, TinyGPT, TinyGPTConfig, WordTokenizer, load_tiny_gpt, save_tiny_gpt  # noqa: E402

CAREFUL_FRACTION = 0.25  # sums written as a+b=<answer>c</answer>, always right
HEDGE_FRACTION = 0.1  # sums written as a+b=x or y or z, the right one among them
SLOPPY_CORRECT = 0.2  # how often a plain a+b=c is right
TOY_ENDINGS = {
    "sat": [" on the mat.", " on the sofa.", " by the door.", " in the sun."],
    "slept": [" on the mat.", " all day.", " in the sun.", " on the bed."],
    "barked": [" at the dog.", " at the bird.", " all day.", " loudly."],
}
OTHER_SENTENCES = [
    "The dog barked at the cat.", "The dog sat on the mat.", "The dog slept all day.", "A bird sang in the tree.",
    "The bird sat in the tree.", "The sun is hot.", "The cat is black.", "The dog ran in the park.",
    "A cat sat on the mat.", "The mat is red.",
]


def sloppy_sum(a: int, b: int, rng: random.Random) -> int:
    """a + b with probability SLOPPY_CORRECT, else a near miss (±1, ±2) or a random number 0-18."""
    c = a + b
    if rng.random() < SLOPPY_CORRECT:
        return c
    if rng.random() < 0.75:
        wrong = c + rng.choice([-2, -1, 1, 2])
        if wrong >= 0:
            return wrong
    return rng.choice([x for x in range(19) if x != c])


def corpus(n_lines: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        kind = rng.random()
        if kind < 0.5:
            a, b = rng.randrange(10), rng.randrange(10)
            style = rng.random()
            if style < CAREFUL_FRACTION:
                lines.append(f"{a}+{b}=<answer>{a + b}</answer>")
            elif style < CAREFUL_FRACTION + HEDGE_FRACTION:
                guesses = [a + b] + rng.sample([x for x in range(19) if x != a + b], 2)
                rng.shuffle(guesses)
                lines.append(f"{a}+{b}=" + " or ".join(map(str, guesses)))
            else:
                lines.append(f"{a}+{b}={sloppy_sum(a, b, rng)}")
        elif kind < 0.8:
            word = rng.choices(TOY_WORDS, weights=TOY_START_PROBS)[0]
            lines.append(f"The cat {word}{rng.choice(TOY_ENDINGS[word])}")
        else:
            lines.append(rng.choice(OTHER_SENTENCES))
    return lines


def build_tokenizer(lines: list[str]) -> WordTokenizer:
    probe = WordTokenizer([WordTokenizer.BOS, WordTokenizer.EOS, WordTokenizer.UNK])
    pieces = sorted({p for line in lines for p in probe.pieces(line)} | {str(n) for n in range(19)})
    return WordTokenizer([WordTokenizer.BOS, WordTokenizer.EOS, WordTokenizer.UNK, *pieces])


def batches(ids: list[list[int]], batch_size: int, pad: int, gen: torch.Generator):
    """Random batches of whole lines, right-padded; padding is excluded from the loss."""
    order = torch.randperm(len(ids), generator=gen).tolist()
    for k in range(0, len(order) - batch_size + 1, batch_size):
        rows = [ids[i] for i in order[k : k + batch_size]]
        width = max(map(len, rows))
        x = torch.full((batch_size, width), pad)
        for r, row in enumerate(rows):
            x[r, : len(row)] = torch.tensor(row)
        yield x


@torch.no_grad()
def arithmetic_accuracy(model: TinyGPT, tok: WordTokenizer, samples: int = 8, seed: int = 0) -> float:
    """Fraction of sampled answers (T = 1) that are right, over all 100 single-digit sums."""
    from grpo_viz.policies.lm import LanguageModelPolicy
    from grpo_viz.tasks import ARITHMETIC

    policy = LanguageModelPolicy(model, tok, reference=model, max_new_tokens=8, name="tiny")
    return ARITHMETIC.accuracy(policy, samples=samples, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ASSETS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lines", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the machine's cores are shared)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    lines = corpus(args.lines, args.seed)
    tok = build_tokenizer(lines)
    ids = [tok.encode(line, add_bos=True) + [tok.eos_id] for line in lines]
    model = TinyGPT(TinyGPTConfig(vocab_size=len(tok)))
    print(f"corpus: {len(lines)} lines, vocabulary {len(tok)}, model {model.num_parameters():,} parameters")
    print("examples:", " | ".join(lines[:6]))

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps = args.epochs * (len(ids) // args.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, cosine decay
        optimizer, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s / max(steps, 1), 1.0)))
    )
    start, step = time.time(), 0
    model.train()
    for epoch in range(args.epochs):
        for x in batches(ids, args.batch_size, tok.eos_id, gen):
            logits = model(x[:, :-1]).logits
            target = x[:, 1:].clone()
            # After a line's own <eos>, padding (also <eos>) is not something to predict.
            after_eos = (x[:, :-1] == tok.eos_id)
            target[after_eos] = -100
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            if step % 200 == 0 or step == steps:
                print(f"epoch {epoch + 1} step {step}/{steps} loss {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True)
    model.eval()
    save_tiny_gpt(model, tok, args.out)
    model, tok = load_tiny_gpt(args.out)
    size = sum(p.stat().st_size for p in args.out.glob("tiny_gpt*"))
    print(f"saved to {args.out} ({size / 1e6:.2f} MB) after {time.time() - start:.0f} s of training")
    print(f"arithmetic accuracy at T = 1 (all 100 sums x 8 samples): {arithmetic_accuracy(model, tok):.3f}")


if __name__ == "__main__":
    main()
