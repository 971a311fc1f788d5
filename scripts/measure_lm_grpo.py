"""How fast does GRPO make a language model better at its task?  Held-out reward against iterations and seconds.

    python scripts/measure_lm_grpo.py                                  # built-in model, 3 seeds, 30 s each
    python scripts/measure_lm_grpo.py --model smollm2                  # SmolLM2 + LoRA, 3 minutes a seed
    python scripts/measure_lm_grpo.py --model smollm2 --json s.json    # keep the curves...
    python scripts/measure_lm_grpo.py --draw s.json b.json --png docs/lm_learning.png  # ...and draw them (Chromium)

Each seed is what pressing Run on Training -> Language model does at the page's defaults: an ``LMTraining`` (the
model's default task, ``LM_PROMPTS_PER_ITERATION`` prompts x G an iteration, the sidebar's default settings, sums
held out of training) trained for ``--seconds`` of wall time or ``--iterations``, whichever comes first, with the
held-out evaluation (``LM_EVAL_PROBLEMS`` sums x ``LM_EVAL_SAMPLES`` samples, T = 1, batched as the page does; the
task's true reward in [0, 1]) at iteration 0 and every ``--eval-every`` iterations. The clock counts evaluations
too: it is the time a class waits. Torch uses ``--threads`` (default ``LM_WORKER_THREADS``, as the page's
worker). Prints one line per evaluation and a summary per seed (reward at 0, best and last, the rise, when it
first rose by ``--rise``, the load average before and after); ``--json`` keeps the curves; ``--draw`` draws
curves kept earlier (one panel pair per file) without training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from grpo_viz.config import Settings, default_lm_lr  # noqa: E402
from grpo_viz.policies.loading import load_model, make_policy  # noqa: E402
from grpo_viz.tasks import TASKS, default_task  # noqa: E402
from grpo_viz.training import (LM_EVAL_EVERY, LM_EVAL_PROBLEMS, LM_EVAL_SAMPLES, LM_PROMPTS_PER_ITERATION,  # noqa: E402
                               LM_WORKER_THREADS, LMTraining)


def measure_seed(loaded, args, seed: int) -> dict:
    settings = replace(Settings(), group_size=args.group_size, lm_lr=args.lr, mu=args.mu, beta=args.beta, seed=seed,
                       max_new_tokens=args.max_new_tokens)
    lm = LMTraining(make_policy(loaded, max_new_tokens=args.max_new_tokens), TASKS[args.task], settings,
                    chat=loaded.chat, prompts_per_iteration=args.prompts, eval_every=args.eval_every,
                    max_iterations=args.iterations, eval_problems=args.problems, eval_samples=args.samples,
                    held_out=True)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    curve = []  # (iteration, seconds since Run, held-out reward)

    def evaluate() -> None:
        acc = lm.evaluate_now()
        curve.append((lm.iteration, time.perf_counter() - start, acc))
        print(f"seed {seed} iteration {lm.iteration}: held-out reward {acc:.3f} ({curve[-1][1]:.0f} s)", flush=True)

    evaluate()
    while lm.iteration < args.iterations and time.perf_counter() - start < args.seconds:
        lm.train_one()
        if lm.evaluation_due:
            evaluate()
    if curve[-1][0] != lm.iteration:
        evaluate()
    first = curve[0][2]
    risen = next(((it, s) for it, s, acc in curve if acc >= first + args.rise), None)
    return {"seed": seed, "curve": curve, "start": first, "best": max(a for *_, a in curve), "last": curve[-1][2],
            "rise_last": curve[-1][2] - first, "rise_best": max(a for *_, a in curve) - first, "risen_at": risen,
            "iterations": lm.iteration, "seconds_per_iteration": lm.seconds_per_iteration,
            "eval_seconds": lm.eval_seconds / max(len(curve), 1), "load": (load_before, os.getloadavg()[0])}


def draw(panels: list[tuple[str, list[dict]]], png: Path) -> None:
    """One row per (title, results): reward against iterations and against seconds, one line per seed, a dotted
    line at the start + 0.3; drawn by Plotly in headless Chromium."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    titles = [t for _ in panels for t in ("against iterations", "against seconds after Run (evaluations included)")]
    fig = make_subplots(rows=len(panels), cols=2, subplot_titles=titles, vertical_spacing=0.2)
    fig.update_annotations(font_size=13)
    for row, (title, _) in enumerate(panels):  # each row's heading, left-aligned above its two panels
        fig.add_annotation(text=title, x=0, xref="paper", xanchor="left", y=fig.layout.annotations[2 * row].y,
                           yref="paper", yanchor="bottom", yshift=22, showarrow=False, font_size=14)
    colors = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
    for row, (_, results) in enumerate(panels, start=1):
        for k, r in enumerate(results):
            its, secs, accs = zip(*r["curve"])
            style = dict(color=colors[k % len(colors)], width=2)
            fig.add_trace(go.Scatter(x=its, y=accs, mode="lines+markers", name=f"seed {r['seed']}", line=style,
                                     legendgroup=str(k), showlegend=row == 1), row, 1)
            fig.add_trace(go.Scatter(x=secs, y=accs, mode="lines+markers", name=f"seed {r['seed']}", line=style,
                                     legendgroup=str(k), showlegend=False), row, 2)
        start = sum(r["start"] for r in results) / len(results)
        for col in (1, 2):
            label = dict(annotation_text="start + 0.3", annotation_position="bottom right") if col == 2 else {}
            fig.add_hline(y=start + 0.3, line=dict(color="#888", dash="dot", width=1), row=row, col=col, **label)
        fig.update_yaxes(title_text="held-out reward", range=[0, 1.02], row=row, col=1)
        fig.update_yaxes(range=[0, 1.02], row=row, col=2)
        fig.update_xaxes(title_text="iteration", row=row, col=1)
        fig.update_xaxes(title_text="seconds", row=row, col=2)
    height = 380 * len(panels) + 60
    fig.update_layout(width=1100, height=height, template="plotly_white", margin=dict(t=80, b=50),
                      legend=dict(orientation="h", y=1.0 + 40 / height, x=1, xanchor="right", yanchor="bottom"))
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "figure.html"
        fig.write_html(html, include_plotlyjs=True, full_html=True)  # plotly.js inlined: no network
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1120, "height": height + 20})
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg")
            png.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".js-plotly-plot").screenshot(path=str(png))
            browser.close()


