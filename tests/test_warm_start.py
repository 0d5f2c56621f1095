"""Warm starts: past winners first, then the shipped strong defaults, then the LLM; the
experience record keeps each family's top configs, and old stores still load."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from scripts import load_script

from hyperpilot.agents.tuner.agent import warm_start
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools import zoo
from hyperpilot.tools.data import load_table, profile_table
from hyperpilot.tools.experience import ExperienceStore, top_configs
from hyperpilot.tools.types import DataProfile, TaskSpec, TrialRecord
from hyperpilot.tools.zoo import ZOO, get_model, strong_defaults_table

ROOT = Path(__file__).resolve().parents[1]
SCORED_BY_BENCHMARKS = {"iris", "wine", "breast_cancer", "digits", "diabetes"}


def _builder():  # the build script is not part of the package
    return load_script("build_strong_defaults")


def _task(task_type: str = "multiclass") -> TaskSpec:
    metric = "r2" if task_type == "regression" else "accuracy"
    return TaskSpec(text="predict y", target="y", task_type=task_type, metric=metric,
                    direction="maximize")


def _profile() -> DataProfile:
    return profile_table(load_table("sklearn:iris"), "species")


def test_the_shipped_table_covers_the_zoo_and_was_learned_off_the_benchmarks() -> None:
    document = json.loads((ROOT / "tools" / "strong_defaults.json").read_text())
    assert document["command"].startswith("python benchmarks/build_strong_defaults.py")
    learned_on = {d["name"] for d in document["datasets"]}
    assert learned_on and not any(name in SCORED_BY_BENCHMARKS for name in learned_on)
    for family in ["linear", "random_forest", "extra_trees", "hist_gb", "lightgbm", "svm", "knn"]:
        for task_type in ["binary", "multiclass", "regression"]:
            configs = get_model(family).strong_defaults(task_type)  # type: ignore[arg-type]
            space = get_model(family).space(task_type)  # type: ignore[arg-type]
            assert 1 <= len(configs) <= 4
            assert all(space.repair(c) == c for c in configs), (family, task_type)
            assert len({space.key(c) for c in configs}) == len(configs)
    assert set(strong_defaults_table()) <= set(ZOO)


def test_a_family_the_table_lacks_starts_from_its_zoo_default(monkeypatch) -> None:
    assert "torch_mlp" not in strong_defaults_table()  # too slow to learn on two cores
    mlp = get_model("torch_mlp")
    assert mlp.strong_defaults("binary") == [mlp.defaults("binary")]
    monkeypatch.setattr(zoo, "strong_defaults_table", lambda: {})
    assert get_model("knn").strong_defaults("regression") == [get_model("knn").defaults("regression")]


def test_past_winners_come_first_then_strong_defaults() -> None:
    space = get_model("linear").space("multiclass")
    strong = get_model("linear").strong_defaults("multiclass")
    nearest = [{"C": 50.0, "class_weight": None}, {"C": 20.0, "class_weight": "balanced"},
               {"C": 7.0, "class_weight": None}, {"C": 3.0, "class_weight": None}]
    farther = {"C": 0.01}  # an old record's single best config, class_weight filled in
    starts = warm_start("linear", space, _task(), _profile(), None,
                        past=[nearest, farther], max_past=4).value
    assert starts[0] == get_model("linear").defaults("multiclass")  # the user's first try
    assert starts[1:4] == nearest[:3]  # at most three from one run
    assert starts[4]["C"] == pytest.approx(0.01) and "class_weight" in starts[4]
    tail = [c for c in strong if space.key(c) not in {space.key(s) for s in starts[:5]}]
    assert starts[5:] == tail


@pytest.mark.parametrize("family", sorted(ZOO))
def test_every_family_starts_from_its_own_defaults(family: str) -> None:
    entry = get_model(family)
    for task_type in entry.task_types:
        space = entry.space(task_type)
        starts = warm_start(family, space, _task(task_type), _profile(), None).value
        assert starts[0] == entry.defaults(task_type)
        assert len({space.key(c) for c in starts}) == len(starts)


def test_configs_that_no_longer_fit_are_dropped_and_none_repeats() -> None:
    space = get_model("knn").space("regression")
    strong = get_model("knn").strong_defaults("regression")
    starts = warm_start("knn", space, _task("regression"), _profile(), None,
                        past=[[{"n_neighbors": 3, "algorithm": "kd_tree"}, strong[0]]]).value
    assert starts[0] == get_model("knn").defaults("regression")
    assert starts[1] == strong[0] and starts[2:] == [c for c in strong[1:] if c != starts[0]]


def test_top_configs_rank_distinct_complete_trials_by_direction() -> None:
    def trial(number: int, c: float, score: float | None, state: str = "COMPLETE") -> TrialRecord:
        return TrialRecord(number=number, model="linear", config={"alpha": c}, state=state,
                           score=score)

    trials = [trial(0, 1.0, -3.0), trial(1, 2.0, -1.0), trial(2, 2.0, -1.0),
              trial(3, 5.0, None, "FAIL"), trial(4, 9.0, -2.0), trial(5, 0.1, -4.0)]
    assert top_configs(trials, "maximize") == [{"alpha": 2.0}, {"alpha": 9.0}, {"alpha": 1.0}]
    assert top_configs(trials, "minimize", k=2) == [{"alpha": 0.1}, {"alpha": 1.0}]


def test_a_store_written_before_top_configs_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = {"run_id": "r1", "created": 1.0, "text": "predict y", "task_type": "regression",
           "metric": "r2", "direction": "maximize", "meta": {"log_rows": 2.0}, "best_model": "knn",
           "best_cv": 0.5, "families": {"knn": {"best_config": {"n_neighbors": 4}, "best_cv": 0.5,
                                                "trials": 3}}}
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        connection.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, created REAL, "
                           "task_type TEXT, record TEXT)")
        connection.execute("INSERT INTO meta VALUES ('schema', '1')")
        connection.execute("INSERT INTO runs VALUES ('r1', 1.0, 'regression', ?)", (json.dumps(old),))
    [record] = ExperienceStore(path).all()
    assert record.families["knn"].top_configs == []
    assert record.families["knn"].starts() == [{"n_neighbors": 4}]
    assert path.exists()  # read in place, not set aside


def test_the_greedy_portfolio_adds_what_covers_other_tasks() -> None:
    builder = _builder()
    scores = np.array([[1.00, 0.50, 0.50],   # best on task 0 only
                       [0.90, 0.90, 0.80],   # best on average
                       [0.50, 0.80, 1.00],   # covers task 2
                       [0.90, 0.90, 0.80]])  # a copy of the best adds nothing
    norm = builder.normalised(scores)
    assert norm.max(axis=0).tolist() == [1.0, 1.0, 1.0]
    assert norm.min(axis=0).tolist() == [0.0, 0.0, 0.0]
    assert builder.greedy_portfolio(norm, 4) == [1, 2, 0]
    assert builder.normalised(np.array([[np.nan], [0.5]]))[0, 0] == 0.0


@pytest.mark.slow
def test_a_second_run_starts_from_the_first_runs_top_configs(tmp_path: Path) -> None:
    store = tmp_path / "experience.sqlite"
    task = "predict the species of iris flowers, optimise accuracy"
    first = run_task(task, "sklearn:iris", tmp_path / "a",
                     RunOptions(llm="none", trials=8, seed=0, experience=store))
    [record] = ExperienceStore(store).all()
    for family, result in record.families.items():
        own = [t for t in first["trials"] if t["model"] == family and t["score"] is not None]
        assert result.top_configs[0] == result.best_config
        assert len(result.top_configs) == min(3, len({json.dumps(t["config"]) for t in own}))
    second = run_task(task, "sklearn:iris", tmp_path / "b",
                      RunOptions(llm="none", trials=8, seed=1, experience=store))
    assert second["retrieved"]["runs"][0]["run_id"] == first["run_id"]
    for family in second["plan"]["trials"]:
        if family in record.families:
            assert record.families[family].best_config in second["warm"][family][:2]


def test_merging_one_family_keeps_the_others_and_records_each_build(tmp_path: Path) -> None:
    builder = _builder()
    tasks = builder.training_tasks()
    old = {"about": "x", "command": "python benchmarks/build_strong_defaults.py ",
           "versions": "v1", "seconds": 10.0, "datasets": [builder.describe(t) for t in tasks],
           "portfolios": {"knn": {"regression": [{"config": {"n_neighbors": 3}}]},
                          "lightgbm": {"regression": []}}}
    path = tmp_path / "table.json"
    path.write_text(json.dumps(old))
    new = {"lightgbm": {"regression": [{"config": {"num_leaves": 7}}]}}
    build = {"command": "python benchmarks/build_strong_defaults.py --families lightgbm --merge",
             "versions": "v2", "seconds": 1.0}
    document = builder.merged(path, new, build, tasks)
    assert document["portfolios"]["knn"] == old["portfolios"]["knn"]
    assert document["portfolios"]["lightgbm"] == new["lightgbm"]
    assert document["builds"]["knn"]["versions"] == "v1" and document["builds"]["lightgbm"] == build
    with pytest.raises(SystemExit, match="other training tasks"):
        builder.merged(path, new, build, tasks[:2])
