"""The lesson: the GRPO story from PPO's objective to reward hacking, one live slide at a time."""

import streamlit as st

from grpo_viz import deck, lesson
from grpo_viz.ui import chart_style, compact_page, deferred, latex_lines, presentation_toggle
from grpo_viz.ui.stepping import stage_tabs

PRESENTING_CHART_PX = 450  # at 720 px under the slide bar (tabs) and the objective

compact_page()
titles = tuple(slide.title for slide in lesson.SLIDES)

title, switch = st.columns([7, 2.6], vertical_alignment="center")
presenting = presentation_toggle(switch)
# the objective's display clips what falls below it: a boxed double sum (the aggregation) needs more room under it
st.markdown("<style>[class*='st-key-objective'] .katex-display{padding-bottom:0.6em}</style>", unsafe_allow_html=True)
if not presenting:
    title.markdown("## The GRPO story, in nine slides")


def _new_group() -> None:
    st.session_state.lesson_draw = st.session_state.get("lesson_draw", 0) + 1


def _start_again() -> None:
    st.session_state.lesson_draw = 0


def control_key(slide: lesson.Slide) -> str:
    return f"lesson_{slide.key}_{slide.control.name}"


def slide_view(index: int) -> None:
    """One slide: the objective, the chart, and the card with its live control."""
    slide = lesson.SLIDES[index]
    value = None
    objective = st.container(key=f"objective_{index}")  # filled below, once the slide's control has its value
    # presenting: half the width each, so the card's equations stay at projector size
    left, right = st.columns([1, 1] if presenting else [5, 4], gap="medium")
    with right:
        if slide.control is not None:
            c = slide.control
            # a server round trip: the slide is rebuilt at the control's value
            value = st.slider(c.label, c.low, c.high, c.default, step=c.step, key=control_key(slide),
                              help=c.help)
    view = lesson.build(slide, value, st.session_state.get("lesson_draw", 0))
    objective.latex(view.equations[0])
    if presenting:  # the slide bar, the objective and the chart share one projected screen
        view.figure.update_layout(height=PRESENTING_CHART_PX)
    with left:
        st.plotly_chart(view.figure, key=f"lesson_chart_{index}")
    with right, st.container(border=True, key=f"card_lesson_{index}"):
        st.markdown(f"#### {index + 1}. {slide.heading}")
        latex_lines(view.equations[1:])
        st.markdown(view.text)
    if slide.key == "next" and not presenting:
        links = st.container(horizontal=True)
        links.page_link("app_pages/1_step_through.py", label="Step through one iteration", icon="👣")
        links.page_link("app_pages/2_ppo_vs_grpo.py", label="PPO vs GRPO", icon="⚖️")
        links.page_link("app_pages/3_training.py", label="Training", icon="📈")
        links.page_link("app_pages/4_language_model.py", label="Toy vs language model", icon="🤖")
        links.page_link("app_pages/5_math_reference.py", label="Math reference", icon="📐")


@st.fragment
def lesson_slides() -> None:
    """The slide bar and every slide, each in its own container, stepped in the browser (ui.stage_tabs): a slider or
    New group reruns this alone, not the page around it."""
    chart_style(presenting)  # a fragment's rerun is a new thread: its charts' text sizes are set here
    views, _ = stage_tabs(titles, key="slide", query_param="slide", on_new_group=_new_group, on_reset=_start_again,
                          last_actions=(("Start again ▶", _start_again, "Back to the first slide (→ key)"),),
                          reset_help="Back to the first slide and the first group")
    for index, view in enumerate(views):
        if view is not None:
            with view:
                slide_view(index)
    if presenting:
        return
    # the lesson at the values its controls have now, kept while the session lives: the download holds it weakly and
    # builds the file (every slide through lesson.build, as drawn here) only when clicked
    st.session_state.lesson_deck_view = deck.LessonView(
        tuple(None if s.control is None else st.session_state.get(control_key(s)) for s in lesson.SLIDES),
        st.session_state.get("lesson_draw", 0))
    st.download_button("⬇ Download as a page", deferred(deck.lesson_page, st.session_state.lesson_deck_view),
                       "grpo_lesson.html", "text/html", on_click="ignore", key="download_grpo_lesson.html",
                       help="Every slide at these settings as one HTML file that runs offline, from disk or a course "
                            "website: the slide bar, Back / Next and the presenter keys.")


lesson_slides()
