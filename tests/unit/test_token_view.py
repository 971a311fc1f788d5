"""The token heatmap a class can read: at 24 or more tokens a row every cell's label fits its cell at the width the
chart is drawn at, long completions wrap onto more rows, and the answer the reward reads is boxed."""

from __future__ import annotations

import pytest

from grpo_viz import charts, lm_view

CHAR_EM = 0.6  # the label-width estimate the builders use (digits ~0.5 em: this errs wide)


def completion(n: int, seed: int = 0) -> list[str]:
    """n tokens of a small model's kind: words with their space, digits, tags, long words."""
    vocabulary = [" the", " answer", " is", "<answer>", "1", "3", "</answer>", "\n", " because", " sum", ".", "<eos>"]
    return [vocabulary[(seed + 7 * t) % len(vocabulary)] for t in range(n)]


def build(lengths, spans=None, presenting=False, **kwargs):
    tokens = [completion(n, i) for i, n in enumerate(lengths)]
    values = [[(i - t) / 10 for t in range(n)] for i, n in enumerate(lengths)]
    with charts.presentation(presenting):
        fig = charts.token_heatmap(tokens, values, "A_i", "advantage", subtitle="one number per completion",
                                   answer_spans=spans, **kwargs).to_dict()
    return tokens, values, fig


def cell_px(fig: dict, figure_px: float) -> float:
    """The width of one cell when the figure is ``figure_px`` wide (the colour bar takes its share)."""
    margin = fig["layout"]["margin"]
    plot = figure_px - margin["l"] - margin["r"] - charts.TOKEN_COLORBAR_PX
    return plot / len(fig["layout"]["xaxis"]["tickvals"])


def unwrap(fig: dict, rows: int) -> list[list[tuple[str, float]]]:
    """The (label, value) of every cell, grouped back into completions by the hover's "completion i"."""
    heat = fig["data"][0]
    out = [[] for _ in range(rows)]
    for z_row, text_row, hover_row in zip(heat["z"], heat["text"], heat["customdata"]):
        for v, label, hover in zip(z_row, text_row, hover_row):
            if v is not None:
                i = int(hover.split(",")[0].split()[1]) - 1
                out[i].append((label, v))
    return out


@pytest.mark.parametrize("presenting", [False, True])
@pytest.mark.parametrize("tokens_per_row", [24, 32, 64])
def test_every_label_fits_its_cell_at_the_narrowest_width_it_is_drawn(tokens_per_row, presenting):
    _, _, fig = build([tokens_per_row] * 8, presenting=presenting)
    heat = fig["data"][0]
    font = heat["textfont"]["size"]
    assert font >= (18 if presenting else 14)
    room = cell_px(fig, charts.TOKEN_FIGURE_PX[presenting])
    widest = max(len(label) for row in heat["text"] for label in row)
    assert widest <= charts.TOKEN_LABEL_CHARS
    assert widest * font * CHAR_EM + heat["xgap"] <= room, (widest, font, room)
    # and each cell (a row less the gap between rows) is at least as tall as its text
    layout = fig["layout"]
    plot_height = layout["height"] - layout["margin"]["t"] - layout["margin"]["b"]
    assert plot_height / len(heat["z"]) - heat["ygap"] >= font


