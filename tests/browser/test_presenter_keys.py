"""Presentation mode on every stepping page in real Chromium: the presenter's keys step the stage whatever has
focus, and every stage fits a 1280 x 720 and a 1024 x 768 projector with nothing scrolled or cut."""

import re

import pytest

from .conftest import DRAWN_JS, SCREENSHOTS, SETTLED_JS, every_stage_drawn_js

pytestmark = pytest.mark.browser

# (URL path, stage cursor key, slider to drag with the mouse in presentation mode, and its URL)
PAGES = {
    "step_through": ("step_through", "stage", "Inner update shown (of μ)"),
    "ppo_vs_grpo": ("ppo_vs_grpo", "cmp_stage", None),
    "language_model": ("language_model", "lm_stage", "Inner update shown (of μ)"),
}
SIZES = [(1280, 720), (1024, 768)]

# the stage bar: tabs where the browser steps the stages (ui.stage_tabs), else a segmented control
TABBED = {"step_through", "ppo_vs_grpo", "language_model"}


def stage_bar(name: str) -> str:
    """The stage bar's buttons (a stage's own tabs, PPO vs GRPO's presenting, are not in it)."""
    cursor = PAGES[name][1]
    return f".st-key-{cursor}_tabs [role=tab]" if name in TABBED else '[data-testid="stButtonGroup"] button'


# What scrolls in Streamlit is its main section, not the document: both must fit the window, and every element
# shown in the main block (a hidden tab's or stage's are not) must lie inside it.
FIT_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const outside = [];
  document.querySelectorAll('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]').forEach(el => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || !el.checkVisibility({visibilityProperty: true})) return;
    if (el.closest('details:not([open])')) return;  // a closed expander's body is not shown
    if (r.top < -0.5 || r.left < -0.5 || r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5)
      outside.push((el.className.match(/st-key-\\S+/) || [el.dataset.testid])[0] + ` ${r.top | 0}..${r.bottom | 0}`);
  });
  // KaTeX that scrolls (compact_page hides its vertical overflow) is cut; 2 px is KaTeX's own overhang
  const cut = Array.from(document.querySelectorAll('.katex-display'))
    .filter(k => k.checkVisibility({visibilityProperty: true})
                 && (k.scrollWidth > k.clientWidth + 3 || k.scrollHeight > k.clientHeight + 3))
    .map(k => (k.closest('[class*="st-key-"]') || k).className.match(/st-key-\\S+/)
              + ` ${k.scrollWidth}>${k.clientWidth}`);
  return {doc: document.scrollingElement.scrollHeight, main: main.scrollHeight, height: innerHeight,
          outside, cut};
}"""
# The smallest text outside charts and equations (Plotly's and KaTeX's own sizes are set elsewhere)
SMALLEST_TEXT_JS = """() => {
  let smallest = 99, where = '';
  const walker = document.createTreeWalker(document.querySelector('[data-testid="stMainBlockContainer"]'),
                                           NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || el.closest('svg, .katex, .js-plotly-plot')
        || !el.checkVisibility({visibilityProperty: true})) continue;
    const px = parseFloat(getComputedStyle(el).fontSize);
    if (px < smallest) { smallest = px; where = node.textContent.trim().slice(0, 30); }
  }
  return [smallest, where];
}"""

# Every shown equation's size (KaTeX's base size, its largest symbols) and its first-level sub- and superscripts'
# (presentation mode sets them at 80% of their equation). Deeper scripts (a subscript's subscript, 65%) are not held to
# 18 px: the objective's would need a 28 px equation, wider than a 1024 px screen.
EQUATION_PX_JS = """() => {
  let base = 99, script = 99, where = '';
  for (const k of document.querySelectorAll('.katex')) {
    if (!k.checkVisibility({visibilityProperty: true}) || k.closest('.katex-mathml')) continue;
    const px = parseFloat(getComputedStyle(k).fontSize);
    if (px < base) { base = px; where = (k.closest('[class*="st-key-"]') || k).className.match(/st-key-\\S+/) + ''; }
    for (const s of k.querySelectorAll('.sizing.reset-size6.size3'))
      script = Math.min(script, parseFloat(getComputedStyle(s).fontSize));
  }
  return {base, script, where};
}"""


# The smallest text of the shown charts (ticks, bar labels, legends, token cells)
CHART_TEXT_PX_JS = """() => {
  let smallest = 99, what = '';
  for (const t of document.querySelectorAll('.js-plotly-plot text')) {
    if (!t.textContent.trim() || !t.checkVisibility({visibilityProperty: true})
        || t.getBoundingClientRect().width === 0) continue;
    const px = parseFloat(getComputedStyle(t).fontSize);
    if (px < smallest) { smallest = px; what = t.textContent.slice(0, 25); }
  }
  return [smallest, what];
}"""


def assert_projector_sizes(page, where: str) -> None:
    """Equations at 18 px or more (their first-level scripts 14), and every chart's text at 18 px or more."""
    px = page.evaluate(EQUATION_PX_JS)
    assert px["base"] >= 18 and px["script"] >= 14, (where, px)
    chart = page.evaluate(CHART_TEXT_PX_JS)
    assert chart[0] >= 18, (where, chart)


