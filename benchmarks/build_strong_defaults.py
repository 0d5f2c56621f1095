"""Learn the shipped strong-defaults table (tools/strong_defaults.json) on synthetic tasks.

For each zoo family and each kind of task (classification, regression), a pool of candidate
configs (the zoo's default plus random draws from the family's search space) is
cross-validated on every training task. Scores are normalised per task (best of the pool
1, worst 0) and a portfolio is chosen greedily: first the config with the best mean
normalised score, then each time the one that raises the mean of the per-task best the most
(the zero-shot portfolio of auto-sklearn 2 and AutoGluon). A run's tuner tries these configs,
in order, right after the winners of similar past runs.

No task here is one that a benchmark scores: they are all drawn from scikit-learn's
``make_classification``, ``make_regression`` and ``make_friedman1``, with varied shapes,
noise and class imbalance (never iris, wine, breast_cancer, digits or diabetes).

Usage (6 minutes on two busy cores; it writes the seconds it took into the file):

    python benchmarks/build_strong_defaults.py [--pool 8] [--folds 3] [--size 3] \
        [--families linear,random_forest,extra_trees,hist_gb,lightgbm,svm,knn] \
        [--out tools/strong_defaults.json] [--merge]

``--merge`` relearns only ``--families`` and keeps the other families of the existing
``--out`` file; the file then records each family's own command, versions and seconds
under ``"builds"``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import sklearn
from sklearn.datasets import make_classification, make_friedman1, make_regression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from hyperpilot.tools.errors import TrialFailed
from hyperpilot.tools.evaluate import cross_validate, make_folds
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import Config, TaskType
from hyperpilot.tools.zoo import get_model

KINDS: dict[str, TaskType] = {"classification": "multiclass", "regression": "regression"}
FAMILIES = ["linear", "random_forest", "extra_trees", "hist_gb", "lightgbm", "svm", "knn"]


@dataclass(frozen=True)
class TrainingTask:
    """One synthetic data set the table is learned on."""

    name: str
    kind: str
    metric: str
    X: np.ndarray
    y: np.ndarray


def _classification(name: str, metric: str, seed: int, **shape: Any) -> TrainingTask:
    X, y = make_classification(random_state=seed, **shape)
    return TrainingTask(name, "classification", metric, X, y)


def _regression(name: str, seed: int, **shape: Any) -> TrainingTask:
    X, y = make_regression(random_state=seed, **shape)
    return TrainingTask(name, "regression", "r2", X, y)


def _friedman(name: str, seed: int, **shape: Any) -> TrainingTask:
    X, y = make_friedman1(random_state=seed, **shape)
    return TrainingTask(name, "regression", "r2", X, y)


def training_tasks() -> list[TrainingTask]:
    """The fixed synthetic tasks (seeded, so a rebuild sees the same data)."""
    return [
        _classification("clf_400x10_easy", "accuracy", 101, n_samples=400, n_features=10,
                        n_informative=5, class_sep=1.0),
        _classification("clf_400x30_redundant_noisy", "accuracy", 102, n_samples=400,
                        n_features=30, n_informative=8, n_redundant=10, flip_y=0.05),
        _classification("clf_250x5_3class", "accuracy", 103, n_samples=250, n_features=5,
                        n_informative=3, n_redundant=0, n_classes=3, n_clusters_per_class=1),
        _classification("clf_400x20_imbalanced", "f1_macro", 104, n_samples=400,
                        n_features=20, n_informative=6, weights=[0.85, 0.15], flip_y=0.02),
        _classification("clf_600x12_4class_clusters", "accuracy", 105, n_samples=600,
                        n_features=12, n_informative=8, n_classes=4, n_clusters_per_class=2,
                        flip_y=0.1, class_sep=0.8),
        _regression("reg_300x10_noise10", 201, n_samples=300, n_features=10, n_informative=5,
                    noise=10.0),
        _regression("reg_250x30_lowrank_noise50", 202, n_samples=250, n_features=30,
                    n_informative=10, noise=50.0, effective_rank=5),
        _friedman("friedman1_400x10_noise1", 203, n_samples=400, n_features=10, noise=1.0),
        _friedman("friedman1_250x20_noise3", 204, n_samples=250, n_features=20, noise=3.0),
    ]


def candidate_pool(family: str, kind: str, size: int, rng: np.random.Generator) -> list[Config]:
    """The zoo's default and ``size`` distinct random configs from the family's space."""
    entry = get_model(family)
    space: SearchSpace = entry.space(KINDS[kind])
    pool = [space.repair(entry.defaults(KINDS[kind]))]
    keys = {space.key(pool[0])}
    for _ in range(size * 20):
        if len(pool) > size:
            break
        config = space.sample(rng)
        if space.key(config) not in keys:
            keys.add(space.key(config))
            pool.append(config)
    return pool


def cv_score(family: str, config: Config, task: TrainingTask, folds: int) -> float:
    """Mean CV score of one config on one task; a failed fit scores NaN."""
    entry = get_model(family)
    estimator = entry.build(KINDS[task.kind], config, seed=0)
    steps = [("scale", StandardScaler())] if entry.scale else []
    pipeline = Pipeline([*steps, ("model", estimator)])
    split = make_folds(task.y, "regression" if task.kind == "regression" else "multiclass",
                       folds, seed=0)
    try:
        return float(np.mean(cross_validate(pipeline, task.X, task.y, split, task.metric)))
    except TrialFailed:
        return float("nan")


def normalised(scores: np.ndarray) -> np.ndarray:
    """Per task (column): best config 1, worst 0; a failed config 0; a flat task all 1."""
    filled = np.where(np.isnan(scores), np.nanmin(scores, axis=0), scores)
    low, high = filled.min(axis=0), filled.max(axis=0)
    spread = np.where(high > low, high - low, 1.0)
    out = np.where(high > low, (filled - low) / spread, 1.0)
    return np.where(np.isnan(scores), 0.0, out)


def greedy_portfolio(norm: np.ndarray, size: int) -> list[int]:
    """Row indices, greedily: each maximises the mean over tasks of the portfolio's best."""
    chosen: list[int] = []
    best = np.zeros(norm.shape[1])
    for _ in range(min(size, norm.shape[0])):
        gains = [np.maximum(best, row).mean() if i not in chosen else -1.0
                 for i, row in enumerate(norm)]
        pick = int(np.argmax(gains))
        if chosen and gains[pick] <= best.mean() + 1e-9:
            break  # nothing left adds anything on the training tasks
        chosen.append(pick)
        best = np.maximum(best, norm[pick])
    return chosen


