"""LLM-assisted benchmark methods: the tuner with a real LLM (``--llm``), with the embedded
local model (``llambo-local``), and with a deliberately uninformative one that shows the
trust gate at work without any server.

When the benchmark names a transcript folder (``$HYPERPILOT_BENCH_TRANSCRIPTS``, set to
``OUT/transcripts`` by ``hyperpilot bench tuner``), every LLM method writes, per task,
``METHOD/DATASET-MODEL-SEED.jsonl`` (each LLM call) and ``...trials.jsonl`` (each trial's
config, score and the tuner's trust weights), plus ``METHOD/run.json`` (LLM and budget).
``--llm replay:DIR_OR_FILE`` plays such a recording back exactly: every prompt must match
the recorded one and every recorded call must be played, else ``ReplayMismatch``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from hyperpilot.agents.llm import LLM, ChatReply, Transcript, Usage
from hyperpilot.agents.tuner.factory import tuner_sampler
from hyperpilot.agents.tuner.samplers import Sampler
from hyperpilot.pipelines.bench.methods import MethodUnavailable, Runner, Trace, run_sampler
from hyperpilot.pipelines.bench.tasks import BenchTask
from hyperpilot.tools.errors import HyperpilotError, LLMUnavailableError
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import Config, TrialRecord

LLM_SPEC_ENV = "HYPERPILOT_BENCH_LLM"  # how --llm reaches the worker processes
LLM_BUDGET_ENV = "HYPERPILOT_BENCH_LLM_BUDGET"
TRANSCRIPTS_ENV = "HYPERPILOT_BENCH_TRANSCRIPTS"
DEFAULT_BUDGET = 100
# The embedded 0.5B model takes ~5-15 s a call on a busy 2-core machine: a few calls per
# task, spent on the first model-based trials, where LLAMBO finds an LLM helps most.
LOCAL_BUDGET = 8


class ReplayMismatch(ValueError):
    """A recording that does not match the run replaying it (a prompt differs, calls are
    missing, or recorded calls are left unplayed). Not a ``HyperpilotError`` on purpose: the
    tuner's LLM fallback must not hide it."""


class NoiseLLM:
    """An ``LLMClient`` that answers score predictions with random numbers and proposes
    nothing: the worst an LLM can do without breaking the protocol."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.usage = Usage()

    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel], *,
                 agent: str = "", **settings: Any) -> Any:
        prompt = messages[-1]["content"]
        self.usage.calls += 1
        self.usage.prompt_tokens += len(prompt) // 4
        if "in order:" not in prompt:
            return response_model.model_validate({"configs": []})
        count = len(re.findall(r"^\d+\. ", prompt.split("in order:")[1], flags=re.M))
        return response_model.model_validate({"scores": self.rng.uniform(0, 1, count).tolist()})


def task_text(task: BenchTask) -> str:
    kind = "regression, score = negative MSE on standardised y" if task.regression else \
        "classification, score = accuracy"
    return (f"tune a scikit-learn {task.model} on the {task.dataset} dataset "
            f"({len(task.y)} training rows, {task.X.shape[1]} numeric features; {kind}; "
            "5-fold cross-validation)")


def task_name(task: BenchTask) -> str:
    return f"{task.dataset}-{task.model}-{task.seed}"


def _budget(default: int = DEFAULT_BUDGET) -> int:
    return int(os.environ.get(LLM_BUDGET_ENV) or default)


# --- strict replay -------------------------------------------------------------------


class StrictReplay:
    """A chat backend that plays a recorded transcript and checks every call against it:
    same schema and same messages, in order. ``finish()`` fails if calls are left over."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"replay:{path}"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            self.records = [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError) as err:
            raise ReplayMismatch(f"cannot read the recording {path}: {err}") from None
        self.played = 0

    def chat(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None,
             schema_name: str, settings: dict[str, Any]) -> ChatReply:
        if self.played >= len(self.records):
            raise ReplayMismatch(f"{self.path}: the run asks for call {self.played + 1}, "
                                 f"the recording has {len(self.records)}")
        record = self.records[self.played]
        self.played += 1
        if record.get("schema_name") != schema_name or record.get("messages") != messages:
            what = "schema" if record.get("schema_name") != schema_name else "prompt"
            raise ReplayMismatch(f"{self.path}: call {self.played} differs from the recording "
                                 f"(its {what}); the run is not the recorded one")
        if record.get("failed"):
            raise LLMUnavailableError(f"replayed failure: {record.get('error', '')}")
        return ChatReply(text=record.get("reply", ""), prompt_tokens=record.get("prompt_tokens", 0),
                         completion_tokens=record.get("completion_tokens", 0),
                         logprobs=record.get("logprobs"),
                         truncated=bool(record.get("truncated", False)))

    def finish(self) -> None:
        left = len(self.records) - self.played
        if left:
            raise ReplayMismatch(f"{self.path}: only {self.played} of {len(self.records)} recorded "
                                 "calls were played (a different budget or run?)")


def replay_file(argument: str, task: BenchTask) -> Path:
    """The recording for ``task``: ``argument`` itself, or ``argument/DATASET-MODEL-SEED.jsonl``."""
    path = Path(argument).expanduser()
    if path.is_dir():
        path = path / f"{task_name(task)}.jsonl"
    if not path.is_file():
        raise ReplayMismatch(f"--llm replay: no recording {path} for task {task_name(task)}")
    return path


