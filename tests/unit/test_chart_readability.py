"""Charts read from the back of a room: no value labels running together, no text under 14 px (18 px presenting).

The geometry here is written out independently of grpo_viz.charts: a label's width is estimated as
characters x font size x 0.6, a bar's width from the figure's own margins, bargap and bargroupgap at a 600 px
wide figure (the width the builders fit their labels to; narrower in the browser, Plotly hides what does not fit).
"""

import threading

import pytest

from grpo_viz import charts, explain
from grpo_viz.config import TOY_STATE, TOY_WORDS, Settings
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.stepper import STAGES, StepRun
from grpo_viz.tasks import word_reward
from grpo_viz.toy_view import toy_stage_figure

FIGURE_PX = 600
WORDS = ["sat", "slept", "barked"]


def texts(g):
    return [WORDS[i % 3] for i in range(g)]


def history():
    return {"iteration": [0, 1], "p_sat": [0.3, 0.4], "p_slept": [0.3, 0.3], "p_barked": [0.4, 0.3],
            "kl": [0.0, 0.01], "clip_low": [0.0, 0.1], "clip_high": [0.0, 0.2], "value": [0.1, 0.2],
            "value_loss": [0.5, 0.4], "expected_reward": [0.3, 0.4], "expected_train_reward": [0.4, 0.5],
            "loss": [0.1, 0.2]}


def toy_figures(group_size=8, mu=2):
    settings = Settings(mu=mu, group_size=group_size)
    run = StepRun(ToyPolicy())
    trace = run.trace(settings, word_reward(TOY_WORDS, settings.rewards))
    toy = explain.toy_numbers(trace, run.policy)
    return {f"toy {STAGES[k]} G={group_size}": toy_stage_figure(trace, toy, k, mu - 1, TOY_WORDS, TOY_STATE)
            for k in range(len(STAGES))}


def all_figures():
    """Every builder, with the sizes the pages use (G = 4, 8, 16; 3 words; a language model's top-k)."""
    runs = {"GRPO": history(), "PPO": history()}
    figs = {}
    for g in (4, 8, 16):
        t = texts(g)
        adv = [(-1) ** i * (0.5 + 0.1 * i) for i in range(g)]
        figs |= {
            f"group G={g}": charts.group_reward_chart(t, [i % 3 / 2 for i in range(g)], 0.5, 0.41, WORDS),
            f"advantage G={g}": charts.advantage_chart(t, adv),
            f"ratio G={g}": charts.ratio_chart(t, [1 + 0.01 * i for i in range(g)], adv, [i % 2 == 0 for i in range(g)],
                                               0.2, 0.28),
            f"surrogate G={g}": charts.surrogate_chart(t, [1 + 0.01 * i for i in range(g)], adv, [False] * g, 0.2, 0.2),
            f"kl G={g}": charts.kl_chart(t, [0.0012 * (i + 1) for i in range(g)], 0.04),
            f"ppo reward G={g}": charts.ppo_reward_chart(t, [i % 3 / 2 for i in range(g)], [-0.0013] * g, 0.4, WORDS),
            f"ppo kl G={g}": charts.ppo_kl_chart(t, [0.0123 * (-1) ** i for i in range(g)], 0.04),
            f"ppo advantage G={g}": charts.ppo_advantage_chart(t, adv, [a * 1.37 for a in adv], True),
            f"ppo advantage unwhitened G={g}": charts.ppo_advantage_chart(t, adv, adv, False),
        }
        figs |= toy_figures(g)
    figs |= {
        "distribution 3x3": charts.distribution_chart(WORDS, {"π_old": [0.918, 0.05, 0.032],
                                                              "after update": [0.917, 0.051, 0.032],
                                                              "π_ref": [0.3, 0.3, 0.4]}),
        "distribution 3x2": charts.distribution_chart(WORDS, {"π_θ": [0.3, 0.3, 0.4], "π_ref": [0.3, 0.3, 0.4]}),
        "gradient": charts.gradient_chart(WORDS, [-0.3012, -0.0712, 0.4123]),
        "trajectory": charts.trajectory_chart(WORDS, [[0.3, 0.3, 0.4], [0.4, 0.3, 0.3]], [0.3, 0.3, 0.4]),
        "top-k 5x3": charts.top_k_chart(["<answer>", "13", "14", " the", "7"],
                                        {"π_θ": [0.24, 0.18, 0.14, 0.1, 0.05], "π_old": [0.2, 0.2, 0.1, 0.1, 0.1],
                                         "π_ref": [0.2, 0.2, 0.1, 0.1, 0.1]}, "13"),
        "top-k 8x2": charts.top_k_chart([str(n) for n in range(8)], {"a": [0.1] * 8, "b": [0.1] * 8}),
        "top-k 12x3": charts.top_k_chart([str(n) for n in range(12)], {"a": [0.1] * 12, "b": [0.1] * 12,
                                                                        "c": [0.1] * 12}),
        "heatmap": charts.token_heatmap([["a", " bcdefghijkl", "c"] * 4, ["d"]], [[0.1, -0.2, 0.3] * 4, [0.5]],
                                        "advantage", "A", subtitle="s"),
        "summary": charts.completion_summary_chart([1, 0, 0.5], [1.1, -0.9, 0.2], [3, 5, 2], [1, 0, 0]),
        "lm reward": charts.lm_reward_chart([1, 2, 3], [0.1, 0.2, 0.4], [0.0, 0.3, 0.5]),
        "lm accuracy": charts.lm_accuracy_chart([1, 2, 3], [0.0, 0.5, 0.5]),
        "training probability": charts.training_probability_chart(WORDS, runs, [0.3, 0.3, 0.4]),
        "training metric": charts.training_metric_chart(runs, "kl", "KL", "KL", reference=0.5, reference_name="t"),
        "clip fraction": charts.clip_fraction_chart(runs),
        "value": charts.value_chart(runs),
        "simplex": charts.simplex_chart(WORDS, runs, [0.3, 0.3, 0.4]),
        "reward hacking": charts.reward_hacking_chart(runs),
    }
    return {name: fig.to_plotly_json() for name, fig in figs.items()}


