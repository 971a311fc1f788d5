"""The Training page through AppTest: run, step, play, compare, reward hacking, bad URLs."""

import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from grpo_viz.training import DEFAULT_ITERATIONS, HACKING_BETAS, stop_all_workers

from .conftest import new_app, charts, no_error, assert_url_warning, open_expander, switch_section

PAGE = "app_pages/3_training.py"


def open_page(**query) -> AppTest:
    return new_app(PAGE, **query)


def chart(at, title_start):
    return next(c for c in charts(at) if c["layout"]["title"]["text"].startswith(title_start))


def points(at):
    """Number of history points drawn in the probability chart (first trace)."""
    return len(chart(at, "π_θ(word)")["data"][0]["x"])


def test_opens_at_iteration_zero_with_every_chart():
    at = open_page()
    no_error(at)
    shown = titles(at)
    for start in ("π_θ(word)", "Paths on the probability simplex", "Expected reward", "KL", "Loss", "Fraction",
                  "PPO's critic"):
        assert any(t.startswith(start) for t in shown), (start, shown)
    # the other two sections are tabs that run only when open
    assert not any(t.startswith(("Trained on the proxy", "LM:")) for t in shown)
    assert points(at) == 1
    simplex = chart(at, "Paths on the probability simplex")
    assert [d["name"] for d in simplex["data"] if d.get("mode") == "lines"] == ["GRPO", "PPO"]


def test_run_step_and_reset():
    at = open_page()
    at.button(key="run_to_target").click().run()
    no_error(at)
    assert points(at) == DEFAULT_ITERATIONS + 1
    probs = chart(at, "π_θ(word)")["data"]
    assert probs[0]["name"] == "sat" and probs[0]["y"][-1] >= 0.9  # GRPO learned the best word
    assert at.button(key="run_to_target").disabled
    at.button(key="step").click().run()
    assert points(at) == DEFAULT_ITERATIONS + 2
    at.button(key="reset_training").click().run()
    assert points(at) == 1


def test_history_table_is_built_only_while_open():
    at = open_page()
    at.button(key="step").click().run()
    assert not [d for d in at.dataframe if "iteration" in d.value.columns]  # closed: not sent
    open_expander(at, "history_table_open")
    history = next(d.value for d in at.dataframe if "iteration" in d.value.columns)
    assert sorted(set(history["iteration"])) == [0, 1]
    at.button(key="step").click().run()
    no_error(at)
    history = next(d.value for d in at.dataframe if "iteration" in d.value.columns)
    assert sorted(set(history["iteration"])) == [0, 1, 2]


def test_play_grows_the_charts_and_pause_stops():
    at = open_page(iterations="20")
    at.toggle(key="training_playing").set_value(True).run()
    assert at.session_state["training_playing"]
    first = points(at)
    at.run()  # a Play tick (the fragment's run_every re-runs it in a browser)
    assert points(at) > first > 1
    at.toggle(key="training_playing").set_value(False).run()  # pause
    assert not at.session_state["training_playing"]
    paused = points(at)
    at.run()
    assert points(at) == paused


def test_play_stops_at_the_target():
    at = open_page(iterations="3")
    at.toggle(key="training_playing").set_value(True).run()
    for _ in range(5):
        at.run()
    assert not at.session_state["training_playing"] and points(at) == 4


def test_algorithm_and_compare_settings():
    at = open_page(algorithm="PPO")
    assert [d["name"] for d in chart(at, "Expected reward")["data"]] == ["PPO"]
    at = open_page(compare="beta")
    names = [d["name"] for d in chart(at, "Expected reward")["data"]]
    assert names == ["GRPO · β = 0", "GRPO · β = 0.04", "PPO · β = 0", "PPO · β = 0.04"]
    at.number_input(key="compare_b_beta").set_value(0.5).run()
    assert "GRPO · β = 0.5" in [d["name"] for d in chart(at, "Expected reward")["data"]]
    at.selectbox(key="compare").set_value("epsilon").run()
    assert "PPO · ε = 0.3" in [d["name"] for d in chart(at, "KL")["data"]]
    no_error(at)


def test_changing_a_setting_restarts_the_runs():
    at = open_page(iterations="5")
    at.button(key="run_to_target").click().run()
    assert points(at) == 6
    at.slider(key="beta").set_value(0.3).run()
    assert points(at) == 1


def open_section(section: str, **query) -> AppTest:
    return open_page(section=section, **query)


