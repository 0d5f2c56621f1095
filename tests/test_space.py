"""Search spaces: steps, conditional dimensions, prompt text and parsing LLM proposals."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from hyperpilot.tools.space import CategoricalDim, Condition, FloatDim, IntDim, SearchSpace
from hyperpilot.tools.space_text import (
    ProposalRejected,
    describe_dim,
    parse_proposal,
    parse_proposals,
    serialise_config,
)

SVM = SearchSpace(dims=[
    CategoricalDim(name="kernel", choices=["rbf", "poly", "linear"]),
    FloatDim(name="C", low=1.0, high=1000.0, log=True),
    FloatDim(name="gamma", low=1e-4, high=1.0, log=True,
             condition=Condition(parent="kernel", values=["rbf", "poly"])),
    IntDim(name="degree", low=2, high=5, condition=Condition(parent="kernel", values=["poly"])),
    FloatDim(name="frac", low=0.1, high=0.9, step=0.05),
    IntDim(name="width", low=8, high=100, step=8),
])
LINEAR = {"kernel": "linear", "C": 10.0, "frac": 0.5, "width": 16}


def test_steps_snap_to_the_grid_inside_the_range() -> None:
    assert SVM["frac"].repair(0.512) == 0.5
    assert SVM["frac"].repair(0.99) == 0.9
    assert SVM["width"].repair(13) == 16
    assert SVM["width"].repair(1000) == 96  # the last grid point below high
    rng = np.random.default_rng(0)
    assert {SVM["width"].sample(rng) for _ in range(200)} == set(range(8, 97, 8))


def test_steps_are_rejected_on_log_scales() -> None:
    with pytest.raises(pydantic.ValidationError, match="step"):
        FloatDim(name="x", low=1e-3, high=1.0, log=True, step=0.1)
    with pytest.raises(pydantic.ValidationError, match="step"):
        IntDim(name="n", low=1, high=100, log=True, step=2)


def test_a_condition_must_follow_its_parent() -> None:
    with pytest.raises(pydantic.ValidationError, match="before it"):
        SearchSpace(dims=[FloatDim(name="g", low=0, high=1, condition=Condition(parent="k", values=["a"])),
                          CategoricalDim(name="k", choices=["a"])])


def test_inactive_parameters_are_absent_and_repair_drops_them() -> None:
    assert SVM.repair({**LINEAR, "gamma": 0.1, "degree": 3}) == LINEAR
    assert SVM.contains(LINEAR)
    assert not SVM.contains({**LINEAR, "gamma": 0.1})
    with pytest.raises(ValueError, match="missing parameter gamma"):
        SVM.repair({**LINEAR, "kernel": "rbf"})
    rng = np.random.default_rng(1)
    for _ in range(50):
        config = SVM.sample(rng)
        assert ("degree" in config) == (config["kernel"] == "poly")


def test_encoding_keeps_one_width_and_decoding_restores_the_config() -> None:
    poly = {"kernel": "poly", "C": 10.0, "gamma": 0.01, "degree": 3, "frac": 0.5, "width": 16}
    for config in (LINEAR, poly):
        vector = SVM.encode(config)
        assert vector.shape == (SVM.width,)
        decoded = SVM.decode(vector)
        assert SVM.key(decoded) == SVM.key(config)
    assert SVM.key(LINEAR) != SVM.key({**LINEAR, "kernel": "rbf", "gamma": 0.1})


def test_prompt_text_states_type_range_scale_and_precision() -> None:
    assert describe_dim(SVM["C"]) == "C: float in [1, 1000], log scale, 3 significant digits"
    assert describe_dim(SVM["frac"]) == "frac: float in [0.1, 0.9], step 0.05, 2 decimals"
    assert describe_dim(SVM["degree"]) == "degree: integer in [2, 5] (only when kernel is 'poly')"
    assert describe_dim(SVM["width"]) == "width: integer in [8, 100], step 8"
    text = serialise_config(SVM, {**LINEAR, "C": 12.3456})
    assert text == "kernel is 'linear', C is 12.3, frac is 0.50, width is 16"


def test_parse_repairs_what_it_can() -> None:
    raw = {"kernel": "linear", "C": "1010", "frac": 0.52, "width": 15.6, "gamma": 3}
    assert parse_proposal(SVM, raw) == {"kernel": "linear", "C": 1000.0, "frac": 0.5, "width": 16}


@pytest.mark.parametrize(("raw", "reason"), [
    ({**LINEAR, "epsilon": 0.1}, "unknown parameters"),
    ({**LINEAR, "C": "large"}, "could not convert|must be a number"),
    ({**LINEAR, "C": 1e6}, "outside"),
    ({**LINEAR, "C": -1.0}, "outside"),
    ({**LINEAR, "kernel": "sigmoid"}, "must be one of"),
    ({"kernel": "rbf", "C": 10.0, "frac": 0.5, "width": 16}, "missing parameter gamma"),
    (["not", "a", "dict"], "must be an object"),
])
def test_parse_rejects_what_it_cannot_repair(raw: object, reason: str) -> None:
    with pytest.raises(ProposalRejected, match=reason):
        parse_proposal(SVM, raw)


def test_parse_rejects_tried_configs_and_duplicates_within_a_batch() -> None:
    tried = {SVM.key(LINEAR)}
    with pytest.raises(ProposalRejected, match="already tried"):
        parse_proposal(SVM, {**LINEAR, "C": 10.0000001}, tried)
    other = {**LINEAR, "C": 20.0}
    kept, dropped = parse_proposals(SVM, [other, LINEAR, dict(other), {"bad": 1}], tried)
    assert kept == [other]
    assert len(dropped) == 3
