"""The lesson page as a lecturer presents it: every slide in order, its live control, and a link to any slide."""

from grpo_viz import lesson

from .conftest import LANDING, assert_url_warning, chart_data, new_app, next_button, no_error

PAGE = "app_pages/0_lesson.py"


def heading(at) -> str:
    return next(str(m.value) for m in at.markdown if str(m.value).startswith("#### "))


def test_next_walks_the_story_from_the_first_slide_to_the_last_and_back_to_the_start():
    at = new_app(PAGE)
    seen = []
    for k, slide in enumerate(lesson.SLIDES):
        no_error(at)
        assert heading(at) == f"#### {k + 1}. {slide.heading}"
        assert at.query_params["slide"] == str(k + 1)
        assert len(at.get("plotly_chart")) == 1
        seen.append(chart_data(at))
        next_button(at, "slide").click().run()
    assert heading(at).startswith("#### 1.")  # "Start again" on the last slide
    assert all(seen[i] != seen[i + 1] for i in range(len(seen) - 1)), "every slide shows its own chart"


def test_a_link_opens_any_slide_and_a_bad_one_warns():
    at = new_app(PAGE, slide="4")
    no_error(at)
    assert heading(at) == "#### 4. The ratio and the clip"
    assert_url_warning(new_app(PAGE, slide="12"), "slide")


def test_each_live_control_redraws_its_slide_with_the_numbers_it_states():
    for k, slide in enumerate(lesson.SLIDES):
        if slide.control is None:
            continue
        at = new_app(PAGE, slide=str(k + 1))
        before = chart_data(at)
        c = slide.control
        value = c.high if c.default != c.high else c.low
        at.slider(key=f"lesson_{slide.key}_{c.name}").set_value(int(value) if c.name == "group_size" else value).run()
        no_error(at)
        assert chart_data(at) != before, slide.key
        text = next(str(m.value) for m in at.markdown if str(m.value).startswith(lesson.build(slide, value).text[:30]))
        assert text == lesson.build(slide, value).text


def test_new_group_redraws_the_group_slide_and_reset_returns_to_the_first_slide():
    at = new_app(PAGE, slide="6")
    before = chart_data(at)
    at.button(key="slide_new_group").click().run()
    assert chart_data(at) != before
    at.button(key="slide_reset").click().run()
    assert heading(at).startswith("#### 1.")


def test_the_language_model_slide_shows_its_token_heatmap_and_new_group_redraws_it():
    k = next(i for i, s in enumerate(lesson.SLIDES) if s.key == "lm") + 1
    at = new_app(PAGE, slide=str(k))
    no_error(at)
    assert heading(at) == f"#### {k}. {lesson.SLIDES[k - 1].heading}"
    assert any(str(m.value) == lesson.lm_slide(0).text for m in at.markdown)
    before = chart_data(at)
    at.button(key="slide_new_group").click().run()
    no_error(at)
    assert chart_data(at) != before
    assert any(str(m.value) == lesson.lm_slide(1).text for m in at.markdown)


def test_presentation_mode_keeps_one_chart_and_the_slide_text():
    at = new_app(PAGE, slide="7", present="1")
    no_error(at)
    assert at.toggle(key="present").value
    assert len(at.get("plotly_chart")) == 1 and heading(at).startswith("#### 7.")


def test_the_app_opens_on_the_lesson():
    """"/" is the lesson's first slide: PPO's objective, where the story starts."""
    at = new_app(LANDING)
    no_error(at)
    assert heading(at) == f"#### 1. {lesson.SLIDES[0].heading}"


def test_once_the_browser_asks_every_slide_is_drawn_in_its_own_container():
    at = new_app(PAGE, slide="2")
    assert len(at.get("plotly_chart")) == 1
    at.session_state["slide_everything"] = True  # what the presenter keys' script asks for after the first chart
    at.run()
    no_error(at)
    headings = [str(m.value) for m in at.markdown if str(m.value).startswith("#### ")]
    assert headings == [f"#### {k + 1}. {slide.heading}" for k, slide in enumerate(lesson.SLIDES)]
    assert len(at.get("plotly_chart")) == len(lesson.SLIDES)
    assert at.query_params["slide"] == "2"
    # a slide's live control is still a round trip: it redraws its own slide
    control = next(s for s in lesson.SLIDES if s.control is not None)
    slider = at.slider(key=f"lesson_{control.key}_{control.control.name}")
    before = chart_data(at)
    slider.set_value(control.control.high).run()
    no_error(at)
    assert chart_data(at) != before


def test_the_lesson_downloads_as_one_page_at_its_controls_values_but_not_while_presenting():
    k = next(i for i, s in enumerate(lesson.SLIDES) if s.key == "clip")
    at = new_app(PAGE, slide=str(k + 1))
    at.slider(key="lesson_clip_epsilon").set_value(0.4).run()
    no_error(at)
    [button] = at.get("download_button")
    assert button.proto.label == "⬇ Download as a page"
    view = at.session_state["lesson_deck_view"]  # what the button builds the file from, when clicked
    assert view.values[k] == 0.4 and view.draw == 0
    assert len(view.values) == len(lesson.SLIDES)
    presenting = new_app(PAGE, slide=str(k + 1), present="1")
    no_error(presenting)
    assert not presenting.get("download_button")
