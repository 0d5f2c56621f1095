"""What the LLM did in a tuner benchmark run: trust, chosen configs, calls, and the result
against the method's classical part.

    python benchmarks/llm_trust.py OUT [--method llambo-local] [--against surrogate]

``OUT`` is a ``hyperpilot bench tuner`` folder whose run included an LLM method, so that
``OUT/transcripts/METHOD/`` holds each task's LLM calls (``TASK.jsonl``) and trials
(``TASK.trials.jsonl``). Prints markdown: per task, the trials where the LLM was asked, where
it earned weight, where the config measured was one the LLM named (its candidate won the
acquisition), its calls and their seconds; then the method against ``--against`` from
``OUT/results.csv`` (wins, ties and losses in best CV at 10 and 30 evaluations).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from hyperpilot.pipelines.bench.tasks import REGRESSION, search_space
from hyperpilot.tools.space_text import parse_proposals


def split_name(name: str) -> tuple[str, str, int]:
    """``DATASET-MODEL-SEED`` (model names may hold dashes, dataset names do not)."""
    dataset, rest = name.split("-", 1)
    model, seed = rest.rsplit("-", 1)
    return dataset, model, int(seed)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def task_facts(calls_path: Path) -> dict[str, Any]:
    name = calls_path.name.removesuffix(".jsonl")
    dataset, model, seed = split_name(name)
    space = search_space(model, dataset in REGRESSION)
    calls = read_jsonl(calls_path)
    trials = read_jsonl(calls_path.with_name(f"{name}.trials.jsonl"))
    named: set[str] = set()  # every config the LLM proposed, as the sampler parsed it
    for call in calls:
        if call.get("schema_name") != "ConfigProposals" or not call.get("valid"):
            continue
        try:
            raws = json.loads(call["reply"]).get("configs", [])
        except (ValueError, AttributeError):
            continue
        kept, _ = parse_proposals(space, raws if isinstance(raws, list) else [])
        named.update(space.key(config) for config in kept)
    asked_at = [i for i, t in enumerate(trials) if (t.get("tuner") or {}).get("llm_calls", 0) > 0]
    before = {space.key(t["config"]) for t in trials[:asked_at[-1] if asked_at else 0]}
    asked = weighted = chosen = 0
    for trial in trials:
        info = trial.get("tuner") or {}
        asked += info.get("llm_calls", 0) > 0
        weighted += (info.get("weights") or {}).get("llm", 0.0) > 0
        chosen += bool(info) and space.key(trial["config"]) in named
    seconds = [float(call.get("seconds", 0.0)) for call in calls]
    return {"task": name, "model": model, "trials": sum(bool(t.get("tuner")) for t in trials),
            "asked": asked, "weighted": weighted, "new": len(named - before), "chosen": chosen,
            "calls": len(calls),
            "valid": sum(bool(call.get("valid")) for call in calls),
            "truncated": sum(bool(call.get("truncated")) for call in calls),
            "seconds": sum(seconds), "call_seconds": seconds}


def head_to_head(results: pd.DataFrame, method: str, against: str) -> list[str]:
    lines = ["| evaluations | wins | ties | losses | median best_cv difference "
             "| mean test_of_best difference |", "|---|---|---|---|---|---|"]
    for n_evals in (10, 30):
        rows = results[results["n_evals"] == n_evals]
        keys = ["dataset", "model", "seed"]
        pair = rows[rows["method"] == method].merge(rows[rows["method"] == against], on=keys,
                                                     suffixes=("", "_base"))
        diff = pair["best_cv"] - pair["best_cv_base"]
        test = pair["test_of_best"] - pair["test_of_best_base"]
        lines.append(f"| {n_evals} | {(diff > 1e-12).sum()} | {(diff.abs() <= 1e-12).sum()} | "
                     f"{(diff < -1e-12).sum()} | {diff.median():+.4f} | {test.mean():+.4f} |")
    return lines


def read_results(out: Path) -> pd.DataFrame:
    """``OUT/results.csv``, or the finished tasks' rows (``OUT/tasks/``) of a run still going."""
    if (out / "results.csv").is_file():
        return pd.read_csv(out / "results.csv")
    rows = [row for path in sorted((out / "tasks").glob("*.json"))
            for row in json.loads(path.read_text(encoding="utf-8"))["rows"]]
    return pd.DataFrame(rows)


def report(out: Path, method: str, against: str) -> str:
    folder = out / "transcripts" / method
    paths = sorted(p for p in folder.glob("*.jsonl")  # finished tasks: their trials are written
                   if not p.name.endswith(".trials.jsonl")
                   and p.with_name(p.name.removesuffix(".jsonl") + ".trials.jsonl").is_file())
    if not paths:
        raise SystemExit(f"llm_trust: no transcripts under {folder}")
    facts = [task_facts(p) for p in paths]
    total = {k: sum(f[k] for f in facts) for k in ("trials", "asked", "weighted", "new", "chosen",
                                                    "calls", "valid", "truncated", "seconds")}
    every_call = [s for f in facts for s in f["call_seconds"]]
    lines = [f"# {method}: what the LLM did ({len(facts)} tasks)", "",
             f"- Model-based trials: {total['trials']}; trials with LLM calls: {total['asked']}",
             f"- Trials where the LLM's surrogate got weight > 0: {total['weighted']}",
             f"- New configs the LLM named (untried when it was last asked): {total['new']}; "
             f"trials that measured one: {total['chosen']}",
             f"- LLM calls: {total['calls']} ({total['valid']} valid answers, {total['truncated']} "
             f"cut off at the token cap), median {statistics.median(every_call):.1f} s a call, "
             f"{total['seconds'] / len(facts):.0f} s a task", ""]
    results = read_results(out)
    if not results.empty and {method, against} <= set(results["method"]):
        lines += [f"## {method} against {against} (best CV, same task and seed)", "",
                  *head_to_head(results, method, against), ""]
    lines += ["## Per model", "", "| model | tasks | trials asked | LLM weight > 0 | new LLM configs "
              "| LLM's config measured |", "|---|---|---|---|---|---|"]
    for model in sorted({f["model"] for f in facts}):
        group = [f for f in facts if f["model"] == model]
        lines.append(f"| {model} | {len(group)} | {sum(f['asked'] for f in group)} | "
                     f"{sum(f['weighted'] for f in group)} | {sum(f['new'] for f in group)} | "
                     f"{sum(f['chosen'] for f in group)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a hyperpilot bench tuner output folder")
    parser.add_argument("--method", default="llambo-local")
    parser.add_argument("--against", default="surrogate", help="the method's classical part")
    args = parser.parse_args(argv)
    sys.stdout.write(report(args.out, args.method, args.against))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