def recorded_budget(path: Path) -> int | None:
    """The LLM budget the recording next to ``path`` was made with (its ``run.json``)."""
    meta = path.parent / "run.json"
    try:
        return int(json.loads(meta.read_text(encoding="utf-8"))["llm_budget"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- recording -----------------------------------------------------------------------


class InfoLog:
    """Wraps a sampler and keeps what decided each proposal (trust, weights, LLM calls)."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler
        self.name = sampler.name
        self.infos: list[dict[str, Any]] = []

    def suggest(self, history: list[TrialRecord], space: SearchSpace, rng: np.random.Generator,
                *, direction: str = "maximize") -> Config:
        return self.propose(history, space, rng, direction=direction)[0]

    def propose(self, history: list[TrialRecord], space: SearchSpace, rng: np.random.Generator,
                *, direction: str = "maximize") -> tuple[Config, dict[str, Any]]:
        config, info = self.sampler.propose(history, space, rng, direction=direction)
        self.infos.append(info)
        return config, info


@dataclass
class Recording:
    """Where one method's per-task files go (``None`` folder: nothing is written)."""

    folder: Path | None
    method: str

    @classmethod
    def from_env(cls, method: str) -> Recording:
        root = os.environ.get(TRANSCRIPTS_ENV)
        return cls(Path(root) / method if root else None, method)

    def transcript(self, task: BenchTask) -> Transcript:
        if self.folder is None:
            return Transcript(None)
        path = self.folder / f"{task_name(task)}.jsonl"
        path.unlink(missing_ok=True)
        return Transcript(path)

    def write(self, task: BenchTask, trace: Trace, log: InfoLog, meta: dict[str, Any]) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "run.json").write_text(json.dumps({"method": self.method, **meta}) + "\n")
        none: list[dict[str, Any]] = [{}] * (len(trace) - len(log.infos))  # the initial design
        infos = none + log.infos
        with (self.folder / f"{task_name(task)}.trials.jsonl").open("w", encoding="utf-8") as out:
            for step, info in zip(trace, infos, strict=True):
                out.write(json.dumps({"config": step.config, "score": step.score, "tuner": info}) + "\n")


def run_recorded(llm: Any, task: BenchTask, initial: list[Config], n_trials: int, seed: int,
                 budget: int, recording: Recording, meta: dict[str, Any]) -> Trace:
    """The tuner sampler with ``llm`` on ``task``; its files written when ``recording`` says."""
    log = InfoLog(tuner_sampler(llm, task_text(task), budget))
    sampler: Sampler = log  # type: ignore[assignment]
    trace = run_sampler(sampler, task, initial, n_trials, seed)
    recording.write(task, trace, log, {**meta, "llm_budget": budget})
    return trace


# --- the methods ---------------------------------------------------------------------


def noise_llm_method(task: BenchTask, initial: list[Config], n_trials: int, seed: int) -> Trace:
    sampler = tuner_sampler(NoiseLLM(seed), task_text(task), _budget(), spread="samples")
    return run_sampler(sampler, task, initial, n_trials, seed)


_LOCAL: dict[str, LLM] = {}  # one llama-server per worker process, reused across tasks


def local_llm() -> LLM:
    """This process's client of the embedded local model; its server starts on the first
    call and stops at exit. ``MethodUnavailable`` (one line) when the extra or model is missing."""
    if "local" not in _LOCAL:
        from hyperpilot.agents.llm import make_llm

        try:
            llm, _ = make_llm("local")
        except HyperpilotError as err:
            raise MethodUnavailable(f"the local model is not available: {err}") from None
        assert llm is not None
        _LOCAL["local"] = llm
    return _LOCAL["local"]


def _local_run(task: BenchTask, initial: list[Config], n_trials: int, seed: int,
               recording: Recording) -> Trace:
    llm = local_llm()
    llm.transcript = recording.transcript(task)
    meta = {"llm": llm.backend.name}
    try:
        return run_recorded(llm, task, initial, n_trials, seed, _budget(LOCAL_BUDGET), recording, meta)
    finally:
        llm.transcript = Transcript(None)


def local_model_method(task: BenchTask, initial: list[Config], n_trials: int, seed: int) -> Trace:
    """The tuner with the embedded local model; ``LOCAL_BUDGET`` calls per task unless
    ``--llm-budget`` says otherwise."""
    return _local_run(task, initial, n_trials, seed, Recording.from_env("llambo-local"))


def _replay_run(argument: str, task: BenchTask, initial: list[Config], n_trials: int,
                seed: int) -> Trace:
    path = replay_file(argument, task)
    backend = StrictReplay(path)
    budget = _budget(recorded_budget(path) or DEFAULT_BUDGET)
    llm = LLM(backend, transcript=Transcript(None))
    trace = run_recorded(llm, task, initial, n_trials, seed, budget, Recording.from_env("llambo"),
                         {"llm": backend.name})
    backend.finish()
    return trace


def llm_method(task: BenchTask, initial: list[Config], n_trials: int, seed: int) -> Trace:
    from hyperpilot.agents.llm import make_llm

    spec = os.environ.get(LLM_SPEC_ENV, "")
    if not spec or spec == "none":
        raise MethodUnavailable("no LLM given; pass --llm openai:MODEL, --llm local or "
                                "--llm replay:PATH")
    scheme, _, argument = spec.partition(":")
    recording = Recording.from_env("llambo")
    if scheme == "replay":
        return _replay_run(argument, task, initial, n_trials, seed)
    if scheme == "local" and not argument:
        return _local_run(task, initial, n_trials, seed, recording)
    llm, name = make_llm(spec, transcript_path=recording.transcript(task).path)
    try:
        return run_recorded(llm, task, initial, n_trials, seed, _budget(), recording, {"llm": name})
    finally:
        if llm is not None:
            llm.close()


LLM_METHODS: dict[str, Runner] = {
    "surrogate-noise-llm": noise_llm_method,
    "llambo": llm_method,
    "llambo-local": local_model_method,
}