# ----------------------------------------------------------------- value labels


def estimated_px(label, font_px):
    return len(label) * font_px * 0.6


def labels_and_room(fig, figure_px=FIGURE_PX):
    """(trace name, label, estimated label px, px it may take) for every value label a figure draws.

    A bar's label may take its bar (Plotly keeps it there, ``constraintext``), or, when it is its group's only
    labelled bar (``constraintext="none"``), its group; a marker's label, the room between two samples."""
    layout = fig["layout"]
    margin = layout.get("margin", {})
    plot = figure_px - margin.get("l", 80) - margin.get("r", 80)
    bargap = layout.get("bargap", 0.2)
    bargroupgap = layout.get("bargroupgap", 0.0)
    grouped = layout.get("barmode", "group") == "group"
    bars = [t for t in fig["data"] if t.get("type") == "bar" and list(t.get("x", [])) != [None]]
    out = []
    for trace in fig["data"]:
        text = trace.get("text")
        if text is None:
            continue
        shows = trace.get("type") == "bar" or "text" in trace.get("mode", "")
        if not shows or trace.get("type") == "heatmap":
            continue
        categories = len(set(trace["x"])) if trace.get("type") == "bar" else len(set(
            x for t in fig["data"] if t.get("type") == "scatter" and t.get("xaxis", "x") == trace.get("xaxis", "x")
            for x in t.get("x", []) if x is not None))
        slot = plot / max(1, categories)
        group = slot * (1 - bargap)
        if trace.get("type") == "bar":
            per_group = sum(1 for t in bars if t.get("xaxis", "x") == trace.get("xaxis", "x")) if grouped else 1
            room = group if trace.get("constraintext") == "none" else group / per_group * (1 - bargroupgap)
        else:
            room = group
        size = trace.get("textfont", {}).get("size") or layout["font"]["size"]
        out += [(trace.get("name"), label, estimated_px(label, size), room) for label in text]
    return out