def test_each_section_is_a_tab_that_keeps_its_settings():
    at = open_page()
    at.selectbox(key="compare").set_value("beta").run()
    at.number_input(key="compare_b_beta").set_value(0.7).run()
    at.button(key="step").click().run()
    switch_section(at, "Language model")
    no_error(at)
    assert not any(t.startswith("π_θ(word)") for t in titles(at)) and any(t.startswith("LM:") for t in titles(at))
    at.number_input(key="lm_prompts").set_value(2).run()
    switch_section(at, "Reward hacking")
    assert [t for t in titles(at) if t.startswith("Trained on the proxy")] and not lm_titles(at)
    switch_section(at, "Toy training")
    # the toy's runs, their Compare values and the iteration they reached survived the other tabs
    assert at.number_input(key="compare_b_beta").value == 0.7 and points(at) == 2
    switch_section(at, "Language model")
    assert at.number_input(key="lm_prompts").value == 2
    no_error(at)


def titles(at) -> list[str]:
    return [c["layout"]["title"]["text"] for c in charts(at)]


def lm_titles(at) -> list[str]:
    return [t for t in titles(at) if t.startswith("LM:")]


def hacking_sentences(at) -> list[str]:
    """The demo's per-run sentences, one per bullet."""
    return [line[2:] for m in at.markdown for line in str(m.value).splitlines() if line.startswith("- With **β")]


SENTENCE = re.compile(r"With \*\*β = ([\d.]+)\*\*, (GRPO|PPO)'s true E\[r\] ends at \*\*([\d.]+)\*\* \(start ([\d.]+), "
                      r"keeps (\d+)%\) and π\(barked\) at \*\*([\d.]+)\*\* \(start ([\d.]+)\), KL ([\d.]+): β (.*)\.$")


def assert_sentences_match_the_runs(at) -> list[tuple]:
    """Every sentence's numbers are the drawn run's (true reward at start and end, from the chart), and its verdict
    is the one those numbers give; returns (algorithm, beta, verdict) per sentence."""
    traces = {(d["name"], d["line"]["dash"]): d for d in chart(at, "Trained on the proxy")["data"]}
    table = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    found = []
    for text in hacking_sentences(at):
        beta, algorithm, end, start, kept, p_end, p_start, kl, verdict = SENTENCE.match(text).groups()
        true = traces[(f"{algorithm} · β = {beta}", "dot")]["y"]
        assert (end, start) == (f"{true[-1]:.3f}", f"{true[0]:.3f}"), text
        assert int(kept) == round(100 * true[-1] / true[0]), text  # floor 0: barked alone is worth 0
        row = table[(table["algorithm"] == algorithm) & (table["β"] == float(beta))].iloc[0]
        assert (p_end, kl) == (f"{row['π(barked)']:.3f}", f"{row['KL']:.3f}") and p_start == "0.500"
        share = true[-1] / true[0]
        expected = ("holds it" if share >= 2 / 3 else "does not stop the hack" if share < 1 / 3
                    else "slows the hack but does not hold it")
        assert verdict == expected, text
        found.append((algorithm, float(beta), verdict))
    assert len(found) == len(table)
    return found


def test_reward_hacking_demo():
    at = open_section("Reward hacking")
    no_error(at)
    data = chart(at, "Trained on the proxy")["data"]
    by_name = {(d["name"], d["line"]["dash"]): d["y"] for d in data}
    free_proxy, free_true = by_name[("GRPO · β = 0.04", "solid")], by_name[("GRPO · β = 0.04", "dot")]
    assert free_proxy[-1] > free_proxy[0] and free_true[-1] < free_true[0]  # the proxy climbs, the true reward falls
    found = assert_sentences_match_the_runs(at)
    # the defaults show every regime for both algorithms, smallest β hacked, largest held
    for algorithm, betas in HACKING_BETAS.items():
        assert [v for a, _, v in found if a == algorithm] == [
            "does not stop the hack", "slows the hack but does not hold it", "holds it"]
    text = " ".join(str(m.value) for m in at.markdown)
    assert "the smallest β that holds GRPO is **3**" in text and "the smallest β that holds PPO is **1.5**" in text
    # only weak betas: no sentence may say a β holds the policy
    at.multiselect(key="hack_betas_ppo").set_value([0.05, 0.3]).run()
    at.multiselect(key="hack_betas_grpo").set_value([0.04]).run()
    no_error(at)
    found = assert_sentences_match_the_runs(at)
    assert [(a, b) for a, b, _ in found] == [("GRPO", 0.04), ("PPO", 0.05), ("PPO", 0.3)]
    assert all(v != "holds it" for _, _, v in found)
    text = " ".join(str(m.value) for m in at.markdown)
    assert "no β of PPO's (0.05, 0.3) holds the policy" in text and "smallest β that holds" not in text
    at.slider(key="proxy_bonus").set_value(0.5).run()  # the proxy now prefers sat: nothing to hack
    no_error(at)
    assert "cannot lower the true reward" in " ".join(str(m.value) for m in at.markdown)
    # the demo's controls are URL parameters: a link reproduces it
    linked = open_section("Reward hacking", hack_betas_grpo=["0.04"], hack_betas_ppo=["0.05", "0.3"],
                          proxy_bonus="0.5")
    assert chart(linked, "Trained on the proxy")["data"] == chart(at, "Trained on the proxy")["data"]


