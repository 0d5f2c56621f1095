"""The report node: result.json, leaderboard.csv, trials.jsonl, the plots, report.md and
report.html, and the run added to the experience store."""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd

from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.graph.state import (
    RunContext,
    RunState,
    best_record,
    plans_of,
    profile_of,
    task_of,
    trials_of,
)
from hyperpilot.pipelines.report import figures
from hyperpilot.pipelines.report.html import render_html
from hyperpilot.tools.experience import experience_of
from hyperpilot.tools.types import best_trial


def report_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    write_run_folder(state, ctx)
    if state.get("status") == "rejected":
        return {}
    if ctx.experience is not None:
        record = experience_of(state["run_id"], task_of(state), profile_of(state),
                               trials_of(state), best_record(state), state["holdout"]["score"],
                               time.time() - ctx.started(state))
        ctx.experience.add(record)
        ctx.progress(f"[experience] run {state['run_id']} saved to {ctx.experience.path}")
    return {"status": state.get("status", "ok")}


def llm_usage(ctx: RunContext) -> dict[str, Any]:
    if ctx.llm is None:
        return {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}
    return ctx.llm.usage.as_dict()


def trial_rows(state: RunState) -> list[dict[str, Any]]:
    keep = ("number", "model", "config", "score", "state", "seconds", "fold_scores", "sampler",
            "error", "plan_id", "tuner")
    return [{k: t.get(k) for k in keep} for t in state.get("trials", [])]