@pytest.mark.parametrize("presenting", [False, True])
def test_every_value_label_fits_its_bar_at_600_px(presenting):
    """No label wider than its bar (or, alone in its group, than its group): labels never run together."""
    with charts.presentation(presenting):
        figures = all_figures()
    too_wide = [(name, trace, label, round(px), round(room)) for name, fig in figures.items()
                for trace, label, px, room in labels_and_room(fig) if px > room]
    assert not too_wide


@pytest.mark.parametrize("presenting", [False, True])
def test_grouped_labels_leave_a_gap_and_are_hidden_rather_than_shrunk(presenting):
    """In the browser a chart is often narrower than 600 px: a label that would have to shrink below the smallest
    text is hidden (uniformtext), never drawn at 9 px against its neighbour as "0.3000.300"."""
    with charts.presentation(presenting):
        figures = all_figures()
    minimum = 18 if presenting else 14
    for name, fig in figures.items():
        layout = fig["layout"]
        assert layout["uniformtext"] == {"minsize": minimum, "mode": "hide"}, name
        labelled = [t for t in fig["data"] if t.get("type") == "bar" and t.get("text") is not None]
        if any(t.get("constraintext") == "none" for t in labelled):
            assert len(labelled) == 1, name  # free to span the group only when no other bar of it has a label
        if layout.get("barmode", "group") == "group" and len(labelled) > 1:
            assert layout["bargroupgap"] > 0, name


def test_the_labels_that_ran_together():
    """π_old 0.918 beside 0.917 after the update, and π_θ 0.300 beside π_ref 0.300: each its own bar's width."""
    fig = charts.distribution_chart(WORDS, {"π_old": [0.918, 0.05, 0.032], "after update": [0.917, 0.051, 0.032],
                                            "π_ref": [0.3, 0.3, 0.4]}).to_plotly_json()
    assert [t["text"] for t in fig["data"]] == [["0.918", "0.050", "0.032"], ["0.917", "0.051", "0.032"],
                                                ["0.300", "0.300", "0.400"]]
    with charts.presentation():  # 18 px: two decimals fit a 3-bar group at 600 px, three do not
        big = charts.distribution_chart(WORDS, {"π_θ": [0.3, 0.3, 0.4], "π_ref": [0.3, 0.3, 0.4],
                                                "group": [0.25, 0.5, 0.25]}).to_plotly_json()
    assert [t["text"] for t in big["data"]] == [["0.30", "0.30", "0.40"], ["0.30", "0.30", "0.40"],
                                                ["0.25", "0.50", "0.25"]]
    # 12 tokens x 3 series: no series fits with every other labelled; the policy keeps its labels over its group
    crowded = charts.distribution_chart([str(n) for n in range(12)], {"π_old": [0.1] * 12, "π_θ": [0.1] * 12,
                                                                      "π_ref": [0.1] * 12}).to_plotly_json()
    assert [t.get("text") is not None for t in crowded["data"]] == [False, True, False]


def test_labels_lose_digits_before_they_lose_their_bars():
    four = charts.advantage_chart(texts(4), [1.3, -0.78, 0.26, -0.78]).to_plotly_json()
    assert four["data"][0]["text"] == ["+1.3000", "−0.7800", "+0.2600", "−0.7800"]
    eight = charts.advantage_chart(texts(8), [1.3, -0.78] * 4).to_plotly_json()
    assert eight["data"][0]["text"][:2] == ["+1.30", "−0.78"]  # 2 decimals fit 8 bars
    sixteen = charts.advantage_chart(texts(16), [1.3, -0.78] * 8).to_plotly_json()
    assert "text" not in sixteen["data"][0]  # not even 1 fits 16 bars at 14 px: the hover and the table have them
    ratios = charts.ratio_chart(texts(8), [1.0] * 8, [1, -1] * 4, [False] * 8, 0.2, 0.2).to_plotly_json()
    assert ratios["data"][0]["text"][0] == "1.0000"
    with charts.presentation():
        ratios = charts.ratio_chart(texts(8), [1.0] * 8, [1, -1] * 4, [False] * 8, 0.2, 0.2).to_plotly_json()
    assert ratios["data"][0]["text"][0] == "1.000"  # 3 decimals between 8 samples at 18 px