@pytest.mark.parametrize("query", [{"iterations": "abc"}, {"iterations": "9999"}, {"algorithm": "SAC"},
                                   {"compare": "nope"}, {"kl_estimator": "k9"}, {"ppo_epochs": "1.5"},
                                   {"beta": "nan"}, {"group_size": "1"}, {"hack_betas_grpo": "abc", "section": "Reward hacking"},
                                   {"hack_betas_ppo": "-3", "section": "Reward hacking"}, {"proxy_bonus": "inf"}, {"hack_iterations": "0"},
                                   {"section": "Nope"}])
def test_bad_query_parameters_warn_and_fall_back(query):
    at = open_page(**query)
    assert_url_warning(at, next(iter(query)))


def lm_points(at, title_start):
    return [len(d["x"]) for d in chart(at, title_start)["data"]]


@pytest.fixture(autouse=True)
def no_worker_left_behind():
    yield
    assert stop_all_workers(timeout=60)


def wait_for_worker(at, timeout: float = 600.0) -> AppTest:
    """Run the page again (as the fragment's timer does in a browser) until the session's worker is idle."""
    worker = at.session_state["lm_worker"]
    deadline = time.monotonic() + timeout
    while worker.running:
        assert time.monotonic() < deadline, "the worker did not finish"
        time.sleep(0.1)
    return at.run()


def test_language_model_section_trains_the_builtin_model_in_the_background():
    at = wait_for_worker(open_section("Language model"))
    assert lm_points(at, "LM: task accuracy") == [1]  # the start accuracy, measured in the background
    assert lm_points(at, "LM: mean reward") == [0, 0]
    assert at.button(key="lm_stop").disabled
    at.slider(key="lm_iterations").set_value(3).run()
    at.button(key="lm_train_run").click().run()
    assert at.session_state["lm_worker"].snapshot().target == 3
    at = wait_for_worker(at)
    no_error(at)
    assert lm_points(at, "LM: mean reward") == [3, 3]  # sum task: no proxy, so no true-reward line
    assert lm_points(at, "LM: KL to π_ref") == [3]
    assert lm_points(at, "LM: loss") == [3]
    assert lm_points(at, "LM: fraction") == [3, 3]
    assert lm_points(at, "LM: task accuracy") == [2]  # iteration 0 and where the run ended
    completions = next(d.value for d in at.dataframe if "completion" in d.value.columns)
    assert len(completions) == 16 and set(completions["reward"]) <= {0.0, 1.0}  # 4 prompts x G = 8, the last
    at.button(key="lm_train_run").click().run()
    at = wait_for_worker(at)
    assert lm_points(at, "LM: KL to π_ref") == [6]
    assert lm_points(at, "LM: task accuracy") == [4]  # 0, 3, every 5th (5), 6
    at.button(key="lm_reset").click().run()
    at = wait_for_worker(at)
    assert lm_points(at, "LM: mean reward") == [0, 0] and lm_points(at, "LM: task accuracy") == [1]
    assert points(switch_section(at, "Toy training")) == 1  # the toy's runs did not move


def test_language_model_run_shows_progress_while_it_trains_and_stops_on_stop():
    at = wait_for_worker(open_section("Language model"))
    at.slider(key="lm_iterations").set_value(200).run()
    at.button(key="lm_train_run").click().run()
    worker = at.session_state["lm_worker"]
    seen = []
    deadline = time.monotonic() + 600
    while len(set(seen)) < 3:  # the page redraws the growing run while the worker trains
        assert time.monotonic() < deadline
        time.sleep(0.3)
        at.run()
        seen.append(sum(lm_points(at, "LM: loss")))
    assert seen == sorted(seen) and worker.running
    assert any("Iteration" in str(p.proto.text) for p in at.get("progress"))
    assert not at.button(key="lm_stop").disabled and at.button(key="lm_train_run").disabled
    at.button(key="lm_stop").click().run()
    at_stop = worker.lm.iteration
    at = wait_for_worker(at)
    assert worker.snapshot().status == "stopped" and worker.snapshot().iteration <= at_stop + 1
    assert lm_points(at, "LM: loss") == [worker.snapshot().iteration]
    no_error(at)