def open_presenting(browser, url, viewport=(1280, 720)):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.goto(url)
    # a stepped page's first run draws the URL's stage only, then asks for the rest: wait for them, so that no rerun
    # replaces what the test reads
    cursor = next((c for path, c, _ in PAGES.values() if f"/{path}?" in url and path in TABBED), None)
    if cursor:
        page.wait_for_function(every_stage_drawn_js(cursor), timeout=60_000)
    settle(page)
    return context, page


def settle(page):
    page.wait_for_function(DRAWN_JS, timeout=60_000)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    page.wait_for_timeout(300)


def drag(page, thumb, dx: float):
    """Drag a slider ``dx`` pixels sideways with the mouse, by its thumb (the visible parent of the hidden input)."""
    box = thumb.locator("xpath=../..").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(max(x + dx, 2), y, steps=5)
    page.mouse.up()
    settle(page)


def stage_in_url(page) -> int:
    return int(re.search(r"[?&]stage=(\d+)", page.url).group(1))


def wait_for_stage(page, k: int):
    page.wait_for_function(f"() => /[?&]stage={k}(&|$)/.test(location.search)", timeout=20_000)
    settle(page)


@pytest.mark.parametrize("name", list(PAGES))
def test_keys_step_after_the_switch_a_slider_drag_and_not_while_typing(browser, app_url, name):
    path, cursor, slider = PAGES[name]
    context, page = open_presenting(browser, f"{app_url}/{path}?mu=2&stage=4")
    switch = page.get_by_role("switch", name="Presentation mode")
    switch.click(force=True)  # the mouse turns it on: the switch keeps the focus
    page.locator(".st-key-presenter_keys").wait_for(state="attached")
    page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebar\"]') === null || "
                           "getComputedStyle(document.querySelector('[data-testid=\"stSidebar\"]')).display === 'none'")
    settle(page)
    assert "present=1" in page.url
    page.keyboard.press("PageDown")
    wait_for_stage(page, 5)
    page.keyboard.press("PageUp")
    wait_for_stage(page, 4)
    if name == "step_through":  # the arrows with the switch focused (the handler is the same on every page)
        page.keyboard.press("ArrowRight")
        wait_for_stage(page, 5)
        page.keyboard.press("ArrowLeft")
        wait_for_stage(page, 4)

    if slider is not None:  # drag the inner-step slider's thumb with the mouse, then →: the stage moves, not it
        thumb = page.get_by_role("slider", name=slider)
        drag(page, thumb, -2000)  # to inner step 1
        assert thumb.get_attribute("aria-valuetext") == "1"
        assert page.evaluate("() => document.activeElement.type") == "range"  # the slider keeps the focus
        page.keyboard.press("ArrowRight")
        wait_for_stage(page, 5)
        page.keyboard.press("Space")
        wait_for_stage(page, 6)
        page.keyboard.press("Shift+Space")
        wait_for_stage(page, 5)

    # out of presentation mode: a sidebar slider dragged with the mouse gives up → too
    switch.click(force=True)
    settle(page)
    before = stage_in_url(page)
    drag(page, page.get_by_role("slider", name="Temperature T"), 30)
    page.keyboard.press("ArrowRight")
    wait_for_stage(page, before + 1)

    # typing into a number box leaves the stage alone
    before = stage_in_url(page)
    box = page.get_by_role("spinbutton", name="Seed")
    box.click()
    for key in ("ArrowRight", "ArrowLeft", "PageDown", "Space", "ArrowRight"):
        page.keyboard.press(key)
    page.keyboard.press("Backspace")
    page.wait_for_timeout(500)
    assert stage_in_url(page) == before
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label') || "
                         "document.activeElement.type") in ("Seed", "number")
    context.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_every_stage_fits_the_projector(browser, app_url, name):
    path, cursor, _ = PAGES[name]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context, page = open_presenting(browser, f"{app_url}/{path}?present=1&stage=1", SIZES[0])
    for size in SIZES:
        page.set_viewport_size({"width": size[0], "height": size[1]})
        walk_every_stage(page, name, size)
    context.close()