def learn(family: str, kind: str, tasks: list[TrainingTask],
          args: argparse.Namespace) -> list[dict[str, Any]]:
    """The family's portfolio for one kind of task, each config with its mean normalised score."""
    own = [t for t in tasks if t.kind == kind]
    # A pool of its own per family and kind, so rebuilding one family redraws the same pool.
    rng = np.random.default_rng([args.seed, zlib.crc32(f"{family}/{kind}".encode())])
    pool = candidate_pool(family, kind, args.pool, rng)
    scores = np.array([[cv_score(family, c, t, args.folds) for t in own] for c in pool])
    norm = normalised(scores)
    picks = greedy_portfolio(norm, args.size)
    print(f"{family:>14} {kind:<14} pool {len(pool)}, picked {picks}", flush=True)
    return [{"config": pool[i], "mean_normalised_score": round(float(norm[i].mean()), 4)}
            for i in picks]


def describe(task: TrainingTask) -> dict[str, Any]:
    return {"name": task.name, "kind": task.kind, "metric": task.metric,
            "rows": int(task.X.shape[0]), "features": int(task.X.shape[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=8, help="random configs per family and kind")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--size", type=int, default=3, help="configs per portfolio (at most)")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("tools/strong_defaults.json"))
    parser.add_argument("--merge", action="store_true",
                        help="relearn only --families, keeping the rest of the --out file")
    args = parser.parse_args()
    families = args.families.split(",")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    started = time.time()
    tasks = training_tasks()
    # One thread per fit: OpenMP boosting on a busy machine otherwise slows down a hundredfold.
    with threadpool_limits(limits=1):
        table = {family: {kind: learn(family, kind, tasks, args) for kind in KINDS}
                 for family in families}
    build = {
        "command": "python benchmarks/build_strong_defaults.py " + " ".join(sys.argv[1:]),
        "versions": versions(),
        "seconds": round(time.time() - started, 1),
    }
    document = merged(args.out, table, build, tasks) if args.merge else {
        "about": ABOUT, **build, "datasets": [describe(t) for t in tasks], "portfolios": table}
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out} in {build['seconds']} s")


ABOUT = ("Strong default configs per model family, best first, learned as a greedy portfolio "
         "over CV scores normalised per task. Rebuild with the command.")


def versions() -> str:
    return (f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
            f"numpy {np.__version__}, lightgbm {lightgbm.__version__}")


def merged(path: Path, table: dict[str, Any], build: dict[str, Any],
           tasks: list[TrainingTask]) -> dict[str, Any]:
    """The existing table at ``path`` with ``table``'s families replaced, and each family's
    build recorded; the training tasks must be the ones the file was learned on."""
    if not path.is_file():
        sys.exit(f"--merge: {path} does not exist; build the whole table first")
    document = json.loads(path.read_text())
    if document.get("datasets") != [describe(t) for t in tasks]:
        sys.exit(f"--merge: {path} was learned on other training tasks; rebuild it whole")
    builds = document.setdefault("builds", {})
    for family in document["portfolios"]:
        builds.setdefault(family, {k: document[k] for k in ("command", "versions", "seconds")})
    for family in table:
        builds[family] = build
    document["portfolios"] = {**document["portfolios"], **table}
    return document


if __name__ == "__main__":
    main()
