"""Train the toy for many iterations with GRPO, PPO or both, and watch the policy move."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from grpo_viz import charts, explain, export, hacking
from grpo_viz.config import TOY_STATE, TOY_WORDS
from grpo_viz.explain import count
from grpo_viz.tasks import TASKS
from grpo_viz.training import (ALGORITHMS, COMPARE_KNOBS, COMPARE_LABELS, DEFAULT_ITERATIONS, HACKED_WORD,
                               HACKING_BETA_CHOICES, HACKING_BETAS, LM_DEFAULT_ITERATIONS, LM_EVAL_EVERY,
                               LM_EVAL_PROBLEMS, LM_EVAL_SAMPLES, LM_MAX_ITERATIONS, LM_PROMPTS_PER_ITERATION,
                               MAX_ITERATIONS, PROXY_BONUS, REPRODUCE_REL, Experiment, LMWorker, RecordedRun,
                               hacking_outcomes, hacking_run, hacking_sweep, mismatch_explanation, proxy_rewards,
                               recorded_runs, reproduction, run_specs, start_probs)
from grpo_viz.ui import (STEP_BUTTON_PX, PlayTimer, compact_page, deferred, export_row, lm_sidebar,
                         load_chosen_model, poll_seconds, ppo_sidebar, rerun_if_worker_switched, restart_lm_training,
                         session_lm_worker, session_replay_worker, settings_notices, settings_sidebar,
                         start_lm_worker, start_reproduction, stop_lm_worker, tour_card, train_to,
                         warn_bad_query_params)

ALGORITHM_CHOICES = {"GRPO": ("GRPO",), "PPO": ("PPO",), "Both": ("GRPO", "PPO")}
COMPARE_CHOICES = ("off", *COMPARE_KNOBS)
KNOB_BOUNDS = {"beta": (0.0, 2.0, 0.01), "epsilon": (0.0, 0.5, 0.01), "lr": (0.01, 5.0, 0.05),
               "group_size": (2, 64, 1), "temperature": (0.1, 3.0, 0.05)}
SECTIONS = ("Toy training", "Reward hacking", "Language model")
REPRODUCE_ITERATIONS = {"builtin": 5, "smollm2": 2}  # a recording's first iterations the page trains again live
TRAINING_QUERY_SPECS = {
    "algorithm": ("choice", tuple(ALGORITHM_CHOICES)),
    "iterations": ("int", 1, MAX_ITERATIONS),
    "compare": ("choice", COMPARE_CHOICES),
    "proxy_bonus": ("float", 0.0, 3.0),
    "hack_iterations": ("int", 1, MAX_ITERATIONS),
    "section": ("choice", SECTIONS),
}

compact_page()
settings = ppo_sidebar(settings_sidebar())
lm_choice = lm_sidebar({k: t.title for k, t in TASKS.items()})
warn_bad_query_params(TRAINING_QUERY_SPECS, "training_url_warnings")

st.markdown("## Training over many iterations")
settings_notices(settings)
# One section at a time, each a URL (`?section=Reward+hacking`): only the open tab runs and is drawn, so a Step
# redraws the toy's charts alone and a link can open the reward-hacking demo on a projector. A closed tab's widgets
# keep their values: the URL keeps the bound ones, persist_state="session" the others.
toy_tab, hack_tab, lm_tab = st.tabs(SECTIONS, key="section", bind="query-params")
state = st.session_state


def toy_controls() -> int:
    """The toy's controls; (re)starts the runs when their specs change. Returns the target iteration."""
    c1, c2, c3, c4, c5 = st.columns([2, 2, 1.3, 1, 1], vertical_alignment="bottom")  # "GRPO PPO Both" fits at 1280 px
    algorithm = c1.segmented_control("Algorithm", list(ALGORITHM_CHOICES), default="Both", required=True,
                                     key="algorithm", bind="query-params",
                                     help="Train GRPO, PPO, or both side by side from the same start.")
    target = c2.slider("Iterations", 1, MAX_ITERATIONS, DEFAULT_ITERATIONS, key="iterations", bind="query-params",
                       help="How far Run and Play go (at most 500).")
    compare = c3.selectbox("Compare", COMPARE_CHOICES, key="compare", bind="query-params",
                           help="Draw two runs per algorithm that differ in this one knob (epsilon sets both clip "
                                "edges).")
    compare_values = None
    if compare != "off":
        low, high, step = KNOB_BOUNDS[compare]
        default_a, default_b = COMPARE_KNOBS[compare]
        kind = int if compare == "group_size" else float
        a = c4.number_input(f"{COMPARE_LABELS[compare]} run a", kind(low), kind(high), kind(default_a),
                            step=kind(step), key=f"compare_a_{compare}", persist_state="session")
        b = c5.number_input(f"{COMPARE_LABELS[compare]} run b", kind(low), kind(high), kind(default_b),
                            step=kind(step), key=f"compare_b_{compare}", persist_state="session")
        compare_values = (compare, a, b)
    specs = run_specs(settings, ALGORITHM_CHOICES[algorithm or "Both"], compare_values)
    if state.get("training_specs") != specs:
        if "training_specs" in state:
            st.toast("Settings changed: the runs start again from π_ref.", icon="🔄")
        state.training_specs = specs
        state.training = Experiment(specs)
        play.pause()
    return target


