"""``report.html``: one self-contained page (styles inline, images as data URIs, no script
and nothing fetched when it is viewed) with the plots, the decisions and who made them,
the verification and the constraints."""

from __future__ import annotations

import base64
import json
from importlib import resources
from typing import Any

import jinja2
import pandas as pd

from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.report.figures import Figures

# Who made a decision, in the words the page uses.
MADE_BY = {"llm": "LLM", "rules": "rules", "tools": "measured", "request": "the request"}
TOP_ROWS = 15


def render_html(state: dict[str, Any], result: dict[str, Any], board: pd.DataFrame,
                figures: Figures, folder: RunFolder) -> str:
    """The page for a run: ``result`` is its ``result.json`` document."""
    template = _environment().get_template("report.html.j2")
    return template.render(**page(state, result, board, figures, folder))


def _environment() -> jinja2.Environment:
    source = resources.files("hyperpilot.pipelines.report")
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: source.joinpath(name).read_text("utf-8")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def page(state: dict[str, Any], result: dict[str, Any], board: pd.DataFrame, figures: Figures,
         folder: RunFolder) -> dict[str, Any]:
    """Everything the template shows, as plain values."""
    task = state.get("task") or {}
    return {
        "text": state.get("text", ""), "status": result.get("status", "ok"),
        "run_id": result.get("run_id") or "", "task": task,
        "asked": _asked(task, result), "headline": _headline(state, result),
        "plots": [{"title": p.title, "caption": p.caption, "file": p.relative(folder),
                   "src": _data_uri(p.path.read_bytes())} for p in figures.plots],
        "plot_notes": figures.notes,
        "decisions": [{"stage": e["stage"], "by": MADE_BY.get(e["source"], e["source"]),
                       "llm": e["source"] == "llm", "message": e["message"]}
                      for e in state.get("events", [])],
        "plans": _plans(state, result),
        "board": _board(board), "metric": task.get("metric", ""),
        "checks": _checks(state), "constraints": _constraints(state),
        "deployment": result.get("deployment"), "review": _review(state),
        "shift": [f["line"] for f in (state.get("verification") or {}).get("shift", [])
                  if f.get("severe")],
        "final": _final(state, result), "llm": result.get("llm") or {},
        "dropped": result.get("dropped") or {},
    }


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _asked(task: dict[str, Any], result: dict[str, Any]) -> list[tuple[str, str]]:
    if not task:
        return []
    budget = task["budget"]
    rows = [("data", task["data_source"]), ("task", f"{task['task_type']} on {task['target']}"),
            ("metric", f"{task['metric']} ({task['direction']})"),
            ("budget", f"{budget['trials']} trials"
             + (f", time limit {budget['time_limit']:.0f} s" if budget.get("time_limit") else "")),
            ("seed", str(result.get("seed")))]
    if task.get("positive_class") is not None:
        rows.append(("positive class", str(task["positive_class"])))
    if task.get("time_column"):
        rows.append(("time order", f"split by {task['time_column']}"))
    return rows


def _headline(state: dict[str, Any], result: dict[str, Any]) -> list[tuple[str, str]]:
    best, hold = state.get("best"), state.get("holdout")
    if not best or not hold:
        return []
    final = result.get("final_model") or {}
    model = (f"ensemble of {len(final['members'])}" if final.get("kind") == "ensemble"
             else best["model"])
    cv = final.get("cv_score", best["cv_score"])
    return [("model", model), (f"CV {hold['metric']}", f"{cv:.4f}"),
            (f"holdout {hold['metric']}", f"{hold['score']:.4f}"),
            ("trivial baseline", f"{hold['baseline']:.4f}"),
            ("trials", str(result.get("trials", 0)))]


def _final(state: dict[str, Any], result: dict[str, Any]) -> dict[str, Any] | None:
    best = state.get("best")
    if not best:
        return None
    shipped = state.get("shipped") or {}
    return {"model": best["model"], "config": json.dumps(best["config"], sort_keys=True),
            "described": result.get("final_model") or {"kind": "single", "threshold": None,
                                                         "calibration": None, "notes": []},
            "shipped": shipped.get("note", "")}


def _plans(state: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every plan of the run (an earlier revision's too), from ``result.json``."""
    winner = (state.get("plan") or {}).get("id")
    plans = {p["id"]: p for p in state.get("plans") or []}
    out = []
    for summary in result.get("plans") or []:
        plan = plans.get(summary["id"], {})
        out.append({**summary, "won": summary["id"] == winner and "best" in state,
                    "source": summary.get("source", ""), "rationale": plan.get("rationale", ""),
                    "steps": ", ".join(f"{k}={v}" for k, v in (summary.get("steps") or {}).items())
                    or "default"})
    return out


def _board(board: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for row in board.head(TOP_ROWS).itertuples(index=False):
        rows.append({"rank": row.rank, "trial": row.trial, "model": row.model,
                     "score": _number(row.score), "std": _number(row.cv_std),
                     "seconds": f"{row.seconds:.2f}", "state": row.state, "plan": row.plan,
                     "config": row.config})
    return rows


def _number(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):.4f}"


def _checks(state: dict[str, Any]) -> list[dict[str, Any]]:
    checks = state.get("verification") or {}
    return [{"name": n, "status": checks[n]["status"], "reasons": checks[n]["reasons"]}
            for n in ("request", "execution", "implementation") if n in checks]


def _constraints(state: dict[str, Any]) -> list[dict[str, Any]]:
    return list((state.get("verification") or {}).get("constraints", []))


def _review(state: dict[str, Any]) -> dict[str, Any] | None:
    checks = state.get("verification") or {}
    review = checks.get("review")
    if review is None:
        return None
    source = checks.get("review_source", "rules")
    return {"by": MADE_BY.get(source, source), "summary": review.get("summary", ""),
            "concerns": review.get("concerns", [])}
