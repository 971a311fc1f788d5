"""The stage registry: every record complete, and every table formerly keyed by stage name derived from it."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import plotly.graph_objects as go
import pytest

from grpo_viz import explain, explain_ppo, formulas, lm_view, stages
from grpo_viz.config import TOY_STATE, TOY_WORDS, Settings
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.stepper import STAGES, StepRun
from grpo_viz.tasks import TASKS, word_reward
from grpo_viz.toy_view import toy_stage_figure

OPTIONAL = {"lm_try_this", "objective_below", "empty_with_one_update", "lm_center", "lm_subtitle"}


@pytest.fixture(scope="module")
def state():
    settings = replace(Settings(), mu=2)
    run = StepRun(ToyPolicy())
    trace = run.trace(settings, word_reward(TOY_WORDS, settings.rewards))
    return trace, explain.toy_numbers(trace, run.policy)


@pytest.mark.parametrize("record", stages.GRPO_STAGES, ids=lambda s: s.name)
def test_every_grpo_stage_record_is_complete(record, state):
    trace, toy = state
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if field.name not in OPTIONAL:
            assert value is not None and value != "", (record.name, field.name)
    assert 0 < len(record.short) <= len(record.name)
    assert set(record.terms) <= {*formulas.GRPO_PIECES, "min"}, record.terms  # "min" boxes the whole min(...)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.name = "x"  # type: ignore[misc]
    for k in range(trace.mu):
        lines = record.latex(trace, k, toy)
        assert lines and all(isinstance(line, str) and line for line in lines)
        assert record.text(trace, k, toy).strip()
        assert isinstance(record.chart(trace, toy, k, TOY_WORDS, TOY_STATE, False), go.Figure)
        logp_after = trace.old_logp if record.name == "Update" else None
        values, hover, zrange = record.lm_tokens(trace, k, logp_after)
        assert len(values) == trace.group.batch_size and isinstance(hover, dict)
    assert record.try_this.strip() and record.question.endswith("?") and record.answer.strip()


@pytest.mark.parametrize("record", stages.COMPARE_STAGES, ids=lambda s: s.name)
def test_every_compare_stage_record_is_complete(record):
    for field in dataclasses.fields(record):
        if field.name == "fill":
            continue  # "" on the stages the defaults do not leave empty
        assert getattr(record, field.name) not in (None, ""), (record.name, field.name)
    assert record.grpo_stage in stages.GRPO_BY_NAME
    assert record.question.endswith("?")


def test_the_names_the_pages_step_through_are_the_registrys():
    assert STAGES == stages.STAGE_NAMES == tuple(s.name for s in stages.GRPO_STAGES)
    assert explain_ppo.COMPARE_STAGES == tuple(s.name for s in stages.COMPARE_STAGES)
    assert len(set(STAGES)) == len(STAGES) and len(set(explain_ppo.COMPARE_STAGES)) == len(explain_ppo.COMPARE_STAGES)


def test_every_table_once_keyed_by_stage_name_is_derived_from_the_registry():
    grpo = stages.GRPO_STAGES
    assert explain.STAGE_TERMS == {s.name: s.terms for s in grpo}
    assert explain.STAGE_COLUMNS == {s.name: list(s.columns) for s in grpo}
    assert explain.TOUR == {s.name: (s.try_this, s.question, s.answer) for s in grpo}
    assert lm_view.STAGE_QUANTITY == {s.name: (s.lm_quantity, s.lm_center) for s in grpo}
    assert lm_view.STAGE_TITLES == {s.name: (s.lm_title, s.lm_subtitle) for s in grpo}
    assert lm_view.TABLE_COLUMN_STAGE == {c: s.name for s in grpo for c in s.lm_columns}
    assert explain_ppo.PPO_TOUR == {s.name: s.tour for s in stages.COMPARE_STAGES}
    assert explain_ppo.GRPO_STAGE == {s.name: STAGES.index(s.grpo_stage) for s in stages.COMPARE_STAGES}
    # each table has exactly one entry per stage, in the registry's order
    for table in (explain.STAGE_TERMS, explain.STAGE_COLUMNS, explain.TOUR, lm_view.STAGE_QUANTITY,
                  lm_view.STAGE_TITLES):
        assert tuple(table) == STAGES
    assert tuple(explain_ppo.PPO_TOUR) == explain_ppo.COMPARE_STAGES
    # one column belongs to one stage
    columns = [c for s in grpo for c in s.columns]
    assert len(columns) == len(set(columns))


def test_the_lookups_call_the_stages_own_functions(state):
    trace, toy = state
    for k, record in enumerate(stages.GRPO_STAGES):
        assert explain.stage_latex(k, trace, 1, toy) == record.latex(trace, 1, toy)
        assert explain.stage_text(k, trace, 1, toy) == record.text(trace, 1, toy)
        assert toy_stage_figure(trace, toy, k, 1, TOY_WORDS, TOY_STATE) == record.chart(
            trace, toy, 1, TOY_WORDS, TOY_STATE, False)
        objective = explain.objective_latex(k)
        assert formulas.grpo_objective(record.terms, name="") in objective
        assert (record.objective_below is not None) == ("gathered" in objective)
        for task in TASKS.values():
            expected = record.tour if not task.arithmetic or record.lm_try_this is None else (
                record.lm_try_this(task), record.question, record.answer)
            assert lm_view.tour(record.name, task) == expected


def test_presentation_short_names_cover_every_stage_and_agree_where_pages_share_a_name():
    for record in (*stages.GRPO_STAGES, *stages.COMPARE_STAGES):
        assert stages.SHORT_STAGE_NAMES[record.name] == record.short
    shared = {s.name for s in stages.GRPO_STAGES} & {s.name for s in stages.COMPARE_STAGES}
    assert shared and all(stages.GRPO_BY_NAME[n].short == stages.COMPARE_BY_NAME[n].short for n in shared)