def run_to_target() -> None:
    play.pause()
    state.training_run_requested = True


def step_once() -> None:
    play.pause()
    if not state.training.done:
        state.training.step(1)


def reset() -> None:
    state.training = Experiment(state.training_specs)
    play.pause()


def draw_charts(exp: Experiment, target: int) -> None:
    runs = exp.columns()
    ref = start_probs(settings)
    # a fixed x range up to the target, so Play fills the frame instead of rescaling it every tick
    x_range = [0, max(target, exp.iteration)]
    top_left, top_right = st.columns([3, 2], gap="medium")
    top_left.plotly_chart(charts.training_probability_chart(TOY_WORDS, runs, ref, x_range=x_range),
                          key="probs_chart")
    top_right.plotly_chart(charts.simplex_chart(TOY_WORDS, runs, ref, title="Paths on the probability simplex"),
                           key="simplex_chart")
    best = max(settings.rewards)
    m1, m2, m3 = st.columns(3, gap="small")
    m1.plotly_chart(charts.training_metric_chart(runs, "expected_reward", "Expected reward under π_θ", "E[r]",
                                                 reference=best, reference_name=f"best {best:g}",
                                                 x_range=x_range), key="reward_chart")
    m2.plotly_chart(charts.training_metric_chart(runs, "kl", "KL(π_θ ‖ π_ref), exact", "KL", x_range=x_range),
                    key="kl_chart")
    m3.plotly_chart(charts.training_metric_chart(runs, "loss", "Loss (mean over the update steps)", "loss",
                                                 x_range=x_range), key="loss_chart")
    n1, n2 = st.columns(2, gap="small")
    n1.plotly_chart(charts.clip_fraction_chart(runs, x_range=x_range), key="clip_chart")
    if any(spec.algorithm == "PPO" for spec in exp.specs):
        n2.plotly_chart(charts.value_chart(runs, x_range=x_range), key="value_chart")
    else:
        n2.info("The critic's value estimate and value loss appear when PPO is trained: GRPO has no critic.",
                icon="ℹ️")
    # Built only while open: every Step and every Play tick would otherwise convert the whole history for a
    # closed box.
    history_box = st.expander("History table", key="history_table_open", on_change="rerun")
    if history_box.open:
        history_box.dataframe(exp.frame().round(5), hide_index=True, key="history_table")


play = PlayTimer("training_playing")  # the fragment's timer is set when the page runs in full


@st.fragment(run_every=play.run_every)
def live(target: int) -> None:
    exp: Experiment = state.training
    play.tick(exp, target)  # before the Play switch is drawn, so reaching the target can switch it off
    row = st.container(horizontal=True, vertical_alignment="center")  # one block a tick, not five columns
    row.button(f"⏩ Run to {target}", type="primary", width=150, key="run_to_target", on_click=run_to_target,
               disabled=exp.iteration >= target, help="Run the remaining iterations now")
    play.switch(row, disabled=exp.iteration >= target and not play.playing,
                help="Train a few iterations per tick and redraw, until the target; switch off to pause")
    row.button("Step +1", on_click=step_once, width=STEP_BUTTON_PX, key="step", disabled=exp.done,
               help="One more iteration")
    row.button("↺ Reset", on_click=reset, width=STEP_BUTTON_PX, key="reset_training", help="Back to iteration 0")

    if state.pop("training_run_requested", False):
        train_to(exp, target)
        st.rerun()  # redraw the controls for the new iteration (Run is now done)
    play.rerun_if_switched()
    where = (f"Iteration {exp.iteration} of {target}" if exp.iteration <= target
             else f"Iteration {exp.iteration} (past the target of {target})")
    st.progress(min(exp.iteration / target, 1.0), text=where + (" (playing)" if play.playing else ""))
    draw_charts(exp, target)


