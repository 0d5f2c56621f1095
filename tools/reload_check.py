"""Worker run in a fresh process: load a saved model, predict raw rows, print the score as JSON.

Usage: python -m hyperpilot.tools.reload_check MODEL ROWS TARGET METRIC POSITIVE_CLASS_JSON
"""

from __future__ import annotations

import json
import sys
import time

import joblib
import pandas as pd

from hyperpilot.tools.evaluate import score_pipeline


def main(argv: list[str]) -> int:
    model_path, rows_path, target, metric, positive = argv
    model = joblib.load(model_path)
    rows = pd.read_parquet(rows_path)
    X, y = rows.drop(columns=[target]), rows[target]
    started = time.perf_counter()
    score = score_pipeline(model, X, y, metric, json.loads(positive))
    seconds = time.perf_counter() - started
    sys.stdout.write(json.dumps({"score": score, "rows": len(rows), "seconds": seconds}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
