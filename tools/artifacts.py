"""Writing run artifacts atomically, and reloading a saved model in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from hyperpilot.tools.errors import HyperpilotError


def _atomic_write(path: Path, write: Any, mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers never see a half-written file.

    Args:
        path: the destination file.
        text: the content.
    """
    _atomic_write(path, lambda h: h.write(text))


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically.

    Args:
        path: the destination file.
        data: JSON-serialisable data (paths and other objects become strings).
    """
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write one JSON object per line, atomically.

    Args:
        path: the destination file.
        rows: the objects.
    """
    write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in rows))


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Add one JSON object as a line at the end of ``path``, flushed to disk, so a process
    killed right after still leaves it there; a reader skips a torn last line.

    Args:
        path: the file to extend (made when missing).
        row: the object.
    """
    line = json.dumps(row, default=str) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, one a line; a line that does not parse (the last one of
    a killed writer) is skipped. An absent file has none.

    Args:
        path: the file to read.
    """
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def save_model(model: Any, path: Path) -> None:
    """Save a fitted pipeline with joblib, atomically.

    Args:
        model: the fitted scikit-learn pipeline.
        path: the destination, conventionally ``model.joblib``.
    """
    _atomic_write(path, lambda h: joblib.dump(model, h), mode="wb")


def save_array(array: np.ndarray, path: Path) -> None:
    """Save a numeric array as ``.npy``, atomically.

    Args:
        array: the array (no Python objects inside).
        path: the destination ``.npy`` file.
    """
    _atomic_write(path, lambda h: np.save(h, array, allow_pickle=False), mode="wb")


def save_frame(frame: pd.DataFrame, path: Path) -> None:
    """Save rows as Parquet, atomically, keeping dtypes for an exact reload.

    Args:
        frame: the rows.
        path: the destination ``.parquet`` file.
    """
    _atomic_write(path, lambda h: frame.to_parquet(h, index=False), mode="wb")


def reload_and_score(model_path: Path, rows_path: Path, target: str, metric: str,
                     positive_class: Any = None, timeout: float = 300.0) -> dict[str, Any]:
    """Load ``model_path`` in a fresh Python process and score it on the rows in ``rows_path``.

    Returns the worker's report: ``score``, ``rows`` and ``seconds`` (predict time).

    Args:
        model_path: a ``model.joblib`` written by ``save_model``.
        rows_path: a Parquet file of raw rows with the original columns and the target.
        target: the target column in those rows.
        metric: the metric name to compute.
        positive_class: the positive class for binary metrics.
        timeout: seconds before the worker is killed.
    """
    command = [sys.executable, "-m", "hyperpilot.tools.reload_check", str(model_path),
               str(rows_path), target, metric, json.dumps(positive_class)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise HyperpilotError(f"reloading the model took over {timeout:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HyperpilotError(f"reloading the model failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])