def hacking_section() -> None:
    """A sweep of β for GRPO and for PPO on a proxy reward that overrates one word: reward against KL, and what
    each β did, in sentences read off the runs."""
    st.markdown(f"#### A proxy reward that overrates “{HACKED_WORD}”: which β holds the policy?")
    h1, h2, h3, h4 = st.columns([1.5, 1.5, 2, 2], vertical_alignment="bottom")
    # bound to the URL like every other setting: the demo is computed from them alone, so a link reproduces it
    bonus = h1.slider(f"Proxy's bonus for “{HACKED_WORD}”", 0.0, 3.0, PROXY_BONUS, step=0.1, key="proxy_bonus",
                      bind="query-params")
    iterations = h2.slider("Iterations", 1, MAX_ITERATIONS, DEFAULT_ITERATIONS, key="hack_iterations",
                           bind="query-params", help="How long every run trains on the proxy.")
    warn_bad_beta_lists()
    betas = {
        algorithm: column.multiselect(
            f"{algorithm}'s β values", HACKING_BETA_CHOICES, list(HACKING_BETAS[algorithm]), max_selections=5,
            format_func=lambda b: f"{b:g}", key=f"hack_betas_{algorithm.lower()}", bind="query-params",
            help=f"One {algorithm} run per β, all trained on the proxy from π_ref.")
        for algorithm, column in (("GRPO", h3), ("PPO", h4))
    }
    if not any(betas.values()):
        st.info("Choose at least one β for GRPO or PPO.", icon="ℹ️")
        return
    proxy = proxy_rewards(settings.rewards, TOY_WORDS, HACKED_WORD, bonus)
    with st.spinner("Training the sweep…"):
        sweep = hacking_sweep(settings, betas, iterations, proxy, runner=cached_hacking_run)
    outcomes = hacking_outcomes(sweep, settings.rewards, proxy)
    left, right = st.columns([3, 2], gap="medium")
    left.plotly_chart(hacking.overoptimization_chart(sweep), key="hacking_chart")
    table = hacking.outcome_table(outcomes, HACKED_WORD)
    # narrow columns: all eight fit beside the sentences at 1280 px with the sidebar open
    left.dataframe(table, hide_index=True, key="hacking_table", column_config={
        "algorithm": st.column_config.TextColumn("alg.", width=52),
        "β": st.column_config.NumberColumn(format="%g", width=44),
        "proxy E[r]": st.column_config.NumberColumn("proxy", format="%.3f", width=58),
        "true E[r]": st.column_config.NumberColumn("true", format="%.3f", width=58),
        f"π({HACKED_WORD})": st.column_config.NumberColumn(format="%.3f", width=82),
        "KL": st.column_config.NumberColumn(format="%.3f", width=58),
        "kept": st.column_config.NumberColumn(format="%.0f%%", width=52),
        "verdict": st.column_config.TextColumn(width=96)})
    right.markdown(
        f"Every run is trained for {iterations} iterations on a **proxy** reward model that overrates "
        f"“{HACKED_WORD}”; the **true** reward is the sidebar's. "
        + " · ".join(f"{w}: true {t:g}, proxy {p:g}" for w, t, p in zip(TOY_WORDS, settings.rewards, proxy))
    )
    right.markdown(hacking.regime_rule(outcomes, HACKED_WORD))
    for algorithm in ALGORITHMS:
        lines = [hacking.outcome_sentence(o, HACKED_WORD) for o in outcomes if o.algorithm == algorithm]
        if lines:
            right.markdown("\n".join(f"- {line}" for line in lines))
    for sentence in (hacking.comparison_sentence(outcomes), hacking.scale_sentence(outcomes)):
        if sentence:
            right.markdown(sentence)


def warn_bad_beta_lists() -> None:
    """Warn (once a session, then on every run) about β values in the URL that the β lists will ignore."""
    if "hacking_url_warnings" not in state:
        choices = {f"{b:g}" for b in HACKING_BETA_CHOICES}
        state.hacking_url_warnings = [
            f"URL parameter `{key}={','.join(raw)[:40]}`: values not among "
            f"{', '.join(f'{b:g}' for b in HACKING_BETA_CHOICES)} are ignored (none left: the default)."
            for key in ("hack_betas_grpo", "hack_betas_ppo")
            if (raw := st.query_params.get_all(key)) and not set(raw) <= choices]
    for message in state.hacking_url_warnings:
        st.warning(message, icon="⚠️")