def test_two_sessions_train_their_own_language_models():
    first, second = (wait_for_worker(open_section("Language model", seed=seed)) for seed in ("0", "1"))
    for at in (first, second):
        at.slider(key="lm_iterations").set_value(3).run()
        at.button(key="lm_train_run").click().run()
    assert first.session_state["lm_worker"] is not second.session_state["lm_worker"]
    first, second = wait_for_worker(first), wait_for_worker(second)
    one, two = (chart(at, "LM: loss")["data"][0]["y"] for at in (first, second))
    assert len(one) == len(two) == 3 and one != two
    assert first.session_state["lm_worker"].lm.policy is not second.session_state["lm_worker"].lm.policy


def test_language_model_section_shows_the_true_reward_of_a_hackable_task():
    at = wait_for_worker(open_section("Language model", task="sum_length"))
    at.slider(key="lm_iterations").set_value(2).run()
    at.button(key="lm_train_run").click().run()
    at = wait_for_worker(at)
    no_error(at)
    names = [d["name"] for d in chart(at, "LM: mean reward")["data"]]
    assert any(n.startswith("true reward") for n in names) and lm_points(at, "LM: mean reward") == [2] * 4


def test_language_model_section_explains_a_missing_model_folder():
    at = open_section("Language model", model="hf")
    assert not at.exception
    assert any("model folder" in e.value for e in at.error), [e.value for e in at.error]
    assert charts(switch_section(at, "Toy training"))  # the toy's section does not need the model


def test_language_model_section_shows_the_recorded_run_at_once_and_reproduces_it():
    at = open_section("Language model")
    recorded = [t for t in titles(at) if t.startswith("Recorded:")]
    assert recorded == ["Recorded: mean reward of each iteration's groups", "Recorded: task accuracy"]
    assert any("Recorded run, not live" in str(m.value) for m in at.markdown)
    # the built-in recording: one thread, and no processor named (it predates recorded.cpu)
    assert any("torch 2.13.0+cpu, 1 thread, " in str(c.value) for c in at.caption), [c.value for c in at.caption]
    assert len(chart(at, "Recorded: mean reward")["data"][0]["x"]) >= 500  # drawn at once: nothing trained yet
    at = wait_for_worker(at)
    at.button(key="rec_reproduce").click().run()
    replay = at.session_state["replay_worker"]
    assert replay is not at.session_state["lm_worker"]
    while replay.running:
        time.sleep(0.2)
        at.run()
    at.run()
    no_error(at)
    table = next(d.value for d in at.dataframe if "quantity" in d.value.columns)
    assert list(table["iteration"]) == [0, 1, 2, 3, 4, 5] and table["match"].all()
    assert any("match the recording" in s.value for s in at.success), [s.value for s in at.success]
    assert lm_points(at, "LM: mean reward") == [0, 0]  # the session's own live run did not move


def test_each_model_starts_on_the_task_and_step_it_visibly_learns_with():
    """SmolLM2 starts on 'Sum: correct and brief' at LoRA's Adam step, the built-in model on the exact sum at its
    own; switching models moves a task or step still at the old model's default, never one the user chose."""
    at = open_page()

    def shown():
        return at.selectbox(key="task").value, at.select_slider(key="lm_lr").value

    assert at.selectbox(key="model").value == "builtin" and shown() == ("sum", 3e-4)
    at.selectbox(key="model").set_value("smollm2").run()
    assert shown() == ("sum_brief", 1e-3)
    at.selectbox(key="model").set_value("builtin").run()
    assert shown() == ("sum", 3e-4)
    at.selectbox(key="task").set_value("sum_format").run()
    at.select_slider(key="lm_lr").set_value(1e-4).run()
    at.selectbox(key="model").set_value("smollm2").run()
    assert shown() == ("sum_format", 1e-4)
    no_error(at)
    at = open_page(model="smollm2")
    assert shown() == ("sum_brief", 1e-3)
    at = open_page(model="smollm2", task="sum", lm_lr="0.0003")
    assert shown() == ("sum", 3e-4)
