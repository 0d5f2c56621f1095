"""``hyperpilot predict``: new rows read the way the model was trained on them, then predicted.

A column the model reads as numbers may arrive as text. When every value in it is a number
written as text (decimal commas, thousands separators) it is read as numbers; otherwise the
values that are not numbers become missing, as the model would make them, and the caller is
told how many per column, or, with ``strict``, the rows are refused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TextIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.run import predict
from hyperpilot.tools.artifacts import write_text
from hyperpilot.tools.data import load_table
from hyperpilot.tools.errors import DataError
from hyperpilot.tools.preprocess import as_numbers
from hyperpilot.tools.read_file import parse_number_text

log = logging.getLogger(__name__)


def check_output(output: Path | None, force: bool) -> None:
    """Refuse an ``--output`` that would lose something: a folder, or a file without ``force``.

    Args:
        output: the CSV file to write, or None for standard output.
        force: whether an existing file may be replaced.
    """
    if output is None:
        return
    if output.parent.exists() and not output.parent.is_dir():
        raise DataError(f"--output {output}: {output.parent} is a file, not a folder")
    if output.is_dir():
        raise DataError(f"--output {output} is a folder; give a file name, e.g. "
                        f"{output / 'predictions.csv'}")
    if output.exists() and not force:
        raise DataError(f"{output} exists; pass --force to overwrite it")


def print_predictions(predictions: pd.DataFrame, stream: TextIO) -> None:
    """Write ``predictions`` as CSV to ``stream`` (standard output); a reader that stops
    early, as ``| head`` does, ends the writing quietly.

    Args:
        predictions: what ``predict_rows`` returned.
        stream: a text stream with a file descriptor behind it.
    """
    try:
        predictions.to_csv(stream, index=False)
        stream.flush()
    except BrokenPipeError:
        # Python flushes the stream again at exit; pointing it at /dev/null keeps that quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def write_predictions(output: Path, predictions: pd.DataFrame) -> None:
    """Write ``predictions`` as CSV to ``output`` at once (a reader never sees half a file).

    Args:
        output: the destination file; its folder is made when missing.
        predictions: what ``predict_rows`` returned.
    """
    try:
        write_text(output, predictions.to_csv(index=False))
    except OSError as err:
        raise DataError(f"cannot write --output {output}: {err.strerror or err}") from None


def predict_rows(run_dir: Path, source: str | pd.DataFrame,
                 strict: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The run's predictions on new rows, and one warning per numeric column whose text
    values were read as missing (see ``read_rows``).

    Args:
        run_dir: a finished run's folder.
        source: a CSV or Parquet file, ``sklearn:NAME``, or a DataFrame of rows.
        strict: refuse the rows (``DataError``) instead of warning.
    """
    rows, warnings = read_rows(RunFolder(run_dir), source, strict)
    return predict(run_dir, rows), warnings


def read_rows(folder: RunFolder, source: str | pd.DataFrame,
              strict: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The new rows, with the model's numeric columns that arrived as text made numbers,
    and a warning for each column where some values are not numbers.

    Args:
        folder: the run folder the rows are for.
        source: a file, ``sklearn:NAME`` or a DataFrame (not modified).
        strict: raise ``DataError`` naming every such column instead of warning.
    """
    rows = load_table(source) if isinstance(source, str) else source.copy()
    features = folder.read_result().get("features", []) if folder.result.is_file() else []
    problems = []
    for name in numeric_features(folder, features):
        if name not in rows.columns or pd.api.types.is_numeric_dtype(rows[name]):
            continue
        rows[name], problem = _as_numbers(rows[name])
        if problem:
            problems.append(f"column {name}: {problem}")
    if problems and strict:
        raise DataError("; ".join(problems) + "; fix them, or leave out --strict to read them "
                        "as missing")
    return rows, [f"{problem} and were read as missing" for problem in problems]


def numeric_features(folder: RunFolder, features: list[str]) -> list[str]:
    """The ``features`` the model reads as numbers: those that were numbers (or booleans) in
    the training table, as the run folder's holdout rows keep them; none when it has none.

    Args:
        folder: the run folder.
        features: the run's feature columns.
    """
    if not folder.holdout.is_file():
        return []
    try:
        dtypes = pq.read_schema(folder.holdout).empty_table().to_pandas().dtypes
    except (OSError, pa.ArrowException) as err:
        log.warning("cannot read %s (%s); text in numeric columns is not checked",
                    folder.holdout, err)
        return []
    return [name for name in features
            if name in dtypes.index and pd.api.types.is_numeric_dtype(dtypes[name])]


def _as_numbers(column: pd.Series) -> tuple[pd.Series, str]:
    """``column`` as the floats the model reads, and what was lost ("" when nothing)."""
    parsed = parse_number_text(column)
    if parsed is None:  # not all numbers: as the model's own coercion reads them
        parsed = as_numbers(column.to_frame()).iloc[:, 0]
    present = column.notna() & (column.astype(str).str.strip() != "")
    lost = present & parsed.isna()
    if not lost.any():
        return parsed, ""
    example = column[lost].iloc[0]
    return parsed, (f"{int(lost.sum())} of {len(column)} values are not numbers "
                    f"(e.g. {str(example)!r})")