def walk_every_stage(page, name, size, shot: str | None = None):
    """PageDown from stage 1 to 8 (back to 1 with PageUp); on each, nothing scrolls or lies outside the window."""
    smallest = []
    for k in range(1, 9):
        wait_for_stage(page, k)
        fit = page.evaluate(FIT_JS)
        smallest.append(page.evaluate(SMALLEST_TEXT_JS))
        assert_projector_sizes(page, f"{name} {size} stage {k}")
        page.screenshot(path=str(SCREENSHOTS / f"present_{shot or name}_{size[0]}x{size[1]}_stage{k}.png"))
        assert fit["doc"] <= fit["height"] and fit["main"] <= fit["height"], (k, fit)
        assert not fit["outside"] and not fit["cut"], (k, fit)
        if k < 8:
            page.keyboard.press("PageDown")
    assert min(px for px, _ in smallest) >= 18, smallest
    bar = stage_bar(name)
    assert page.locator(bar).count() == 8
    rows = page.evaluate(f"() => new Set(Array.from(document.querySelectorAll({bar!r}))"
                         ".map(b => Math.round(b.getBoundingClientRect().top))).size")
    assert rows == 1  # the stage bar is one row
    assert page.evaluate(f"() => Array.from(document.querySelectorAll({bar!r}))"
                         ".every(b => b.getBoundingClientRect().right <= innerWidth)")  # none scrolled out of sight
    page.locator(bar).first.click()  # back to stage 1 for the next size


@pytest.mark.parametrize("name", ["ppo_vs_grpo", "language_model"])
def test_equations_behind_a_tab_or_expander_are_projector_size(browser, app_url, name):
    """PPO vs GRPO keeps each side's equations in a tab beside its chart (an expander where a side has no chart), Toy
    vs LM the toy's card in an Explanation tab: opened, they are as large as the other pages' cards."""
    path, _, _ = PAGES[name]
    context, page = open_presenting(browser, f"{app_url}/{path}?present=1&stage=5", SIZES[0])
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)
        opened = page.locator("details:visible summary").all() + page.locator(
            "[role=tab]:visible", has_text=re.compile("Explanation|equations")).all()
        assert opened, "no equations to open"
        for el in opened:
            if el.evaluate("e => e.tagName === 'SUMMARY' && e.parentElement.open"):
                continue
            el.click()
        page.wait_for_timeout(500)
        assert page.locator(".katex:visible").count() > 0
        assert_projector_sizes(page, f"{name} {width}x{height}")
    context.close()


def test_a_language_models_long_completions_fit_the_projector(browser, app_url, tmp_path_factory):
    """A random tiny GPT-2 rarely ends early: a group of 8 completions of 32 tokens. Presenting, its token chart shows
    each completion's first tokens and says so, and every stage still fits both screens."""
    from urllib.parse import quote

    from ..unit.lm_fixtures import build_model

    folder = build_model(tmp_path_factory.mktemp("long_lm"))
    context, page = open_presenting(
        browser, f"{app_url}/language_model?present=1&stage=1&model=hf&model_path={quote(str(folder))}"
        "&max_new_tokens=32", SIZES[0])
    assert page.get_by_text("tokens (hover: the rest)").count() > 0
    for size in SIZES:
        page.set_viewport_size({"width": size[0], "height": size[1]})
        walk_every_stage(page, "language_model", size, shot="language_model_long")
    context.close()