# ----------------------------------------------------------------- font sizes


def font_sizes(spec, path=""):
    """(path, size) of every font in a figure's dict; hover boxes excepted."""
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "hoverlabel":
                continue
            if key.endswith("font") and isinstance(value, dict) and "size" in value:
                yield f"{path}.{key}", value["size"]
            yield from font_sizes(value, f"{path}.{key}")
    elif isinstance(spec, list):
        for i, value in enumerate(spec):
            yield from font_sizes(value, f"{path}[{i}]")


def missing_fonts(fig):
    """Text a figure draws without an explicit size: Streamlit's theme would draw it at 12 px."""
    layout, missing = fig["layout"], []
    for where in ("font", "legend.font", "title.font"):
        node = layout
        for key in where.split("."):
            node = node.get(key, {})
        if "size" not in node:
            missing.append(where)
    if "subtitle" in layout["title"] and "size" not in layout["title"]["subtitle"].get("font", {}):
        missing.append("title.subtitle.font")
    axes = {k: v for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))}
    axes |= {f"ternary.{k}": v for k, v in layout.get("ternary", {}).items() if k.endswith("axis")}
    if "ternary" not in layout:
        assert "xaxis" in axes and "yaxis" in axes
    for name, axis in axes.items():
        if "size" not in axis.get("tickfont", {}):
            missing.append(f"{name}.tickfont")
        if axis.get("title", {}).get("text") and "size" not in axis["title"].get("font", {}):
            missing.append(f"{name}.title.font")
    missing += [f"annotations[{i}]" for i, a in enumerate(layout.get("annotations", []))
                if "size" not in a.get("font", {})]
    for i, trace in enumerate(fig["data"]):
        shows = trace.get("type") in ("bar", "heatmap") or "text" in trace.get("mode", "")
        if trace.get("text") is not None and shows and "size" not in trace.get("textfont", {}):
            missing.append(f"data[{i}].textfont")
        if trace.get("type") == "heatmap" and "size" not in trace.get("colorbar", {}).get("tickfont", {}):
            missing.append(f"data[{i}].colorbar.tickfont")
    return missing


@pytest.mark.parametrize("presenting, minimum", [(False, 14), (True, 18)])
def test_no_text_under_the_minimum(presenting, minimum):
    """Every font of every builder at least 14 px (Streamlit's theme: 12 px ticks), at least 18 px presenting."""
    with charts.presentation(presenting):
        figures = all_figures()
    small = [(name, where, size) for name, fig in figures.items() for where, size in font_sizes(fig)
             if size < minimum]
    assert not small
    unsized = [(name, where) for name, fig in figures.items() for where in missing_fonts(fig)]
    assert not unsized


def test_tick_labels_are_dark_on_light_and_light_on_dark():
    def ticks(**style):
        with charts.presentation(False, **style):
            layout = charts.gradient_chart(WORDS, [0.1, 0.2, -0.3]).to_plotly_json()["layout"]
        return {layout["xaxis"]["tickfont"]["color"], layout["yaxis"]["tickfont"]["color"],
                layout["yaxis"]["title"]["font"]["color"], layout["legend"]["font"]["color"]}

    assert ticks(dark=False) == {"#333333"}
    assert ticks(dark=True) == {"#dddddd"}
    assert ticks() == {charts.TEXT_COLORS[None]}  # the theme not known: a grey readable on both


def test_presentation_is_per_thread():
    """One lecturer presenting must not enlarge the charts of the students' sessions (other threads)."""
    seen = {}

    def lecturer():
        charts.set_presentation(True)
        seen["lecturer"] = charts.gradient_chart(WORDS, [0.1, 0.2, -0.3]).to_plotly_json()["layout"]["font"]["size"]

    thread = threading.Thread(target=lecturer)
    thread.start()
    thread.join()
    student = charts.gradient_chart(WORDS, [0.1, 0.2, -0.3]).to_plotly_json()["layout"]["font"]["size"]
    assert (seen["lecturer"], student) == (18, 14)
    with charts.presentation():
        assert charts.text_style().min_px == 18
    assert charts.text_style().min_px == 14
