"""The run graph: its state, its nodes by stage, and ``build_graph``.

``state.py`` (``RunState``, typed accessors, ``RunContext``), ``intake.py`` (parse, data,
request check), ``planning.py`` (plans, search spaces), ``schedule.py`` (parallel trials,
successive halving, the time stop), ``finish.py`` (refit, measure, verify, revise),
``report.py`` (the run folder's records, the experience store), ``build.py`` (the edges).
"""

from hyperpilot.pipelines.graph.build import build_graph
from hyperpilot.pipelines.graph.state import RunContext, RunState

__all__ = ["build_graph", "RunContext", "RunState"]