@pytest.mark.parametrize("tokens_per_row", [24, 40])
def test_long_completions_wrap_into_rows_holding_every_token_once_in_order(tokens_per_row):
    lengths = [tokens_per_row, 3, tokens_per_row - 5, 1]
    tokens, values, fig = build(lengths)
    heat = fig["data"][0]
    per_line = len(heat["z"][0])
    assert per_line < tokens_per_row and len(heat["z"]) > len(lengths)  # it wrapped
    assert len(heat["z"]) == sum(-(-n // per_line) for n in lengths)
    cells = unwrap(fig, len(lengths))
    for i, row in enumerate(tokens):
        assert [v for _, v in cells[i]] == pytest.approx(values[i])
        assert [label for label, _ in cells[i]] == [charts._cell_text(t, charts.TOKEN_LABEL_CHARS) for t in row]
    # the first row of a completion carries its label, a continued one the position it starts at
    ticks = fig["layout"]["yaxis"]["ticktext"]
    assert ticks[0] == "1" and ticks[1] == f"↳ {per_line + 1}"
    # lines part the completions
    lines = [s for s in fig["layout"]["shapes"] if s["type"] == "line"]
    assert len(lines) == len(lengths) - 1


def test_rows_are_evened_out_rather_than_leaving_a_stub():
    _, _, fig = build([24] * 2, figure_px=charts.TOKEN_FIGURE_PX[False])
    per_line = len(fig["data"][0]["z"][0])
    fits = charts.token_cells_per_line(charts.TOKEN_FIGURE_PX[False], 14)
    lines = -(-24 // fits)
    assert per_line == -(-24 // lines) and 24 - per_line * (lines - 1) >= per_line - lines


def test_short_completions_keep_one_row_each_as_the_lesson_shows_them():
    tokens, values, fig = build([2, 6, 4, 2, 2, 6, 2, 2])
    heat = fig["data"][0]
    assert len(heat["z"]) == 8 and len(heat["z"][0]) == 6
    for i, row in enumerate(heat["z"]):
        assert [v for v in row if v is not None] == pytest.approx(values[i])
    assert not [s for s in fig["layout"].get("shapes", []) if s["type"] == "line"]


def boxes(fig: dict) -> list[tuple[int, float, float]]:
    return sorted((round((s["y0"] + s["y1"]) / 2), s["x0"], s["x1"]) for s in fig["layout"].get("shapes", [])
                  if s["type"] == "rect")


def test_the_answer_span_is_boxed_and_a_box_split_where_its_row_wraps():
    _, _, fig = build([24, 24, 5], spans=[(2, 4), None, (0, 5)])
    per_line = len(fig["data"][0]["z"][0])
    rows_of_first = -(-24 // per_line)
    assert boxes(fig) == [(0, 1.5, 3.5), (2 * rows_of_first, -0.5, 4.5)]
    # a span across a wrap is one box on each row
    start = per_line - 1
    _, _, fig = build([24], spans=[(start, start + 2)])
    assert boxes(fig) == [(0, per_line - 1.5, per_line - 0.5), (1, -0.5, 0.5)]
    hovers = [h for row in fig["data"][0]["customdata"] for h in row if "answer the reward reads" in h]
    assert len(hovers) == 2
    assert any("answer the reward reads" in a["text"] for a in fig["layout"]["annotations"])


def test_without_an_answer_nothing_is_boxed_or_explained():
    _, _, fig = build([6, 3])
    assert not boxes(fig) and not fig["layout"].get("annotations")


def test_token_span_maps_characters_to_tokens():
    row = ["<answer>", "1", "3", "</answer>", "<eos>"]
    assert charts.token_span(row, 8, 10) == (1, 3)
    assert charts.token_span(["3", " or", " 7"], 5, 6) == (2, 3)
    assert charts.token_span(["ab", "cd"], 1, 3) == (0, 2)  # a number split inside tokens
    assert charts.token_span(["ab"], 5, 6) is None


def test_the_answer_the_sum_reward_reads():
    spans = lm_view.answer_spans([["13", "<eos>"], ["<answer>", "1", "3", "</answer>", "<eos>"], [" the", " cat"],
                                  ["3", " or", " 7", "<eos>"], ["2", " is", " <answer>", "5", "</answer>"]])
    assert spans == [(0, 1), (1, 3), None, (2, 3), (3, 4)]


def test_the_wrapped_boxed_figure_is_what_plotly_validation_gives(monkeypatch):
    import json

    import plotly

    def sent():
        fig = build([24, 7, 30], spans=[(5, 9), None, (28, 30)])[2]
        return json.loads(plotly.io.to_json(fig, validate=False))

    monkeypatch.setattr(charts, "VALIDATE_FIGURES", True)
    validated = sent()
    monkeypatch.setattr(charts, "VALIDATE_FIGURES", False)
    assert sent() == validated


def test_a_chart_capped_in_height_shows_each_completions_first_tokens_and_says_so():
    """Presenting, a group of long completions keeps to one screen: each completion's first tokens, as many rows of
    them as fit under ``max_height``, the rest named in its last cell's hover and the key under the cells."""
    tokens, _, fig = build([24] * 8, presenting=True, max_height=440)
    layout = fig["layout"]
    assert layout["height"] <= 440  # the subtitle's room included
    heat = fig["data"][0]
    shown = [[label for label, _ in row] for row in unwrap(fig, 8)]
    assert {len(row) for row in shown} == {len(shown[0])} and 0 < len(shown[0]) < 24
    rest = [h for row in heat["customdata"] for h in row if "more tokens" in h]
    assert len(rest) == 8 and f"and {24 - len(shown[0])} more tokens" in rest[0]
    assert f"first {len(shown[0])} tokens" in layout["annotations"][0]["text"]
    # short completions are not cut, and say nothing about it
    _, _, short = build([3] * 8, presenting=True, max_height=440)
    assert all(len(row) == 3 for row in unwrap(short, 8))
    assert not any("tokens" in a["text"] for a in short["layout"].get("annotations", []))
