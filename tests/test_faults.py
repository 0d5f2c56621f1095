"""Runs against an LLM server that fails in every way it can: each one finishes, and where
the LLM's answers are all unusable, with the result the rules alone give."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_server import FaultPlan, FaultServer, instance
from tenacity import wait_none

from hyperpilot.agents.llm import LLM, OpenAIBackend, Transcript
from hyperpilot.agents.request import RequestDraft
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task

TASK = "predict the species, optimise macro F1"
KEY = "sk-faultTEST0123456789abcdef"


def _run(out: Path, llm: LLM | None) -> dict:
    options = RunOptions(llm="none" if llm is None else None, trials=6, experience=None)
    return run_task(TASK, "sklearn:iris", out, options, llm=llm)


@pytest.fixture(scope="module")
def rules_alone(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _run(tmp_path_factory.mktemp("rules") / "run", None)


@pytest.mark.parametrize("rates", [
    {"429": 0.1, "500": 0.1, "stall": 0.05, "malformed": 0.05},  # 30% of calls fail
    {"out_of_range": 1.0},
    {"malformed": 1.0},
    {"500": 1.0},
])
def test_a_run_finishes_whatever_the_llm_server_does(rates, rules_alone, tmp_path) -> None:
    with FaultServer(FaultPlan(rates=rates, stall_seconds=0.2)) as server:
        llm = LLM(OpenAIBackend("fake", base_url=server.base_url, api_key=KEY, wait=wait_none()),
                  transcript=Transcript(tmp_path / "transcript.jsonl"))
        state = _run(tmp_path / "run", llm)
    assert sum(server.counts.values()) > 0
    assert state["status"] == "ok"
    if sum(rates.values()) == 1.0:  # no answer was usable: the rules decided everything
        assert state["holdout"]["score"] == rules_alone["holdout"]["score"]
        assert state["best"]["model"] == rules_alone["best"]["model"]
    for written in (tmp_path / "run").rglob("*"):
        if written.is_file() and written.suffix in (".json", ".jsonl", ".md", ".log"):
            assert KEY not in written.read_text(errors="ignore"), written


def test_the_servers_answers_fit_the_schema_or_are_absurd_on_purpose() -> None:
    schema = RequestDraft.model_json_schema()
    assert RequestDraft.model_validate(instance(schema)).is_ml is True
    absurd = instance(schema, absurd=True)
    assert absurd["max_features"] == -3 and absurd["is_ml"] is False
    assert "IGNORE THE TASK" in absurd["target"]
