"""A run with ``--llm-budget``: the tuner's LLAMBO calls are spent, capped and recorded."""

from __future__ import annotations

import json
import re

from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task

BUDGET = 3


def tuner_reply(messages: list[dict[str, str]]) -> dict[str, list]:
    """Answers either LLAMBO prompt (prompts/llambo_*.j2) with a well-formed reply."""
    prompt = messages[-1]["content"]
    asked = re.search(r"Predict the score of each of these (\d+) new", prompt)
    if asked:
        n = int(asked.group(1))
        return {"scores": [round(0.9 - 0.01 * i, 4) for i in range(n)]}
    n = int(re.search(r"Propose (\d+) new", prompt).group(1))  # type: ignore[union-attr]
    return {"configs": [{"C": 0.3 * (i + 1), "class_weight": None} for i in range(n)]}


SCRIPT = [
    ("PlansDraft", {"plans": [{"families": [{"name": "linear", "share": 1, "reason": "few rows"}],
                               "rationale": "a small numeric table suits a linear model"}]}),
    ("SpaceDraft", {"narrow": []}),
    ("WarmStartDraft", {"configs": []}),
    *[tuner_reply] * BUDGET,  # the strict script has exactly BUDGET replies for the tuner
    ("Review", {"concerns": [], "summary": "the linear model won."}),
]


def test_the_tuner_spends_its_llm_budget_and_records_it_per_trial(scripted, tmp_path) -> None:
    llm, fake = scripted(SCRIPT)
    out = tmp_path / "run"
    state = run_task("which iris is it? optimise accuracy", "sklearn:iris", out,
                     RunOptions(trials=10, seed=0, llm_budget=BUDGET, experience=None), llm=llm)
    assert state["status"] == "ok"
    tuner_calls = [name for _, name in fake.calls if name in {"ScorePredictions", "ConfigProposals"}]
    assert len(tuner_calls) == BUDGET
    lines = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(lines) == 10
    spent = [int(t["tuner"].get("llm_calls", 0)) for t in lines]
    assert sum(spent) == BUDGET
    # the cap, not a lack of demand, stopped it: later model-phase trials asked for none
    last = max(i for i, calls in enumerate(spent) if calls)
    assert any(t["tuner"].get("phase") == "model" for t in lines[last + 1:])
    assert all("llm_calls" in t["tuner"] for t in lines if t["tuner"].get("phase") == "model")
    assert all(t["tuner"].get("llm_tokens", 0) > 0 for t in lines if t["tuner"].get("llm_calls"))
    result = json.loads((out / "result.json").read_text())
    # plans, space, warm start, the budget, the review; the request is read by the rules
    assert result["llm"]["calls"] == len(fake.calls) == 3 + BUDGET + 1
    assert {result["verification"][k] for k in ["request", "execution", "implementation"]} \
        == {"pass"}