@st.cache_data(show_spinner=False, max_entries=256)
def cached_hacking_run(algorithm, run_settings, beta, train_rewards, iterations) -> pd.DataFrame:
    """One proxy run, shared by every session that asks for the same one (plain arguments, so the key is them)."""
    return hacking_run(algorithm, run_settings, beta, train_rewards, iterations)


if toy_tab.open:
    with toy_tab:
        st.caption(
            f"Every run starts from the same policy after **“{TOY_STATE} …”** (π_θ = π_ref) and uses the sidebar's "
            "settings; iteration k samples its group with the same seed stream as *Step through GRPO*, so iteration 1 "
            "there is iteration 1 here. Changing a setting starts the runs again."
        )
        live(toy_controls())
        tour_card(explain.TRAINING_TOUR)
        export_row([("⬇ Training history (CSV)", deferred(export.frame_csv, state.training),
                     "training_history.csv", state.training.iteration > 0)],
                   export.trl_script(settings))
if hack_tab.open:
    with hack_tab:
        hacking_section()


def lm_section() -> None:
    loaded, load_error = load_chosen_model(lm_choice)
    if loaded is None:
        st.error(load_error, icon="🚫")
        return
    task = TASKS[lm_choice["task"]].with_word_rewards(TOY_WORDS, settings.rewards)
    lm_settings = replace(settings, lm_lr=lm_choice["lm_lr"], lm_max_grad_norm=lm_choice["lm_max_grad_norm"],
                          max_new_tokens=lm_choice["max_new_tokens"], lm_precision=lm_choice["lm_precision"])
    c1, c2, c3 = st.columns([2.2, 1.4, 1.4], vertical_alignment="bottom")
    n_iterations = c1.slider("LM iterations per run", 1, LM_MAX_ITERATIONS, LM_DEFAULT_ITERATIONS, key="lm_iterations",
                             persist_state="session",
                             help=f"How many iterations Run trains (a run stops at {LM_MAX_ITERATIONS} in all).")
    n_prompts = c2.number_input("Prompts per iteration", 1, 8, LM_PROMPTS_PER_ITERATION, key="lm_prompts",
                                persist_state="session",
                                help="Groups per iteration: each prompt gets its own G completions and baseline.")
    eval_every = c3.number_input("Accuracy every k", 1, 50, LM_EVAL_EVERY, key="lm_eval_every",
                                 persist_state="session",
                                 help=f"An evaluation samples its {LM_EVAL_PROBLEMS} held-out sums × {LM_EVAL_SAMPLES} "
                                      "in one batch: it costs less than one iteration, and counts in the time a "
                                      "class waits.")
    worker = session_lm_worker(loaded, lm_choice, task, lm_settings, int(n_prompts), int(eval_every))
    if worker.snapshot().status == "idle":
        worker.start(0)  # the start accuracy, measured in the background: the page never waits for it
    recordings = cached_recorded_runs(lm_choice["kind"], lm_choice["task"]) if task.arithmetic else []
    recording = recordings[0] if recordings else None
    replay = session_replay_worker(recording) if recording else None
    # the fragment polls the workers' snapshots while one runs; its timer is set here, when the page runs in full
    run_every = poll_seconds(worker, replay)
    st.fragment(lm_live, run_every=run_every)(worker, loaded, task, int(n_iterations), recording,
                                              polling=run_every is not None)


@st.cache_data(show_spinner=False, ttl=600)
def cached_recorded_runs(model: str, task_key: str) -> list[RecordedRun]:
    return recorded_runs(model, task_key)


