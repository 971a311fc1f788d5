"""Figure builders return the traces they promise; presets are MATH.md section 6; explanations hold numbers."""

import functools
import json

import pandas as pd
import plotly.graph_objects as go
import plotly.io
import pytest

from grpo_viz import charts, explain
from grpo_viz.config import PRESETS, TOY_STATE, TOY_WORDS, Settings, preset_matching
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.stepper import STAGES, StepRun, grpo_iteration, make_generator
from grpo_viz.tasks import word_reward
from grpo_viz.toy_view import toy_stage_figure

from ..plotly_json import decoded

TEXTS = ["sat", "barked", "slept", "barked"]


def test_distribution_chart_has_one_bar_trace_per_series():
    fig = charts.distribution_chart(["a", "b", "c"], {"π_θ": [0.2, 0.3, 0.5], "π_ref": [1 / 3] * 3})
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["π_θ", "π_ref"]
    assert list(fig.data[0].y) == [0.2, 0.3, 0.5]


def test_group_and_advantage_charts():
    fig = charts.group_reward_chart(TEXTS, [1, 0, 0.5, 0], 0.375, 0.4787, ["sat", "slept", "barked"])
    assert list(fig.data[0].y) == [1, 0, 0.5, 0] and len(fig.layout.shapes) == 3  # mean and mean ± std
    # the lines' values are written above the plot, not on the lines where they covered the bars
    assert fig.layout.title.subtitle.text == "solid line: mean r̄ = 0.3750 · dotted: r̄ ± σ, σ = 0.4787"
    assert not fig.layout.annotations
    fig = charts.advantage_chart(TEXTS, [1.3, -0.78, 0.26, -0.78])
    assert fig.data[0].marker.color[0] == charts.POSITIVE and fig.data[0].marker.color[1] == charts.NEGATIVE
    # a true minus sign, as wide as "+": Plotly hides labels that do not fit, and a hyphen let only the
    # negative ones fit in a half-width chart
    assert list(fig.data[0].text) == ["+1.3000", "−0.7800", "+0.2600", "−0.7800"]


def test_ratio_chart_marks_clipped_samples():
    fig = charts.ratio_chart(TEXTS, [1.43, 0.69, 1.11, 0.69], [1.3, -0.8, 0.3, -0.8], [True, True, False, True], 0.2, 0.2)
    inside, clipped, *legend = fig.data
    assert list(inside.y) == [1.11] and list(clipped.y) == [1.43, 0.69, 0.69]
    # the legend explains the shapes in a neutral colour; the samples' colours are the advantages' signs
    assert [t.marker.symbol for t in legend] == ["circle", "x"] and {t.marker.color for t in legend} == {charts.NEUTRAL}
    assert not inside.showlegend and not clipped.showlegend
    assert fig.layout.shapes[0].y0 == pytest.approx(0.8) and fig.layout.shapes[0].y1 == pytest.approx(1.2)


def test_surrogate_chart_curves_are_the_clipped_objective():
    fig = charts.surrogate_chart(TEXTS, [1.43, 0.69, 1.11, 0.69], [1.3, -0.8, 0.3, -0.8], [True, True, False, True],
                                 0.2, 0.28)
    curve = fig.data[1]  # A = +1 panel
    assert max(curve.y) == pytest.approx(1.28)
    points_positive = fig.data[2]
    assert list(points_positive.x) == [1.43, 1.11] and list(points_positive.y) == pytest.approx([1.28, 1.11])


def test_kl_gradient_and_trajectory_charts():
    fig = charts.kl_chart(TEXTS, [0.01, 0.07, 0.15, 0.07], 0.04)
    assert list(fig.data[1].y) == pytest.approx([0.0004, 0.0028, 0.006, 0.0028])
    fig = charts.gradient_chart(["sat", "slept", "barked"], [-0.3, -0.07, 0.4])
    assert list(fig.data[0].y) == pytest.approx([0.3, 0.07, -0.4])  # the descent direction
    fig = charts.trajectory_chart(["a", "b"], [[0.5, 0.5], [0.6, 0.4]], [0.5, 0.5])
    assert len(fig.data) == 4


