"""Would a chart that updates in place be faster? Plotly.newPlot (what the browser does when Streamlit replaces a
changed chart) against Plotly.react on the same div (an in-place update), in Chromium, for two of the app's figures.

    python bench/plotly_update.py [--repeats 40]

Streamlit 1.67 gives a Plotly chart a new element id whenever its figure changes, so every changed chart is drawn
anew. Only a custom chart component could update it in place instead; this measures what that would save. Plotly's
own plotly.min.js (from the plotly package) runs on a blank page; each line prints the median milliseconds of
drawing the figure from scratch and of updating the drawn figure with the next step's data, with Plotly's mode bar
(Streamlit's default) and without it.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import plotly
import plotly.io as pio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from grpo_viz import charts  # noqa: E402
from grpo_viz.config import TOY_WORDS  # noqa: E402

NEW_PLOT_JS = """async ([spec, config, repeats]) => {
    const figure = JSON.parse(spec), host = document.getElementById('host'), times = [];
    for (let i = 0; i < repeats; i++) {
        const div = document.createElement('div'); host.appendChild(div);
        const t0 = performance.now();
        await Plotly.newPlot(div, figure.data, figure.layout, config);
        div.getBoundingClientRect();  // the layout it caused, as a page would pay it
        times.push(performance.now() - t0);
        Plotly.purge(div); host.removeChild(div);
    }
    return times.sort((a, b) => a - b)[Math.floor(repeats / 2)];
}"""
# the next step's data: one more point on every line (Training), or every value moved a little (a stage chart)
REACT_JS = """async ([spec, config, repeats]) => {
    const host = document.getElementById('host'), times = [], div = document.createElement('div');
    host.appendChild(div);
    const first = JSON.parse(spec);
    await Plotly.newPlot(div, first.data, first.layout, config);
    for (let i = 0; i < repeats; i++) {
        const next = JSON.parse(spec);
        next.data.forEach(t => {
            if (t.type === 'scatter') { t.x = [...t.x, t.x.length]; t.y = [...t.y, 0.5]; }
            else { t.y = t.y.map(v => v * (1 + (i + 1) / 100)); }
        });
        const t0 = performance.now();
        await Plotly.react(div, next.data, next.layout, config);
        div.getBoundingClientRect();
        times.push(performance.now() - t0);
    }
    Plotly.purge(div); host.removeChild(div);
    return times.sort((a, b) => a - b)[Math.floor(repeats / 2)];
}"""


def figures() -> dict[str, str]:
    pio.templates.default = None  # as app.py sends them
    rng = random.Random(0)

    def run() -> dict:
        return {"iteration": list(range(6)), **{f"p_{w}": [rng.random() for _ in range(6)] for w in TOY_WORDS}}

    return {
        "stage_chart": charts.distribution_chart(TOY_WORDS, {"π_θ": [0.3, 0.2, 0.5], "π_ref": [0.3, 0.2, 0.5],
                                                             "group": [0.25, 0.125, 0.625]}, title="Next word").to_json(),
        "training_chart": charts.training_probability_chart(TOY_WORDS, {"GRPO": run(), "PPO": run()},
                                                            [0.3, 0.2, 0.5]).to_json(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_content("<html><body><div id='host' style='width: 700px'></div></body></html>")
        page.add_script_tag(path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js"))
        for name, spec in figures().items():
            for mode_bar in (True, False):
                config = {} if mode_bar else {"displayModeBar": False}
                new_plot = page.evaluate(NEW_PLOT_JS, [spec, config, args.repeats])
                react = page.evaluate(REACT_JS, [spec, config, args.repeats])
                print(f"plotly_update figure={name} mode_bar={mode_bar} new_plot_ms={new_plot:.1f} "
                      f"react_ms={react:.1f} saved={1 - react / new_plot:.0%}")
        browser.close()


if __name__ == "__main__":
    main()