def recorded_section(loaded, recording: RecordedRun, task, live_iteration: int) -> None:
    """A recorded run, shown at once and labelled as recorded, with a button that trains its first iterations
    again live and compares them with the recording, number by number."""
    s, rec = recording.settings, recording.recorded
    per_it = recording.seconds_per_iteration
    box = st.container(border=True)
    box.markdown(f"**📼 Recorded run, not live:** {recording.model_name} on “{task.title}”, {recording.iterations} "
                 f"iterations, accuracy **{recording.accuracy[0][1]:.0%} → {recording.accuracy[-1][1]:.0%}**")
    if rec.get("partial"):
        box.caption(f"Stopped early: the recording holds the first {recording.iterations} iterations.")
    box.caption(
        f"Recorded by `scripts/record_run.py` on {rec.get('date', '?')} (commit {rec.get('commit') or '?'}, torch "
        f"{rec.get('torch', '?')}, {count(rec['threads'], 'thread') if 'threads' in rec else '? threads'}"
        + (f" on {rec['cpu']}" if rec.get("cpu") else "")
        + (f", {per_it:.2f} s an iteration" if per_it else "") + f") with its own settings: "
        f"{recording.prompts_per_iteration} prompts × G = {s.group_size}, ≤ {s.max_new_tokens} new tokens, "
        f"lr {s.lm_lr:g}, β = {s.beta:g}, μ = {s.mu}, seed {s.seed}; accuracy on {recording.eval_problems} "
        + ("held-out " if recording.held_out else "") +
        f"problems × {recording.eval_samples} samples every {recording.eval_every} iterations."
        + (" Your live run is below." if live_iteration else ""))
    cols = recording.columns
    x_range = [0, recording.iterations]
    left, right = box.columns([3, 2], gap="medium")
    left.plotly_chart(charts.lm_reward_chart(cols["iteration"], cols["mean_reward"],
                                             cols["true_reward"] if task.is_hackable else None, window=20,
                                             title="Recorded: mean reward of each iteration's groups",
                                             x_range=x_range), key="rec_reward_chart")
    acc_x, acc_y = zip(*recording.accuracy)
    right.plotly_chart(charts.lm_accuracy_chart(acc_x, acc_y, title="Recorded: task accuracy", x_range=x_range),
                       key="rec_accuracy_chart")
    k = min(REPRODUCE_ITERATIONS.get(recording.model, 2), recording.iterations)
    replay = session_replay_worker(recording)
    box.button(f"▶ Reproduce its first {k} iterations live", key="rec_reproduce", on_click=start_reproduction,
               args=(loaded, recording, task, k), disabled=replay is not None and replay.running,
               help="Train a fresh copy of the model with the recording's own settings and seed, here and now, "
                    "and compare every number with the recording")
    if replay is None:
        return
    snap = replay.snapshot()
    rows = reproduction(recording, snap.columns, snap.accuracy)
    if snap.running:
        box.progress(min(snap.iteration / max(snap.target, 1), 1.0),
                     text=f"Reproducing live: iteration {snap.iteration} of {snap.target}…")
    if snap.status == "failed":
        box.error(f"The reproduction could not run: {snap.error}", icon="🚫")
    if rows:
        box.dataframe(pd.DataFrame(rows), hide_index=True, key="rec_reproduction", column_config={
            "recorded": st.column_config.NumberColumn(format="%.4f"),
            "live": st.column_config.NumberColumn(format="%.4f"),
            "recorded loss": st.column_config.NumberColumn(format="%.6f"),
            "live loss": st.column_config.NumberColumn(format="%.6f"),
            "largest difference": st.column_config.NumberColumn(format="%.1e")})
    bad = [r for r in rows if not r["match"]]
    if bad:
        box.warning(f"Iteration {bad[0]['iteration']} differs from the recording ({bad[0]['quantity']}). "
                    + mismatch_explanation(recording), icon="⚠️")
    elif snap.status == "done" and rows:
        largest = max(r["largest difference"] for r in rows)
        box.success(f"Live iterations 1–{snap.iteration} match the recording: the same start accuracy and "
                    f"rewards, KL, loss and clip fractions within a relative {REPRODUCE_REL:g} (largest difference "
                    f"{largest:.1e}).", icon="✅")


