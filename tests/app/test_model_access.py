"""The operator's model settings on the language-model pages (Toy vs language model, Training's LM tab) through
AppTest: a link cannot make the server look at its disk when local models are off, the operator's list of models
becomes choices, and a model over the size limit is refused before it loads."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from grpo_viz.policies import loading
from grpo_viz.policies.access import ALLOW_LOCAL_ENV, MAX_MB_ENV, OFFERED_ENV
from grpo_viz.ui import models

from ..unit.lm_fixtures import build_model
from .conftest import ROOT, new_app, no_error, switch_section

LM_PAGE = "app_pages/4_language_model.py"
TRAINING = "app_pages/3_training.py"


def lm_page(**query) -> AppTest:
    at = AppTest.from_file(str(ROOT / LM_PAGE), default_timeout=90)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {name: build_model(root / name, "gpt2", seed=k) for k, name in enumerate(["offered", "big", "typed"])}


@pytest.fixture
def loads(monkeypatch):
    """Every load the pages ask for (kind, source), recorded before the real loader runs."""
    calls = []

    def recording(real):
        def load(*args, **kwargs):
            calls.append(args[:2] if len(args) > 1 else ("hf", args[0]))
            return real(*args, **kwargs)
        return load

    monkeypatch.setattr(models, "load_model", recording(loading.load_model))
    monkeypatch.setattr(models, "load_hf", recording(loading.load_hf))
    models.shared_model.clear()
    yield calls
    models.shared_model.clear()


def texts(at: AppTest) -> str:
    return " ".join(str(x.value) for kind in (at.error, at.warning, at.info, at.caption, at.markdown) for x in kind)


def test_with_local_models_off_a_link_never_reaches_the_disk(monkeypatch, folders, loads):
    monkeypatch.setenv(ALLOW_LOCAL_ENV, "0")
    monkeypatch.delenv(OFFERED_ENV, raising=False)
    seen = []
    for path in ["/etc", "/nonexistent/x", str(folders["typed"])]:
        at = lm_page(model="hf", model_path=path)
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        assert at.selectbox(key="model").options == ["builtin", "smollm2"]
        assert at.selectbox(key="model").value == "builtin"  # the page falls back to the built-in model
        assert "folder" not in texts(at).lower() and path not in texts(at)
        seen.append([w.value for w in at.warning])
    assert seen[0] == seen[1] == seen[2] == ["URL parameter `model=hf` is not one of 'builtin', 'smollm2'; "
                                             "using the default instead."]
    assert all(kind == "builtin" for kind, _ in loads), loads  # no folder was loaded, or even looked at


def test_with_local_models_off_the_training_page_falls_back_the_same_way(monkeypatch, folders, loads):
    monkeypatch.setenv(ALLOW_LOCAL_ENV, "0")
    at = new_app(TRAINING, section="Language model", model="hf", model_path=str(folders["typed"]))
    no_error(at)
    assert any("`model=hf`" in w.value for w in at.warning)
    assert at.selectbox(key="model").options == ["builtin", "smollm2"]
    assert all(kind == "builtin" for kind, _ in loads), loads


def test_on_a_personal_machine_a_typed_folder_loads(monkeypatch, folders, loads):
    monkeypatch.delenv(ALLOW_LOCAL_ENV, raising=False)
    at = lm_page(model="hf", model_path=str(folders["typed"]))
    no_error(at)
    assert at.selectbox(key="model").options == ["builtin", "smollm2", "hf"]
    assert loads == [("hf", str(folders["typed"]))]
    assert str(folders["typed"]) in texts(at)  # the caption says where it came from: the visitor is the operator


def test_the_operators_models_are_choices_and_their_paths_stay_on_the_server(monkeypatch, folders, loads):
    monkeypatch.setenv(ALLOW_LOCAL_ENV, "0")
    monkeypatch.setenv(OFFERED_ENV, f"tiny={folders['offered']}")
    at = lm_page(model="tiny")
    no_error(at)
    assert at.selectbox(key="model").options == ["builtin", "smollm2", "tiny"]
    assert at.selectbox(key="model").value == "tiny"
    assert loads == [("hf", str(folders["offered"]))]
    assert "offered by this server" in texts(at) and str(folders["offered"]) not in texts(at)
    assert any("Model: tiny" in c.value for c in at.caption)

    at = new_app(TRAINING, section="Language model", model="tiny")  # the Training tab trains the same model
    no_error(at)
    assert at.selectbox(key="model").value == "tiny"
    assert len(loads) == 1  # from the shared cache


def test_an_offered_model_that_does_not_load_says_so_without_its_path(monkeypatch, tmp_path, loads):
    monkeypatch.setenv(ALLOW_LOCAL_ENV, "0")
    monkeypatch.setenv(OFFERED_ENV, f"gone={tmp_path / 'gone'}")
    at = lm_page(model="gone")
    assert not at.exception
    assert [e.value for e in at.error] == ["The model gone this server offers could not be loaded; the server's log "
                                           "says why (its operator's GRPO_VIZ_MODELS entry needs fixing)."]
    assert str(tmp_path) not in texts(at)
    assert len(at.get("plotly_chart")) == 1  # the toy still steps


def test_a_model_over_the_limit_is_refused_before_it_loads(monkeypatch, folders, loads):
    monkeypatch.setenv(OFFERED_ENV, f"big={folders['big']}")
    monkeypatch.setenv(MAX_MB_ENV, "0.01")  # 10 kB: the tiny model holds about 60k float32 parameters
    at = lm_page(model="big")
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("big needs about 0 MB in memory as float32, more than this server's limit of 0 MB")
    assert loads == []
    at = new_app(TRAINING, section="Language model", model="big")
    assert not at.exception and [e.value for e in at.error] == [error]
    assert charts_in_toy_tab(at)

    monkeypatch.setenv(MAX_MB_ENV, "100")  # the operator raises the limit: the refusal was not cached
    at = lm_page(model="big")
    no_error(at)
    assert loads == [("hf", str(folders["big"]))]


def charts_in_toy_tab(at: AppTest) -> bool:
    return bool(switch_section(at, "Toy training").get("plotly_chart"))
