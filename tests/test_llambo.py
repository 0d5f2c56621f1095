"""The LLM parts of the tuner: prompts, validation, trust gating and the call budget."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from fakes import FunctionLLM, ScriptedLLM

from hyperpilot.agents.llm import LLM, ChatReply, Transcript, Usage
from hyperpilot.agents.tuner.llambo import (
    ConfigProposals,
    LLMGenerator,
    LLMMeter,
    LLMSurrogate,
    ScorePredictions,
    proposals_model,
    render_history,
    scores_model,
)
from hyperpilot.agents.tuner.llm_logprobs import LogprobSurrogate, score_moments
from hyperpilot.agents.tuner.study import Study
from hyperpilot.agents.tuner.surrogate_sampler import SurrogateSampler, trust_weights
from hyperpilot.agents.tuner.surrogates import GPSurrogate, SurrogateUnavailable, TPEGenerator
from hyperpilot.tools.errors import LLMOutputError
from hyperpilot.tools.space import CategoricalDim, Condition, FloatDim, IntDim, SearchSpace
from hyperpilot.tools.types import Config, TrialRecord

pytest_plugins = ["llm_fixtures"]

SPACE = SearchSpace(dims=[FloatDim(name="a", low=0.0, high=1.0), FloatDim(name="b", low=0.0, high=1.0)])
MIXED = SearchSpace(dims=[FloatDim(name="C", low=1.0, high=1000.0, log=True),
                          IntDim(name="depth", low=1, high=15),
                          CategoricalDim(name="kernel", choices=["rbf", "linear"])])


def truth(config: Config) -> float:
    return -((config["a"] - 0.3) ** 2) - (config["b"] - 0.7) ** 2


def history(n: int, seed: int = 0) -> list[TrialRecord]:
    rng = np.random.default_rng(seed)
    configs = [SPACE.sample(rng) for _ in range(n)]
    return [TrialRecord(number=i, model="m", config=c, state="COMPLETE", score=truth(c))
            for i, c in enumerate(configs)]


def candidates_in(prompt: str) -> list[Config]:
    block = prompt.split("in order:")[1]
    found = re.findall(r"a is ([0-9.]+), b is ([0-9.]+)", block)
    return [{"a": float(a), "b": float(b)} for a, b in found]


def llm_answering(scores: str) -> tuple[LLM, FunctionLLM]:
    """``scores``: "truth" (an oracle), "noise" (random numbers) or "broken" (not JSON)."""
    rng = np.random.default_rng(5)

    def answer(messages: list[dict[str, str]], schema: str) -> object:
        if schema == "ConfigProposals":
            return {"configs": [{"a": 0.31, "b": 0.69}, {"a": 7, "b": 0.5}, {"a": "x", "b": 0.1}]}
        if scores == "broken":
            return "I think it will do well"
        found = candidates_in(messages[-1]["content"])
        if scores == "noise":
            return {"scores": [float(v) for v in rng.uniform(-1, 0, len(found))]}
        return {"scores": [truth(c) for c in found]}

    fake = FunctionLLM(answer)
    return LLM(fake, transcript=Transcript(None), max_reasks=0), fake


def test_history_renders_in_llambo_text_form() -> None:
    configs = [{"C": 12.3456, "depth": 7, "kernel": "rbf"}, {"C": 1.0, "depth": 1, "kernel": "linear"}]
    assert render_history(MIXED, configs, [0.91234, 0.5]) == (
        "C is 12.3, depth is 7, kernel is 'rbf' -> 0.9123\n"
        "C is 1, depth is 1, kernel is 'linear' -> 0.5000")


def test_llm_surrogate_averages_sampled_answers_and_drops_bad_ones(scripted) -> None:
    llm, fake = scripted([{"scores": [0.5, 0.7]}, {"scores": [0.7, 0.9]}, {"scores": [1.0]}])
    surrogate = LLMSurrogate(LLMMeter(llm, allowed=10), task="a bowl", n_samples=3)
    records = history(4)
    y = np.array([r.score for r in records])
    mean, std = surrogate.predict([r.config for r in records], y, [{"a": 0.1, "b": 0.2}] * 2,
                                  SPACE, np.random.default_rng(0))
    assert mean == pytest.approx([0.6, 0.8])
    assert std == pytest.approx([0.1, 0.1])
    prompt = fake.calls[0][0][-1]["content"]
    assert "a: float in [0, 1], 3 decimals" in prompt and "1. a is 0.100, b is 0.200" in prompt


def test_llm_surrogate_is_unavailable_when_the_budget_or_the_answers_fail(scripted) -> None:
    llm, _ = scripted([LLMOutputError("no JSON", raw="?")])
    records = history(4)
    y = np.array([r.score for r in records])
    args = ([r.config for r in records], y, [{"a": 0.1, "b": 0.2}], SPACE, np.random.default_rng(0))
    with pytest.raises(SurrogateUnavailable, match="no JSON"):
        LLMSurrogate(LLMMeter(llm, allowed=5), task="t", n_samples=1).predict(*args)
    with pytest.raises(SurrogateUnavailable, match="budget"):
        LLMSurrogate(LLMMeter(llm, allowed=0), task="t").predict(*args)


def test_llm_generator_keeps_only_valid_untried_configs_and_states_the_target() -> None:
    llm, fake = llm_answering("truth")
    meter = LLMMeter(llm, allowed=1)
    records = history(6)
    kept = LLMGenerator(meter, task="t").propose(records, SPACE, np.random.default_rng(0), 5,
                                                 direction="maximize")
    assert kept == [{"a": 0.31, "b": 0.69}]
    assert len(meter.dropped) == 2  # a=7 is far out of range; "x" is not a number
    scores = [r.score for r in records]
    target = max(scores) + 0.1 * (max(scores) - min(scores))
    assert f"reach a score of {target:.4f}" in fake.calls[0][0][-1]["content"]


def test_trust_gates_an_llm_worse_than_the_best_classical_surrogate() -> None:
    weights = trust_weights({"gp": 0.6, "forest": 0.3, "llm": 0.5}, {"gp", "forest"})
    assert weights == {"gp": 1.0, "forest": 0.0, "llm": 0.0}
    weights = trust_weights({"gp": 0.3, "forest": 0.6, "llm": 0.6}, {"gp", "forest"})
    assert weights["forest"] == weights["llm"] > weights["gp"] > 0
    assert sum(weights.values()) == pytest.approx(1.0)
    assert trust_weights({"gp": -0.2, "llm": -0.1}, {"gp"}) == {"gp": 1.0, "llm": 0.0}
    assert trust_weights({"gp": 0.6, "forest": 0.5}, {"gp", "forest"}) == {"gp": 1.0, "forest": 0.0}
    assert trust_weights({"gp": 0.5, "llm": 0.9}, {"gp"})["llm"] > 0.7


def sampler_with(llm: LLM, budget: int = 100) -> SurrogateSampler:
    meter = LLMMeter(llm)
    return SurrogateSampler(TPEGenerator(), [GPSurrogate(), LLMSurrogate(meter, task="bowl", n_samples=2)],
                            meter=meter, llm_budget=budget, llm_calls_per_trial=8)


@pytest.mark.parametrize(("answers", "trusted"), [("truth", True), ("noise", False), ("broken", False)])
def test_the_llm_surrogate_earns_weight_only_by_predicting_well(answers: str, trusted: bool) -> None:
    llm, _ = llm_answering(answers)
    config, info = sampler_with(llm).propose(history(12), SPACE, np.random.default_rng(1))
    assert SPACE.contains(config)
    assert (info["weights"]["llm"] > 0) is trusted
    assert info["weights"]["gp"] > 0
    assert info["llm_calls"] > 0 and info["llm_tokens"] > 0


def test_the_budget_caps_llm_calls_across_trials_and_the_study_records_them() -> None:
    llm, fake = llm_answering("truth")
    study = Study(SPACE, "maximize", sampler_with(llm, budget=10), np.random.default_rng(0),
                  history=history(6))
    records = []
    for _ in range(4):
        trial = study.ask()
        records.append(study.tell(trial, truth(trial.config)))
    calls = [r.tuner["llm_calls"] for r in records]
    assert sum(calls) == len(fake.calls) <= 10
    assert calls[0] > 0 and calls[-1] == 0  # spent early, then classical only
    assert all("weights" in r.tuner for r in records)


def test_classical_parts_swap_in_and_are_weighed_by_their_held_out_ranking() -> None:
    from hyperpilot.agents.tuner.surrogates import ForestSurrogate

    sampler = SurrogateSampler(TPEGenerator(), [GPSurrogate(), ForestSurrogate()], n_candidates=32)
    config, info = sampler.propose(history(15), SPACE, np.random.default_rng(2))
    assert SPACE.contains(config)
    assert set(info["weights"]) == {"gp", "forest"} and info["trust"]["gp"] > 0.5
    assert sum(info["weights"].values()) == pytest.approx(1.0)


def test_the_run_tuner_is_classical_without_llm_or_budget_and_logs_what_decided() -> None:
    from hyperpilot.agents.tuner.factory import tuner_sampler
    from hyperpilot.pipelines.graph.report import trial_rows

    llm, _ = llm_answering("truth")
    assert [s.name for s in tuner_sampler(None, "t", 50).surrogates] == ["gp"]
    assert [s.name for s in tuner_sampler(llm, "t", 0).surrogates] == ["gp"]
    sampler = tuner_sampler(llm, "t", 50)
    assert [s.name for s in sampler.surrogates] == ["gp", "llm"]
    study = Study(SPACE, "maximize", sampler, np.random.default_rng(0), history=history(8))
    trial = study.ask()
    record = study.tell(trial, truth(trial.config))
    row = trial_rows({"trials": [record.model_dump(mode="json")]})[0]  # type: ignore[typeddict-item]
    assert row["tuner"]["weights"] == record.tuner["weights"] and row["tuner"]["llm_calls"] > 0


def test_an_llm_that_earns_no_weight_leaves_the_classical_proposal_unchanged() -> None:
    from hyperpilot.agents.tuner.factory import tuner_sampler

    llm, fake = llm_answering("noise")
    records = history(12)
    for seed in range(3):
        with_llm, info = tuner_sampler(llm, "t", 50).propose(records, SPACE, np.random.default_rng([seed, 1]))
        classical = tuner_sampler(None, "t").suggest(records, SPACE, np.random.default_rng([seed, 1]))
        assert info["weights"]["llm"] == 0 and info["llm_calls"] > 0
        assert with_llm == classical and info["generator"] == "local"
    # Untrusted, it was asked for predictions (to measure it) and never for candidates.
    assert fake.calls and {name for _, name in fake.calls} == {"ScorePredictions"}


def test_a_trusted_llm_also_proposes_candidates() -> None:
    from hyperpilot.agents.tuner.factory import tuner_sampler

    llm, fake = llm_answering("truth")
    _, info = tuner_sampler(llm, "t", 50).propose(history(12), SPACE, np.random.default_rng(1))
    assert info["weights"]["llm"] > 0 and info["generator"] == "local+llm"
    assert "ConfigProposals" in {name for _, name in fake.calls}


# --- the log-probability surrogate ------------------------------------------------------


def reply_with_digit_odds(text: str, odds: dict[int, list[tuple[str, float]]]) -> ChatReply:
    """``text`` one character per token; ``odds[i]`` the top alternatives of character i."""
    tokens = [{"token": ch, "logprob": 0.0, "top": [list(a) for a in odds.get(i, [(ch, 0.0)])]}
              for i, ch in enumerate(text)]
    return ChatReply(text=text, prompt_tokens=10, completion_tokens=len(text), logprobs=tokens)


def test_score_moments_weigh_each_digit_by_its_token_probabilities() -> None:
    text = '{"scores": [0.75, -1.2]}'
    tenths = text.index("7")
    half = math.log(0.5)
    reply = reply_with_digit_odds(text, {tenths: [("7", half), ("9", half), (",", -0.1)]})
    (mean, var), (neg, neg_var) = score_moments(reply.logprobs or [])
    assert mean == pytest.approx(0.85) and var == pytest.approx(0.01)  # 0.1 x digit 8 +- 1
    assert neg == pytest.approx(-1.2) and neg_var == 0.0
    assert score_moments([{"token": "no numbers", "logprob": 0.0, "top": []}]) == []


def test_the_logprob_surrogate_predicts_mean_and_spread_from_one_greedy_call() -> None:
    text = '{"scores": [0.5, 0.7]}'
    first = text.index("5")
    fake = ScriptedLLM([reply_with_digit_odds(text, {first: [("5", math.log(0.5)), ("3", math.log(0.5))]})])
    meter = LLMMeter(LLM(fake, transcript=Transcript(None)), allowed=1)
    records = history(4)
    y = np.array([r.score for r in records])
    mean, std = LogprobSurrogate(meter, task="t").predict(
        [r.config for r in records], y, [{"a": 0.1, "b": 0.2}, {"a": 0.5, "b": 0.5}], SPACE,
        np.random.default_rng(0))
    assert mean == pytest.approx([0.4, 0.7]) and std[0] == pytest.approx(0.1)
    assert std[1] == pytest.approx(1e-3 * np.ptp(y))  # a certain digit: the floor
    assert meter.calls == 1 and fake.settings[0]["temperature"] == 0.0
    assert fake.settings[0]["logprobs"] is True and fake.settings[0]["top_logprobs"] == 10
    fake.assert_done()


def test_the_logprob_surrogate_samples_without_logprobs_and_refuses_a_wrong_count() -> None:
    records = history(4)
    args = ([r.config for r in records], np.array([r.score for r in records]),
            [{"a": 0.1, "b": 0.2}], SPACE, np.random.default_rng(0))
    no_logprobs = LLM(ScriptedLLM([{"scores": [0.5]}, {"scores": [0.4]}, {"scores": [0.6]}]),
                      transcript=Transcript(None), max_reasks=0)
    mean, std = LogprobSurrogate(LLMMeter(no_logprobs, allowed=3), task="t").predict(*args)
    assert mean.tolist() == pytest.approx([0.5]) and std.tolist() == pytest.approx([0.1])
    two = LLM(ScriptedLLM([reply_with_digit_odds('{"scores": [0.5, 0.6]}', {})]), transcript=Transcript(None))
    with pytest.raises(SurrogateUnavailable, match="2 usable scores for 1 candidates"):
        LogprobSurrogate(LLMMeter(two, allowed=1), task="t").predict(*args)
    with pytest.raises(SurrogateUnavailable, match="not a score list"):
        LogprobSurrogate(LLMMeter(NoLogprobClient(), allowed=1), task="t").predict(*args)


class NoLogprobClient:
    """An ``LLMClient`` with ``complete`` only (no log-probabilities to offer), whose
    answers never validate."""

    usage = Usage()

    def complete(self, *args: object, **kwargs: object) -> object:
        raise LLMOutputError("not a score list")


def test_the_factory_builds_either_spread_and_refuses_others() -> None:
    from hyperpilot.agents.tuner.factory import tuner_sampler

    llm, _ = llm_answering("truth")
    assert isinstance(tuner_sampler(llm, "t", 5, spread="logprobs").surrogates[1], LogprobSurrogate)
    assert isinstance(tuner_sampler(llm, "t", 5, spread="samples").surrogates[1], LLMSurrogate)
    with pytest.raises(ValueError, match="unknown LLM surrogate spread 'vibes'"):
        tuner_sampler(llm, "t", 5, spread="vibes")


def test_the_default_tuner_trusts_a_logprob_oracle_and_records_its_calls() -> None:
    from hyperpilot.agents.tuner.factory import tuner_sampler

    def answer(messages: list[dict[str, str]], schema: str) -> object:
        if schema == "ConfigProposals":
            return {"configs": []}
        scores = [round(truth(c), 4) for c in candidates_in(messages[-1]["content"])]
        return reply_with_digit_odds(json.dumps({"scores": scores}), {})

    llm = LLM(FunctionLLM(answer), transcript=Transcript(None), max_reasks=0)
    config, info = tuner_sampler(llm, "t", 50).propose(history(12), SPACE, np.random.default_rng(1))
    assert SPACE.contains(config)
    assert info["weights"]["llm"] > 0 and info["trust"]["llm"] > 0.5
    assert info["llm_calls"] == 4  # two trust folds, then (trusted) candidates and the shortlist


def test_the_client_asks_an_openai_server_for_logprobs_and_records_them() -> None:
    import httpx2
    from tenacity import wait_none

    from hyperpilot.agents.llm import OpenAIBackend

    sent: list[dict] = []

    def server(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        tokens = [{"token": t, "logprob": -0.1, "bytes": None,
                   "top_logprobs": [{"token": t, "logprob": -0.1, "bytes": None},
                                    {"token": "9", "logprob": -2.4, "bytes": None}]}
                  for t in ['{"scores": [', "0", ".", "5", "]}"]]
        return httpx2.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": {"content": tokens},
                         "message": {"role": "assistant", "content": '{"scores": [0.5]}'}}]})

    backend = OpenAIBackend("m", base_url="http://llm.test/v1", api_key="k", wait=wait_none(),
                            http_client=httpx2.Client(transport=httpx2.MockTransport(server)))
    llm = LLM(backend, transcript=Transcript(None))
    answer, tokens = llm.complete_with_logprobs([{"role": "user", "content": "?"}], ScorePredictions,
                                                top_logprobs=2, agent="tuner-surrogate")
    assert answer.scores == [0.5] and sent[0]["logprobs"] is True and sent[0]["top_logprobs"] == 2
    assert tokens[3] == {"token": "5", "logprob": -0.1, "top": [["5", -0.1], ["9", -2.4]]}
    assert llm.transcript.records[0]["logprobs"] == tokens  # what a replay gives back


def test_answer_schemas_are_narrowed_to_the_space_and_count_but_validate_loosely() -> None:
    space = SearchSpace(dims=[*MIXED.dims, IntDim(name="degree", low=2, high=5,
                                                  condition=Condition(parent="kernel", values=["poly"]))])
    model = proposals_model(space, 3)
    schema = model.model_json_schema()
    assert model.__name__ == "ConfigProposals" and issubclass(model, ConfigProposals)
    configs = schema["properties"]["configs"]
    assert (configs["minItems"], configs["maxItems"]) == (1, 3)
    item = configs["items"]
    assert item["additionalProperties"] is False and item["required"] == ["C", "depth", "kernel"]
    assert item["properties"] == {"C": {"type": "number"}, "depth": {"type": "integer"},
                                  "kernel": {"enum": ["rbf", "linear"]}, "degree": {"type": "integer"}}
    # A server that ignores the schema: the answer still validates, and parsing repairs it.
    loose = model.model_validate({"configs": [{"C": "10", "depth": 3, "kernel": "rbf", "x": 1}] * 5})
    assert len(loose.configs) == 5
    scores = scores_model(4).model_json_schema()["properties"]["scores"]
    assert (scores["minItems"], scores["maxItems"]) == (4, 4)
    assert scores_model(4).model_validate({"scores": [0.1]}).scores == [0.1]


def test_the_generator_asks_for_its_count_under_the_narrowed_schema() -> None:
    seen: list[dict] = []

    class Spy(FunctionLLM):
        def chat(self, messages, *, schema, schema_name, settings):  # type: ignore[no-untyped-def]
            seen.append(schema)
            return super().chat(messages, schema=schema, schema_name=schema_name, settings=settings)

    spy = Spy(lambda messages, schema: {"configs": [{"C": 5.0, "depth": 4, "kernel": "linear"}]})
    meter = LLMMeter(LLM(spy, transcript=Transcript(None)))
    meter.start(1)
    history = [TrialRecord(number=i, model="m", config=MIXED.sample(np.random.default_rng(i)),
                           score=0.1 * i, state="COMPLETE") for i in range(4)]
    got = LLMGenerator(meter, "task", per_call=5).propose(history, MIXED, np.random.default_rng(0), 2,
                                                        direction="maximize")
    assert got == [{"C": 5.0, "depth": 4, "kernel": "linear"}]
    assert seen[0]["properties"]["configs"]["maxItems"] == 2
    prompt = spy.calls[0][0][-1]["content"]
    assert '{"configs": [{ "C": ..., "depth": ..., "kernel": ... }, ...]} with at most 2' in prompt


def test_a_trusted_llm_without_budget_to_predict_leaves_choice_and_random_stream_classical() -> None:
    from hyperpilot.agents.tuner.factory import tuner_sampler

    def answer(messages: list[dict[str, str]], schema: str) -> object:
        scores = [round(truth(c), 4) for c in candidates_in(messages[-1]["content"])]
        return reply_with_digit_odds(json.dumps({"scores": scores}), {})

    llm = LLM(FunctionLLM(answer), transcript=Transcript(None), max_reasks=0)
    with_llm, classical = np.random.default_rng(3), np.random.default_rng(3)
    # A budget of 2: both trust folds are spent, nothing is left for candidates or predictions.
    config, info = tuner_sampler(llm, "t", 2).propose(history(12), SPACE, with_llm)
    assert info["weights"]["llm"] > 0 and info["llm_calls"] == 2
    assert config == tuner_sampler(None, "t").suggest(history(12), SPACE, classical)
    assert with_llm.random() == classical.random()  # the stream moved exactly as the classical one