def test_presets_follow_math_md():
    assert PRESETS["DAPO"].epsilon_high == 0.28 and PRESETS["DAPO"].loss_type == "dapo"
    assert PRESETS["GSPO"].importance_sampling_level == "sequence" and PRESETS["GSPO"].epsilon_low == 3e-4
    assert PRESETS["TRL defaults"].kl_ratio_correction and PRESETS["TRL defaults"].beta == 0
    assert PRESETS["Dr. GRPO"].scale_rewards == "none" and PRESETS["Dr. GRPO"].loss_type == "dr_grpo"
    assert preset_matching(Settings()) == "GRPO (DeepSeekMath)"
    for name in PRESETS:
        assert preset_matching(Settings().with_preset(name)) == name
    assert Settings(beta=0.1).preset_differences("GRPO (DeepSeekMath)") == {"beta": (0.04, 0.1)}


def test_settings_validate_in_plain_words():
    assert Settings().validate() == []
    problems = Settings(group_size=1, temperature=0.0, beta=float("nan")).validate()
    assert any("at least 2" in p for p in problems) and any("temperature" in p for p in problems)
    with pytest.raises(ValueError, match="at least 2"):
        grpo_iteration(ToyPolicy(), word_reward(["sat", "slept", "barked"], [1, 0.5, 0]), Settings(group_size=1),
                       make_generator(0))


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("mu", [1, 3])
def test_every_stage_explains_itself_with_numbers(preset, mu):
    settings = Settings(mu=mu).with_preset(preset)
    trace = grpo_iteration(ToyPolicy(), word_reward(["sat", "slept", "barked"], settings.rewards), settings,
                           make_generator(1))
    toy = explain.toy_numbers(trace, ToyPolicy())
    for stage in range(len(STAGES)):
        lines = explain.stage_latex(stage, trace, mu - 1, toy)
        assert lines and all(isinstance(line, str) for line in lines)
        assert "nan" not in " ".join(lines).lower()
        assert explain.stage_text(stage, trace, mu - 1)
        table = explain.sample_table(trace, mu - 1, stage, toy.probs_after)
        assert len(table) == settings.group_size
    assert "ratio w" in explain.sample_table(trace, 0, STAGES.index("Ratios")).columns


def test_table_markdown_aligns_numbers_right_and_escapes_markdown():
    frame = pd.DataFrame({"sample": [1, 2], "completion": ["a|b", "sat"], "loss L_i": [0.123456, -2.0]})
    assert explain.table_markdown(frame).splitlines() == [
        r"| sample | completion | loss L\_i |",
        "|---:|:---|---:|",
        r"| 1 | a\|b | 0.1235 |",
        "| 2 | sat | -2.0000 |",
    ]
    assert explain.table_markdown({c: frame[c].tolist() for c in frame.columns}) == explain.table_markdown(frame)


def test_the_page_table_is_the_exported_table():
    """The page writes its table from plain columns (no DataFrame a click); the CSV export's DataFrame holds the same."""
    settings = Settings(mu=3, group_size=12)
    trace = grpo_iteration(ToyPolicy(), word_reward(["sat", "slept", "barked"], settings.rewards), settings,
                           make_generator(2))
    for stage in range(len(STAGES)):
        columns = explain.sample_columns(trace, 2, stage)
        assert explain.table_markdown(columns) == explain.table_markdown(explain.sample_table(trace, 2, stage))


def test_equal_rewards_are_explained():
    settings = Settings(rewards=(1.0, 1.0, 1.0))
    trace = grpo_iteration(ToyPolicy(), word_reward(["sat", "slept", "barked"], settings.rewards), settings,
                           make_generator(0))
    assert trace.all_rewards_equal
    assert "no policy gradient" in explain.stage_text(STAGES.index("Advantages"), trace, 0)