def lm_live(worker: LMWorker, loaded, task, n_iterations: int, recording: RecordedRun | None,
            polling: bool) -> None:
    """The run's controls and charts, drawn from the workers' latest snapshots (every LM_POLL_S while one
    trains)."""
    model_name = loaded.name
    snap = worker.snapshot()
    replay = session_replay_worker(recording) if recording else None
    if recording is not None:
        recorded_section(loaded, recording, task, snap.iteration)
        st.markdown("**Live run**")
    row = st.container(horizontal=True, vertical_alignment="center")
    row.button(f"⏩ Run {n_iterations}", type="primary", width=130, key="lm_train_run", on_click=start_lm_worker,
               args=(n_iterations,), disabled=snap.running or snap.iteration >= snap.max_iterations,
               help="Train this many more iterations in the background: the page stays usable, the charts fill in")
    row.button("⏹ Stop", width=STEP_BUTTON_PX, key="lm_stop", on_click=stop_lm_worker,
               disabled=not snap.running or worker.stop_requested, help="Stop after the iteration under way")
    row.button("↺ Reset", width=STEP_BUTTON_PX, key="lm_reset", help="Back to iteration 0 (π_θ = π_ref)",
               on_click=restart_lm_training)
    rerun_if_worker_switched(worker.running or (replay is not None and replay.running), polling)
    if snap.status == "failed":
        st.error(f"This model cannot train with these settings: {snap.error}", icon="🚫")
    per_it = snap.seconds_per_iteration
    doing = {"evaluating": "measuring the accuracy…", "training": "training…"}.get(snap.status, "")
    if worker.stop_requested and snap.running:
        doing = "stopping after this iteration…"
    if snap.running:
        st.progress(min(snap.iteration / max(snap.target, 1), 1.0),
                    text=f"Iteration {snap.iteration} of {snap.target}: {doing}")
    accuracy = snap.accuracy
    line = (f"**{model_name}** · task: {task.title} · iteration **{snap.iteration}** of at most "
            f"{snap.max_iterations}")
    if accuracy:
        (start_it, start_acc), (now_it, now_acc) = accuracy[0], accuracy[-1]
        line += (f" · accuracy **{start_acc:.0%}** at iteration {start_it} → **{now_acc:.0%}** at iteration "
                 f"{now_it}")
    if per_it:
        line += f" · {per_it * 1000:.0f} ms per iteration on this server"
    st.markdown(line)
    cols = snap.columns
    if not cols["iteration"]:
        st.info("Press **Run** to train in the background: the charts fill in over the iterations, and the other "
                "pages stay usable meanwhile.", icon="ℹ️")
    x_range = [0, max(snap.iteration, snap.target, n_iterations)]
    left, right = st.columns([3, 2], gap="medium")
    left.plotly_chart(charts.lm_reward_chart(cols["iteration"], cols["mean_reward"],
                                             cols["true_reward"] if task.is_hackable else None,
                                             x_range=x_range), key="lm_reward_chart")
    acc_x, acc_y = zip(*accuracy) if accuracy else ((), ())
    right.plotly_chart(charts.lm_accuracy_chart(acc_x, acc_y, x_range=x_range), key="lm_accuracy_chart")
    runs = {"GRPO": cols}
    k1, k2, k3 = st.columns([1, 1, 2], gap="small")
    k1.plotly_chart(charts.training_metric_chart(runs, "kl", "LM: KL to π_ref (k3)", "KL", x_range=x_range),
                    key="lm_kl_chart")
    k2.plotly_chart(charts.training_metric_chart(runs, "loss", "LM: loss (last update step)", "loss",
                                                 x_range=x_range), key="lm_loss_chart")
    k3.plotly_chart(charts.clip_fraction_chart(runs, title="LM: fraction of tokens clipped, per iteration",
                                               x_range=x_range), key="lm_clip_chart")
    if settings.mu == 1:
        k3.caption("With μ = 1 each group gets one update, taken at π_θ = π_old: every ratio is 1 and nothing is "
                   "clipped. Set μ above 1 to see clipping.")
    if snap.completions:
        st.markdown(f"**Latest completions** (iteration {snap.iteration})")
        st.dataframe(pd.DataFrame([{"prompt": c.prompt, "completion": c.text, "reward": c.reward}
                                   for c in snap.completions]),
                     hide_index=True, key="lm_completions", height=240,
                     column_config={"reward": st.column_config.NumberColumn(format="%.2f", width=70)})


if lm_tab.open:
    with lm_tab:
        st.caption(
            "The sidebar's model and task, trained with GRPO exactly as *Toy vs language model* steps it (and as "
            "`scripts/measure_lm_grpo.py` measures it): each iteration samples G completions for each of a few "
            "prompts, scores them, and takes μ updates. The sidebar's shared settings apply, with the LM's own "
            "learning rate and completion length. A run trains in the background: the charts and the latest "
            "completions update while it runs, and the other pages stay usable. Accuracy is the task's true reward on "
            f"a fixed set of {LM_EVAL_PROBLEMS} sums held out of training × {LM_EVAL_SAMPLES} samples (T = 1), in "
            "place of the toy's word probabilities. Changing a setting starts again. Each model starts on a task "
            "and learning rate it visibly learns with: SmolLM2 on “Sum: correct and brief”, whose brevity half a "
            "short wrong answer earns too, so watch the completions as well as the reward."
        )
        lm_section()
