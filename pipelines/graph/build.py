"""The run graph.

parse -> data -> request check -> plan (k plans) -> model (spaces, warm starts) -> schedule
-> tune_plan x k in parallel (one trial of each running plan a step; successive halving
between stages) -> finalize (select, refit, measure) -> verify -> report, or, when a check
fails for a reason a new plan can fix, revise -> plan again (at most ``--revisions`` times).
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from hyperpilot.pipelines.graph.finish import after_verify, finalize_node, revise_node, verify_node
from hyperpilot.pipelines.graph.intake import (
    after_request,
    data_node,
    parse_node,
    verify_request_node,
)
from hyperpilot.pipelines.graph.planning import model_node, plan_node
from hyperpilot.pipelines.graph.report import report_node
from hyperpilot.pipelines.graph.schedule import dispatch, schedule_node, tune_plan_node
from hyperpilot.pipelines.graph.state import RunContext, RunState


def build_graph(ctx: RunContext) -> StateGraph:
    """The run's graph over ``RunState``; nodes close over ``ctx``. Compile with a checkpointer."""
    graph = StateGraph(RunState)
    graph.add_node("parse", lambda s: parse_node(s, ctx))
    graph.add_node("data", lambda s: data_node(s, ctx))
    graph.add_node("verify_request", verify_request_node)
    graph.add_node("plan", lambda s: plan_node(s, ctx))
    graph.add_node("model", lambda s: model_node(s, ctx))
    graph.add_node("schedule", lambda s: schedule_node(s, ctx))
    graph.add_node("tune_plan", lambda s: tune_plan_node(s, ctx))
    graph.add_node("finalize", lambda s: finalize_node(s, ctx))
    graph.add_node("verify", lambda s: verify_node(s, ctx))
    graph.add_node("revise", lambda s: revise_node(s, ctx))
    graph.add_node("report", lambda s: report_node(s, ctx))
    graph.add_edge(START, "parse")
    graph.add_edge("parse", "data")
    graph.add_edge("data", "verify_request")
    graph.add_conditional_edges("verify_request", after_request, ["plan", "report"])
    graph.add_edge("plan", "model")
    graph.add_edge("model", "schedule")
    graph.add_conditional_edges("schedule", lambda s: dispatch(s, ctx), ["tune_plan", "schedule", "finalize"])
    graph.add_edge("tune_plan", "schedule")
    graph.add_edge("finalize", "verify")
    graph.add_conditional_edges("verify", lambda s: after_verify(s, ctx), ["revise", "report"])
    graph.add_edge("revise", "plan")
    graph.add_edge("report", END)
    return graph