def panel_title(data: dict) -> str:
    a = data["args"]
    return (f"<b>{data['model']}</b>, “{TASKS[a['task']].title}”: {a['prompts']} prompts × G = {a['group_size']} × "
            f"{a['max_new_tokens']} tokens, lr {a['lr']:g}, {len(data['results'])} seeds")


def main() -> None:
    defaults = Settings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin", choices=("builtin", "smollm2", "hf"))
    ap.add_argument("--source", default="", help="folder or cached hub id for --model hf")
    ap.add_argument("--task", default=None, choices=sorted(k for k, t in TASKS.items() if t.arithmetic),
                    help="default: the model's default task on the page (tasks.default_task)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--seconds", type=float, default=None, help="wall time per seed (default 30 built-in, 180 "
                    "otherwise)")
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--eval-every", type=int, default=LM_EVAL_EVERY)
    ap.add_argument("--group-size", type=int, default=defaults.group_size)
    ap.add_argument("--prompts", type=int, default=LM_PROMPTS_PER_ITERATION, help="prompts (groups) per iteration")
    ap.add_argument("--lr", type=float, default=None, help="default: the model's on the page (config.default_lm_lr)")
    ap.add_argument("--mu", type=int, default=defaults.mu)
    ap.add_argument("--beta", type=float, default=defaults.beta)
    ap.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
    ap.add_argument("--problems", type=int, default=LM_EVAL_PROBLEMS, help="held-out sums in the evaluation")
    ap.add_argument("--samples", type=int, default=LM_EVAL_SAMPLES, help="samples per sum in the evaluation")
    ap.add_argument("--rise", type=float, default=0.3, help="report when the held-out reward first rose this much")
    ap.add_argument("--threads", type=int, default=LM_WORKER_THREADS, help="torch threads (default: the page's "
                    "worker's)")
    ap.add_argument("--json", default=None, help="write the curves here")
    ap.add_argument("--png", default=None, help="draw the curves here (e.g. docs/lm_learning.png)")
    ap.add_argument("--draw", nargs="+", default=None, metavar="JSON",
                    help="do not train: draw these --json files into --png, one row each")
    args = ap.parse_args()
    if args.draw:
        if not args.png:
            ap.error("--draw needs --png")
        panels = [json.loads(Path(f).read_text()) for f in args.draw]
        draw([(panel_title(d), d["results"]) for d in panels], Path(args.png))
        print(f"wrote {args.png}")
        return
    args.seconds = args.seconds or (30.0 if args.model == "builtin" else 180.0)
    args.task = args.task or default_task(args.model)
    args.lr = args.lr or default_lm_lr(args.model)
    torch.set_num_threads(args.threads)

    loaded = load_model(args.model, args.source)
    print(f"model={loaded.name} task={args.task} {args.prompts} prompts x G={args.group_size} x "
          f"{args.max_new_tokens} tokens, lr={args.lr} mu={args.mu} beta={args.beta}, held-out evaluation "
          f"{args.problems} x {args.samples} every {args.eval_every}, {args.seconds:g} s a seed, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}", flush=True)
    results = [measure_seed(loaded, args, int(seed)) for seed in args.seeds.split(",")]
    for r in results:
        risen = (f"iteration {r['risen_at'][0]} ({r['risen_at'][1]:.0f} s)" if r["risen_at"] else
                 f"not within {r['iterations']} iterations")
        print(f"lm_grpo model={loaded.name} seed={r['seed']} start={r['start']:.3f} best={r['best']:.3f} "
              f"last={r['last']:.3f} rise={r['rise_last']:+.3f} iterations={r['iterations']} "
              f"s_per_iteration={r['seconds_per_iteration'] or 0:.2f} s_per_evaluation={r['eval_seconds']:.2f} "
              f"rose_{args.rise:g}_at={risen} load={r['load'][0]:.1f}->{r['load'][1]:.1f}")
    data = {"args": vars(args), "model": loaded.name, "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(data))
    if args.png:
        draw([(panel_title(data), results)], Path(args.png))
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