def test_step_run_reuses_its_trace_and_advances():
    run = StepRun(ToyPolicy())
    settings, reward = Settings(), word_reward(["sat", "slept", "barked"], (1.0, 0.5, 0.0))
    first = run.trace(settings, reward)
    assert run.trace(settings, reward) is first
    run.new_group()
    assert run.trace(settings, reward) is not first
    after = run.trace(settings, reward).state_after[0]
    run.advance()
    assert run.iteration == 1 and (run.policy.logits.detach() == after).all()
    run.reset()
    assert run.iteration == 0 and (run.policy.logits.detach() == first.state_before[0]).all()


@pytest.mark.parametrize("template", ["plotly", None])  # a notebook's default; the app's (app.py sets None)
def test_unvalidated_figures_match_plotly_validation(monkeypatch, template):
    """The app builds figures without Plotly's validation (speed), and without a template constructs them only when
    something reads them; the JSON sent to the browser must not change."""
    monkeypatch.setattr(plotly.io.templates, "default", template)
    settings = Settings(mu=2)
    run = StepRun(ToyPolicy())
    trace = run.trace(settings, word_reward(TOY_WORDS, settings.rewards))
    toy = explain.toy_numbers(trace, run.policy)

    history = {"iteration": [0, 1], "p_a": [0.3, 0.4], "p_b": [0.3, 0.3], "p_c": [0.4, 0.3], "kl": [0.0, 0.01],
               "clip_low": [0.0, 0.1], "clip_high": [0.0, 0.2], "value": [0.1, 0.2], "value_loss": [0.5, 0.4],
               "expected_reward": [0.3, 0.4], "expected_train_reward": [0.4, 0.5]}
    runs = {"GRPO": history, "PPO": history}

    def figures():
        stages = [toy_stage_figure(trace, toy, k, 1, TOY_WORDS, TOY_STATE) for k in range(len(STAGES))]
        return stages + [
            charts.trajectory_chart(["a", "b"], [[0.5, 0.5], [0.6, 0.4]], [0.5, 0.5]),
            charts.top_k_chart(["<answer>", "13", "14"], {"π_θ": [0.24, 0.18, 0.14], "π_ref": [0.2, 0.2, 0.1]}, "13"),
            charts.lm_reward_chart([1, 2, 3, 4], [0.1, 0.2, 0.4, 0.5], [0.0, 0.3, 0.5, 0.5]),
            charts.lm_accuracy_chart([1, 2, 3, 4], [0.0, 0.5, 0.5, 1.0]),
            charts.token_heatmap([["a", " b"], ["c"]], [[0.1, -0.2], [0.5]], "advantage", "A", row_labels=["1", "2"]),
            charts.completion_summary_chart([1, 0, 0.5], [1.1, -0.9, 0.2], [3, 5, 2], [1, 0, 0]),
            charts.ppo_reward_chart(["sat", "slept"], [1, 0], [-0.01, 0.02], 0.4),
            charts.ppo_kl_chart(["sat", "slept"], [0.1, -0.05], 0.04),
            charts.ppo_advantage_chart(["sat", "slept"], [0.6, -0.4], [1.0, -1.0], True),
            charts.training_probability_chart(["a", "b", "c"], runs, [0.3, 0.3, 0.4]),
            charts.training_metric_chart(runs, "kl", "KL", "KL", reference=0.5, reference_name="target"),
            charts.clip_fraction_chart(runs),
            charts.value_chart(runs),
            charts.simplex_chart(["a", "b", "c"], runs, [0.3, 0.3, 0.4]),
            charts.reward_hacking_chart(runs),
            *(build(x_range=[0, 50]) for build in x_range_builders(runs)),
        ]

    def sent(figs):  # what st.plotly_chart sends: the figure's dict as JSON
        return [decoded(json.loads(plotly.io.to_json(f.to_dict(), validate=False))) for f in figs]

    validated = sent(figures())
    monkeypatch.setattr(charts, "VALIDATE_FIGURES", False)
    unvalidated = figures()
    assert sent(unvalidated) == validated
    if template is None:  # st.plotly_chart's to_dict built none of them
        assert all("_spec" in f.__dict__ for f in unvalidated)
    assert sent([f.update_layout() for f in figures()]) == validated  # constructed on first use: the same figure


