"""The Python API: ``hyperpilot.run(task, data=...)`` and ``hyperpilot.load(run_dir)``.

Both go through the same graph and the same run folder as ``hyperpilot run``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.predict import predict_rows
from hyperpilot.pipelines.run import default_out_dir, run_task
from hyperpilot.tools.data import checked_table
from hyperpilot.tools.errors import DataError, TaskSpecError

log = logging.getLogger(__name__)
DataSource: TypeAlias = str | Path | pd.DataFrame


@dataclass(frozen=True)
class RunResult:
    """A finished run: the fitted pipeline, the leaderboard and the holdout score.

    ``verified`` is True when every verification check passed; ``result`` holds the whole
    ``result.json``.
    """

    run_dir: Path
    pipeline: Any
    leaderboard: pd.DataFrame = field(repr=False)
    holdout_score: float
    metric: str
    verified: bool
    result: dict[str, Any] = field(repr=False)

    @property
    def best_model(self) -> str:
        """The winning model family, e.g. ``"random_forest"``."""
        return str(self.result["best"]["model"])

    @property
    def cv_score(self) -> float:
        """The winner's mean cross-validated score on the training rows."""
        return float(self.result["best"]["cv_score"])

    @property
    def report(self) -> Path:
        """The run's ``report.html`` (plots, decisions, verification), to open in a browser."""
        return RunFolder(self.run_dir).report_html

    def predict(self, data: DataSource) -> pd.DataFrame:
        """Predictions on new rows (a file, ``sklearn:NAME`` or a DataFrame): a ``prediction``
        column, and ``proba_<class>`` columns for classifiers."""
        source = checked_table(data, "the DataFrame") if isinstance(data, pd.DataFrame) \
            else str(data)
        predictions, lost = predict_rows(self.run_dir, source)
        for line in lost:  # values that are not numbers were read as missing: say so
            warnings.warn(line, UserWarning, stacklevel=2)
        return predictions


def run(task: str, data: DataSource, *, out: str | Path | None = None, llm: Any = None,
        progress: Callable[[str], None] | None = None, **options: Any) -> RunResult:
    """Train, verify and save a model for ``task`` (plain language) on ``data``.

    Args:
        task: what to predict and how to judge it, e.g. "predict species, optimise macro F1".
        data: a CSV or Parquet path, ``"sklearn:NAME"`` or a pandas DataFrame.
        out: the run folder (default ``runs/<task>-<time>``); an earlier run there is replaced,
            any other non-empty folder is refused.
        llm: ``"none"``, ``"openai:MODEL"``, ``"local[:MODEL]"``, ``"replay:PATH"``, an
            ``LLMClient``, or ``None`` for the environment's default.
        progress: called with each progress line (default: logged at INFO).
        **options: any ``RunOptions`` field, as for ``hyperpilot run``: ``trials`` (30),
            ``time_limit`` (seconds, none), ``seed`` (0), ``plans`` (3), ``revisions`` (2),
            ``halving`` (True), ``refit_all`` (True), ``llm_budget`` (0), ``experience`` (a
            path, or None for no store; the default store otherwise), ``knowledge`` (a folder of
            notes), ``workers`` (trials at once; one per plan), ``executor`` (``"auto"``,
            ``"inprocess"``, ``"process"``, ``"ray"``, ``"ray:ADDRESS"``).

    Raises ``TaskSpecError`` when the request check rejects the task or an option is bad,
    ``DataError`` for data that cannot be used; a run whose model fails verification returns
    with ``verified=False``.
    """
    folder = Path(out) if out is not None else default_out_dir(task)
    client = None
    if isinstance(llm, str) or llm is None:
        options["llm"] = llm
    else:
        client = llm
    run_options = RunOptions.of(options)
    source, frame = _source(data)
    state = run_task(task, source, folder, run_options, frame=frame, llm=client,
                     progress=progress or log.info)
    if state.get("status") == "rejected":
        reasons = "; ".join(state["verification"]["request"]["reasons"])
        raise TaskSpecError(f"request check failed: {reasons}")
    return load(folder)


def resume(run_dir: str | Path, *, llm: Any = None, data: pd.DataFrame | None = None,
           progress: Callable[[str], None] | None = None, **where: Any) -> RunResult:
    """Go on with a run that was stopped or killed, with its own options, and return it
    finished: its finished trials are kept and none is trained twice.

    Args:
        run_dir: the stopped run's folder.
        llm: an ``LLMClient`` to use instead of the one the run's options name.
        data: the run's table again, for a run made from a DataFrame.
        progress: called with each progress line (default: logged at INFO).
        **where: ``workers`` and ``executor``, to train the rest elsewhere (another
            machine's cluster, more workers); the run's other options stay as they were.
    """
    from hyperpilot.pipelines.continue_run import resume_run

    frame = None if data is None else checked_table(data, "the DataFrame")
    resume_run(Path(run_dir), llm=llm, frame=frame, progress=progress or log.info, where=where)
    return load(run_dir)


def _source(data: DataSource) -> tuple[str, pd.DataFrame | None]:
    if isinstance(data, pd.DataFrame):
        frame = checked_table(data, "the DataFrame")
        return f"DataFrame ({len(frame)} rows x {frame.shape[1]} columns)", frame
    if isinstance(data, str | Path):
        return str(data), None
    raise DataError(f"data must be a path, 'sklearn:NAME' or a pandas DataFrame, "
                    f"not {type(data).__name__}")


def load(run_dir: str | Path) -> RunResult:
    """The ``RunResult`` of a finished run folder, read back from its files."""
    folder = RunFolder(Path(run_dir))
    if folder.is_stopped():
        raise DataError(f"{folder.path} holds a run that did not finish; go on with it with "
                        f"hyperpilot.resume({str(folder.path)!r}) or `hyperpilot resume "
                        f"{folder.path}`")
    missing = folder.missing(folder.result, folder.model, folder.leaderboard)
    if missing:
        raise DataError(f"{folder.path} is not a finished hyperpilot run (missing "
                        f"{', '.join(missing)})")
    result = folder.read_result()
    if not result.get("holdout"):
        raise DataError(f"{folder.path} holds a run that stopped before a model was chosen")
    return RunResult(run_dir=folder.path, pipeline=folder.load_model(),
                     leaderboard=folder.read_leaderboard(),
                     holdout_score=float(result["holdout"]["score"]),
                     metric=str(result["holdout"]["metric"]),
                     verified=result.get("status") == "ok", result=result)
