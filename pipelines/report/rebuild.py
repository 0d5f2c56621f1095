"""``hyperpilot report DIR``: the plots, report.md and report.html drawn again from a
finished run's folder (its last checkpoint and result.json), nothing trained or changed."""

from __future__ import annotations

from pathlib import Path

from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.graph.report import leaderboard, write_reports
from hyperpilot.pipelines.run import checkpointed_state
from hyperpilot.tools.errors import DataError


def rebuild_report(run_dir: Path) -> RunFolder:
    """Write the run's plots, ``report.md`` and ``report.html`` again; the folder's other
    files are only read. Raises ``DataError`` for a folder that holds no finished run."""
    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise DataError(f"{run_dir} is not a folder")
    if not folder.is_run():
        raise DataError(f"{run_dir} holds no hyperpilot run")
    result = folder.read_result()
    state = checkpointed_state(folder)
    if not state.get("text"):
        raise DataError(f"{run_dir} keeps no checkpoint of its run to draw the report from")
    write_reports(state, result, leaderboard(state), folder)
    return folder