def x_range_builders(runs):
    """The Training page's charts, each waiting for the x range that Play fills up to."""
    return [
        functools.partial(charts.training_probability_chart, ["a", "b", "c"], runs, [0.3, 0.3, 0.4]),
        functools.partial(charts.training_metric_chart, runs, "kl", "KL", "KL", reference=0.5, reference_name="t"),
        functools.partial(charts.clip_fraction_chart, runs),
        functools.partial(charts.value_chart, runs),
        functools.partial(charts.lm_reward_chart, [1, 2, 3], [0.1, 0.2, 0.4], [0.0, 0.3, 0.5]),
        functools.partial(charts.lm_accuracy_chart, [1, 2, 3], [0.0, 0.5, 0.5]),
    ]


def test_x_range_is_what_update_xaxes_gave():
    """The builders take the Training page's x range (one construction) instead of a later ``update_xaxes``: every
    x axis of every panel gets it, as before."""
    history = {"iteration": [0, 1], "p_a": [0.3, 0.4], "p_b": [0.3, 0.3], "p_c": [0.4, 0.3], "kl": [0.0, 0.01],
               "clip_low": [0.0, 0.1], "clip_high": [0.0, 0.2], "value": [0.1, 0.2], "value_loss": [0.5, 0.4],
               "expected_train_reward": [0.4, 0.5]}
    for build in x_range_builders({"GRPO": history, "PPO": history}):
        given = build(x_range=[0, 50]).to_plotly_json()
        updated = build().update_xaxes(range=[0, 50]).to_plotly_json()
        assert given == updated, build.func.__name__
        assert [axis["range"] for name, axis in given["layout"].items() if name.startswith("xaxis")]


def test_top_k_chart_keeps_number_tokens_as_categories_in_order():
    """Tokens like "13" made Plotly's axis numeric: the bars sorted by value and "<answer>" vanished."""
    fig = charts.top_k_chart(["<answer>", "13", "14"], {"π_θ": [0.24, 0.18, 0.14], "π_ref": [0.2, 0.2, 0.1]}, "13")
    assert fig.layout.xaxis.type == "category"
    assert list(fig.data[0].x) == ["<answer>", "13", "14"]
    assert fig.layout.annotations[0].x == 1  # "sampled" over "13", the second category (not at category index 13)
    many = charts.top_k_chart([str(n) for n in range(8)], {"a": [0.1] * 8, "b": [0.1] * 8})
    assert many.data[0].text is not None and many.data[1].text is None  # past a dozen bars: first series labelled


def test_a_heatmap_where_nothing_varies_has_a_plain_scale():
    """Every ratio exactly 1 (the first step on a group) gave colour-bar ticks at 1.000000001."""
    fig = charts.token_heatmap([["a", "b"], ["c"]], [[1.0, 1.0], [1.0]], "w_t", "ratios", center=1.0)
    assert (fig.data[0].zmin, fig.data[0].zmax) == pytest.approx((0.99, 1.01))
    zero = charts.token_heatmap([["a", "b"], ["c"]], [[0.0, 0.0], [0.0]], "k3", "KL", center=None)
    assert (zero.data[0].zmin, zero.data[0].zmax) == pytest.approx((0.0, 0.01))
    moved = charts.token_heatmap([["a", "b"], ["c"]], [[1.2, 1.0], [0.9]], "w_t", "ratios", center=1.0)
    assert (moved.data[0].zmin, moved.data[0].zmax) == pytest.approx((0.8, 1.2))


def test_the_narrow_toy_ratio_chart_has_no_value_labels():
    fig = charts.ratio_chart(TEXTS, [1.0] * 4, [1.3, -0.8, 0.3, -0.8], [False] * 4, 0.2, 0.2, value_labels=False)
    assert all(t.mode == "markers" for t in fig.data)