def leaderboard(state: RunState) -> pd.DataFrame:
    """Trials ranked best first by mean CV score; failed trials last."""
    rows = trial_rows(state)
    columns = ["rank", "trial", "model", "score", "cv_std", "seconds", "state", "config", "plan"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({
        "trial": [r["number"] for r in rows], "model": [r["model"] for r in rows],
        "score": [r["score"] for r in rows],
        "cv_std": [pd.Series(r["fold_scores"] or [float("nan")]).std(ddof=0) for r in rows],
        "seconds": [round(r["seconds"], 3) for r in rows], "state": [r["state"] for r in rows],
        "config": [json.dumps(r["config"], sort_keys=True) for r in rows],
        "plan": [r.get("plan_id") or "" for r in rows],
    })
    ascending = state["task"]["direction"] == "minimize"
    frame = frame.sort_values(["score", "trial"], ascending=[ascending, True], na_position="last")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame[columns]


def result_document(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """The machine-readable summary of a run (``result.json``)."""
    checks = state.get("verification", {})
    names = ("request", "execution", "implementation")
    best = state.get("best")
    return {
        "run_id": state.get("run_id"),
        "status": state.get("status", "ok"),
        "task": state.get("task"),
        "best": {k: best[k] for k in ("model", "config", "cv_score")} if best else None,
        "final_model": final_model(best) if best else None,
        "holdout": ({"metric": state["holdout"]["metric"], "score": state["holdout"]["score"],
                     "rows": state["holdout"]["rows"], "baseline": state["holdout"]["baseline"]}
                    if "holdout" in state else None),
        "verification": {
            **{n: checks[n]["status"] for n in names if n in checks},
            "reasons": {n: checks[n]["reasons"] for n in names if n in checks},
            "concerns": checks.get("review", {}).get("concerns", []),
        },
        "shipped": state.get("shipped"),
        "trials": len(state.get("trials", [])),
        "stop_reason": state.get("stop_reason", ""),
        "plan": state.get("plan"),
        "plans": [*state.get("past_plans", []), *plan_summaries(state)],
        "revisions": [{"reason": r["reason"], "changed": r["changed"]}
                      for r in state.get("revisions", [])],
        "deployment": _deployment(state),
        "retrieved": state.get("retrieved"),
        "features": state.get("profile", {}).get("features", []),
        "dropped": {**state.get("profile", {}).get("dropped", {}),
                    **state.get("profile", {}).get("leakage", {})},
        "llm": llm_usage(ctx),
        "seed": ctx.options.seed,
        "options": ctx.options.model_dump(mode="json"),
    }


def final_model(best: dict[str, Any]) -> dict[str, Any]:
    """What the saved model is: the best trial alone or an ensemble (members and weights),
    and the decision threshold or calibration on top, with its CV estimate."""
    final = best.get("final")
    if not final:  # a run finished before final models were described
        return {"kind": "single", "members": [{"trial": best["trial"], "model": best["model"],
                                               "weight": 1}], "threshold": None,
                "calibration": None, "cv_score": best["cv_score"], "notes": []}
    keep = ("trial", "plan_id", "model", "weight", "cv_score")
    return {"kind": final["kind"], "members": [{k: m[k] for k in keep} for m in final["members"]],
            "threshold": final.get("threshold"), "calibration": final.get("calibration"),
            "base_cv": final["base_cv"], "cv_score": final["cv_score"],
            "notes": final.get("notes", [])}


def describe_final(final: dict[str, Any], metric: str) -> str:
    """One paragraph on the final model for ``report.md``."""
    if final["kind"] == "ensemble":
        parts = ", ".join(f"{m['weight']}x `{m['model']}` (trial #{m['trial']}, CV "
                          f"{m['cv_score']:.4f})" for m in final["members"])
        text = (f"The saved model is a greedy ensemble (weighted mean of the members' "
                f"predictions): {parts}; its out-of-fold {metric} is {final['base_cv']:.4f}.")
    else:
        text = "The saved model is this trial alone."
    if final.get("threshold") is not None:
        text += (f" It predicts the positive class where its probability reaches "
                 f"{final['threshold']:.4f} (tuned on out-of-fold predictions; cross-fitted "
                 f"{metric} {final['cv_score']:.4f}).")
    if final.get("calibration"):
        text += (f" Its probabilities are {final['calibration']['method']}-calibrated on "
                 f"out-of-fold predictions (cross-fitted {metric} {final['cv_score']:.4f}).")
    notes = final.get("notes") or []
    return text + ("".join(f" ({n})" for n in notes) if notes else "")


def plan_summaries(state: RunState) -> list[dict[str, Any]]:
    """Each of the current revision's plans with what it cites, its model families, its
    preprocessing, how many trials it ran and its best CV score."""
    if not (state.get("plans") or state.get("plan")):
        return []
    direction = state.get("task", {}).get("direction", "maximize")
    out = []
    for plan in plans_of(state).values():
        own = trials_of(state, {plan.id})
        best = best_trial(own, direction)
        out.append({"id": plan.id, "cites": plan.sources, "models": list(plan.trials),
                    "steps": plan.steps, "source": plan.source, "trials": len(own),
                    "best_cv": None if best is None else best.score})
    return out


def _deployment(state: RunState) -> dict[str, Any] | None:
    facts = state.get("deployment")
    if not facts:
        return None
    keep = ("latency_ms_per_row_batch", "latency_ms_single_row", "model_mb", "n_features")
    return {**{k: facts.get(k) for k in keep},
            "constraints": state.get("verification", {}).get("constraints", [])}


def write_run_folder(state: RunState, ctx: RunContext) -> None:
    board = leaderboard(state)
    result = result_document(state, ctx)
    ctx.folder.write_records(result, trial_rows(state), board)
    ctx.progress("[report] drawing the plots")
    write_reports(state, result, board, ctx.folder)
    ctx.progress(f"[report] {ctx.folder.report_html}")


def write_reports(state: RunState, result: dict[str, Any], board: pd.DataFrame,
                  folder: RunFolder) -> None:
    """The plots, ``report.md`` and ``report.html``, from the run's state and its
    ``result.json`` document (``hyperpilot report DIR`` calls this again)."""
    drawn = figures.draw(dict(state), folder)
    folder.write_reports(render_report(state, board, result["llm"], result["seed"], drawn, folder),
                         render_html(dict(state), result, board, drawn, folder))


def render_report(state: RunState, board: pd.DataFrame, usage: dict[str, Any], seed: int,
                  drawn: figures.Figures | None = None, folder: RunFolder | None = None) -> str:
    """``report.md``: what was asked, what was tried, what won and why, the holdout score,
    and links to the plots."""
    parts = [f"# hyperpilot run\n\n> {state['text']}\n", _asked(state, seed), _decisions(state)]
    if state.get("status") == "rejected":
        reasons = state["verification"]["request"]["reasons"]
        parts.append("## Stopped at the request check\n\n" + _bullets(reasons))
    else:
        parts += [_data(state), _plan(state), _revisions(state), _tried(state, board),
                  _winner(state, board), _plots(drawn, folder), _verification(state)]
    parts.append(_usage(usage))
    return "\n".join(p for p in parts if p).rstrip() + "\n"


def _plots(drawn: figures.Figures | None, folder: RunFolder | None) -> str:
    if drawn is None or folder is None or not (drawn.plots or drawn.notes):
        return ""
    text = "## Plots\n\nAll of them, with the rest of this report, in `report.html`.\n\n"
    text += "".join(f"![{p.title}]({p.relative(folder)})\n\n*{p.title}.* {p.caption}\n\n"
                    for p in drawn.plots)
    return text + "".join(f"- {note}\n" for note in drawn.notes)


def _bullets(lines: list[str]) -> str:
    return "".join(f"- {line}\n" for line in lines) if lines else "- (none)\n"


def _asked(state: RunState, seed: int) -> str:
    task = state.get("task")
    if not task:
        return f"## What was asked\n\n- data: `{state['source']}`\n"
    budget = task["budget"]
    limit = f", time limit {budget['time_limit']:.0f} s" if budget.get("time_limit") else ""
    constraints = {k: v for k, v in task["constraints"].items() if v not in (None, False)}
    lines = [f"data: `{task['data_source']}`", f"task: {task['task_type']} on target "
             f"`{task['target']}`", f"metric: {task['metric']} ({task['direction']})",
             f"budget: {budget['trials']} trials{limit}", f"seed: {seed}"]
    if task.get("positive_class") is not None:
        lines.append(f"positive class: `{task['positive_class']}`")
    if constraints:
        lines.append(f"constraints: {constraints}")
    return "## What was asked\n\n" + _bullets(lines)


def _decisions(state: RunState) -> str:
    lines = [f"{e['stage']} [{e['source']}]: {e['message']}" for e in state.get("events", [])]
    return "## Decisions\n\n" + _bullets(lines) if lines else ""


def _data(state: RunState) -> str:
    profile = state["profile"]
    lines = [f"{profile['n_rows']} rows, {profile['n_columns']} columns; "
             f"{len(profile['features'])} features used",
             f"training rows: {len(state['split']['train'])}; holdout rows: "
             f"{len(state['split']['holdout'])} (split once, before tuning, never seen by it)"]
    time_column = state.get("task", {}).get("time_column")
    if time_column:
        lines.append(f"split in time order by `{time_column}`: the holdout is the latest rows, "
                     "and each cross-validation fold trains on earlier rows only")
    if profile.get("class_counts"):
        lines.append(f"classes: {profile['class_counts']}")
    lines += [f"dropped `{c}`: {why}" for c, why in profile.get("dropped", {}).items()]
    lines += [f"dropped `{c}` as leakage: {why}" for c, why in profile.get("leakage", {}).items()]
    return "## The data\n\n" + _bullets(lines)


def _plan(state: RunState) -> str:
    winner = state["plan"]
    text = "## The plans\n\n"
    summaries = {p["id"]: p for p in plan_summaries(state)}
    for plan in state.get("plans") or [winner]:
        mark = " (won)" if plan["id"] == winner["id"] and "best" in state else ""
        summary = summaries.get(plan["id"], {})
        best = summary.get("best_cv")
        cites = ", ".join(f"`{c}`" for c in plan.get("sources", [])) or "nothing"
        steps = ", ".join(f"{k}={v}" for k, v in plan.get("steps", {}).items()) or "default"
        text += (f"### {plan['id']}{mark} ({plan['source']})\n\n{plan['rationale']}\n\n"
                 f"Cites: {cites}. Preprocessing: {steps}. Ran {summary.get('trials', 0)} trials"
                 + (f", best CV {best:.4f}" if best is not None else "") + ".\n\n")
        text += _bullets([f"`{f['name']}`: up to {plan['trials'][f['name']]} trials; {f['reason']}"
                          for f in plan["families"]]) + "\n"
    halving = [e["message"] for e in state.get("events", []) if e["stage"] == "halving"]
    if halving:
        text += "Successive halving across plans:\n\n" + _bullets(halving) + "\n"
    return text + _retrieved(state)


def _revisions(state: RunState) -> str:
    revisions = state.get("revisions", [])
    if not revisions:
        return ""
    lines = [f"revision {r['revision']}: {r['reason']} -> {r['changed']}" for r in revisions]
    earlier = "".join(f"- `{p['id']}`: {', '.join(p['models'])}, {p['trials']} trials, best CV "
                      + (f"{p['best_cv']:.4f}" if p["best_cv"] is not None else "-") + "\n"
                      for p in state.get("past_plans", []))
    return ("## Revisions\n\nVerification sent the run back to the planner:\n\n"
            + _bullets(lines) + ("\nEarlier plans:\n\n" + earlier if earlier else ""))


def _retrieved(state: RunState) -> str:
    runs = state.get("retrieved", {}).get("runs", [])
    if not runs:
        return ""
    lines = [f"`{r['run_id']}` (similarity {r['similarity']:.2f}): {r['winner']} won with CV "
             f"{r['best_cv']:.4f}; its winning configs start this run's search" for r in runs]
    return "\nSimilar past runs:\n\n" + _bullets(lines)


def _tried(state: RunState, board: pd.DataFrame) -> str:
    metric = state["task"]["metric"]
    head = f"| family | trials | failed | best CV {metric} |\n|---|---|---|---|\n"
    rows = []
    for family, group in board.groupby("model", sort=False):
        done = group["score"].dropna()
        best = f"{done.iloc[0]:.4f}" if len(done) else "-"
        rows.append(f"| {family} | {len(group)} | {int(group['score'].isna().sum())} | {best} |")
    top = _plain_table(board.head(10))
    stop = state.get("stop_reason", "")
    return (f"## What was tried\n\n{len(board)} trials ({stop}).\n\n" + head + "\n".join(rows)
            + f"\n\nTop of the leaderboard (mean {metric} over the CV folds):\n\n{top}\n")


def _plain_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    body = "".join("| " + " | ".join(_cell(v) for v in row) + " |\n"
                   for row in frame.itertuples(index=False))
    return header + body


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def _winner(state: RunState, board: pd.DataFrame) -> str:
    best, hold, metric = state["best"], state["holdout"], state["task"]["metric"]
    others = board[(board["model"] != best["model"]) & board["score"].notna()]
    runner_up = (f" The best other family, {others.iloc[0]['model']}, reached "
                 f"{others.iloc[0]['score']:.4f}." if len(others) else "")
    return (f"## What won and why\n\n`{best['model']}` with `{json.dumps(best['config'])}` had "
            f"the best mean cross-validated {metric}: {best['cv_score']:.4f} "
            f"(± {best['cv_std']:.4f} across folds).{runner_up} "
            f"{describe_final(final_model(best), metric)} It was refit on all "
            f"{len(state['split']['train'])} training rows.{_shipped(state)}\n\n"
            f"## Holdout\n\n{metric} on {hold['rows']} holdout rows: **{hold['score']:.4f}** "
            f"(CV {best['cv_score']:.4f}; trivial baseline {hold['baseline']:.4f}).\n")


def _shipped(state: RunState) -> str:
    shipped = state.get("shipped") or {}
    if shipped.get("holdout_included"):
        return (f" Once the holdout below had scored it, the same model was refit on all "
                f"{shipped['rows']} rows, holdout included: that is the saved model.")
    return f" The saved model is that one ({shipped['note']})." if shipped.get("note") else ""


def _verification(state: RunState) -> str:
    checks = state["verification"]
    lines = []
    for name in ("request", "execution", "implementation"):
        check = checks[name]
        lines.append(f"- **{name}: {check['status']}**\n")
        lines += [f"  - {r}\n" for r in check["reasons"]]
    review = checks.get("review", {})
    text = "## Verification\n\n" + "".join(lines) + _deployment_lines(state)
    concerns = review.get("concerns", [])
    text += (f"\nReview ({checks.get('review_source', 'rules')}): {review.get('summary', '')}\n\n"
             + _bullets(concerns))
    return text


def _usage(usage: dict[str, Any]) -> str:
    return (f"## LLM usage\n\n{usage['calls']} calls, {usage['prompt_tokens']} prompt tokens, "
            f"{usage['completion_tokens']} completion tokens. Every request and reply is in "
            f"`transcript.jsonl`.\n")


def _deployment_lines(state: RunState) -> str:
    facts = state.get("deployment")
    if not facts:
        return ""
    return (f"\nMeasured for deployment: {facts['latency_ms_per_row_batch']:.4f} ms per row in "
            f"a batch, {facts['latency_ms_single_row']:.3f} ms for a single row, "
            f"{facts['model_mb']:.3f} MB on disk, {facts['n_features']} input features.\n")
