"""How a page looks: the compact layout every page uses, presentation mode for a projector, and the charts' style."""

from __future__ import annotations

import streamlit as st

from .. import charts
from .settings import _flag_from_url


def compact_page() -> None:
    """Less empty space above the content, so stepper, chart and formula fit one projected screen."""
    st.markdown(
        "<style>.block-container{padding-top:2.2rem;padding-bottom:1rem}"
        ".stMainBlockContainer{padding-top:2.2rem}.katex-display{overflow-x:auto;overflow-y:hidden}"
        # a stage card's equations with this group's numbers: smaller than KaTeX's 1.21em so they fit the card,
        # and smaller still in a narrow card (cqw: % of the card's width), as the objective in a narrow main area;
        # never below 12 px: on a phone the formula scrolls sideways rather than shrinking out of reach
        ".st-key-presenter_keys{display:none}"  # the presenter keys' mount: script only
        # a stepping page's stages (ui.stage_tabs) are stacked in one container: the hidden ones are clipped
        "[class*='st-key-'][class*='_views']{position:relative;overflow:clip}"
        # its tab bar's tabs hold nothing (their panel would leave a gap), and its style rule takes no row
        "[class*='st-key-'][class*='_tabs'] [data-testid='stTabPanel']{display:none}"
        "[data-testid='stElementContainer']:has(style[data-stages]){display:none}"
        "[class*='st-key-card_'],[class*='st-key-objective']{container-type:inline-size}"
        "[class*='st-key-card_'] .katex{font-size:clamp(12px,4.4cqw,1.0em)}"
        "[class*='st-key-objective'] .katex{font-size:clamp(12px,2.05cqw,1.21em)}"
        # the step-through's Markdown table: one line per sample, compact, scrolling sideways if it must
        "[class*='st-key-sample_table'] table{font-size:0.85rem;display:block;overflow-x:auto}"
        "[class*='st-key-sample_table'] :is(th,td){white-space:nowrap;padding:0.2rem 0.5rem}</style>",
        unsafe_allow_html=True,
    )


# Presentation mode: 18 px type at the least (captions, labels and buttons included), no sidebar or header, and
# tight gaps, so each stage of a stepping page fits 1280 x 720 and 1024 x 768 without scrolling. The pages size their
# charts for it (PRESENT_CHART_PX) and put a stage's equations beside its text.
PRESENTATION_CSS = (
    "section[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl'],header[data-testid='stHeader']"
    "{display:none}"
    "html{font-size:18px}"
    ".stMainBlockContainer,.block-container{max-width:100%;padding:0.5rem 1.5rem 0.25rem 1.5rem}"
    ".stMainBlockContainer [data-testid='stVerticalBlock']{gap:0.45rem}"
    ".stMainBlockContainer [data-testid='stHorizontalBlock']{gap:0.75rem}"
    "[data-testid='stCaptionContainer'],[data-testid='stWidgetLabel'] p,[data-testid='stMarkdownContainer'] small,"
    ".stMainBlockContainer button p,.stMainBlockContainer button div,.stMainBlockContainer kbd,"
    "[data-testid='stSliderThumbValue'],[data-testid='stSliderTickBar'] div,[role='tab'] p,summary p,summary span"
    "{font-size:1rem !important}"
    ".stMainBlockContainer .stButton button,[data-testid='stButtonGroup'] button"
    "{min-height:2.2rem;padding-top:0.1rem;padding-bottom:0.1rem}"
    "[data-testid='stButtonGroup'] button{padding-left:0.5rem;padding-right:0.5rem}"
    ".stMainBlockContainer h4{padding:0.1rem 0 0.2rem 0;font-size:1.3rem}"
    ".stMainBlockContainer h5{padding:0;font-size:1.1rem}"
    "[class*='st-key-objective'] .katex-display{margin:0;padding:0.2em 0 0.35em 0}"
    "[class*='st-key-objective'] .katex{font-size:clamp(12px,1.88cqw,1.2em)}"
    "[class*='st-key-card_'] .katex-display{margin:0.1em 0;padding:0.15em 0 0.3em 0}"
    # a card's equations take its full width, as large as it lets them be (their widest line is ~23 em), never cut
    "[class*='st-key-card_'] .katex{font-size:clamp(12px,4.2cqw,1.25em)}"
    "[class*='st-key-card_grpo'] .katex,[class*='st-key-card_ppo'] .katex{font-size:clamp(12px,4.7cqw,1.3em)}"
    # sub- and superscripts at 80% of their equation (KaTeX: 70%), their own scripts at 65% (50%): a subscript read
    # from the back of a hall is as large as the text around it
    ".katex .sizing.reset-size6.size3{font-size:0.8em}.katex .sizing.reset-size6.size1{font-size:0.65em}"
    ".katex .sizing.reset-size3.size1{font-size:0.82em}"
    "[data-testid='stAlert'] [data-testid='stAlertContainer']{padding:0.5rem 0.75rem}"
    ".stTabs [data-baseweb='tab-list'] button{height:2rem}"
)
PRESENT_CHART_PX = 420  # a stage chart beside its card, with the stepper and objective above it, at 720 px


def chart_style(presenting: bool, figure_px: int | None = None) -> None:
    """Every chart this script run (or fragment rerun) builds from here on: a projector's text sizes when
    ``presenting``, a screen's otherwise, in the browser theme's colours (``charts.set_presentation``)."""
    theme = st.context.theme.type
    charts.set_presentation(presenting, dark=theme == "dark" if theme else None, figure_px=figure_px)


def presentation_on() -> bool:
    """Whether presentation mode is on, before its switch is drawn (a page sizes its header row by it)."""
    return _flag_from_url("present")


def presentation_toggle(container) -> bool:
    """The "Presentation mode" switch (URL `present=1`, or `present=true`), drawn in ``container``: 18 px type, no
    sidebar, just stepper, chart and formula, fitting a 1280 x 720 or 1024 x 768 projector. A junk URL value's
    warning goes to the page, full width, as the other URL warnings do, not into the switch's narrow column."""
    _flag_from_url("present")
    on = container.toggle("Presentation mode", key="present", help="Large type for a projector; the sidebar "
                          "hides. Settings stay as they are. Keys: PageDown / PageUp, → / ← or Space step "
                          "(Shift+Space back), N new group.")
    if on:
        st.query_params["present"] = "1"
        container.markdown(f"<style>{PRESENTATION_CSS}</style>", unsafe_allow_html=True)
    elif "present" in st.query_params:
        del st.query_params["present"]
    return on
