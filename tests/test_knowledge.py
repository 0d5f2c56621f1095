"""Knowledge cards, BM25 retrieval, the experience store, and planning from them."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from hyperpilot.agents.planner import make_plans
from hyperpilot.agents.tuner.agent import warm_start
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.data import load_table, profile_table
from hyperpilot.tools.errors import DataError
from hyperpilot.tools.experience import Experience, ExperienceStore, FamilyResult, meta_features
from hyperpilot.tools.knowledge import BM25, parse_card, shipped_cards, user_cards
from hyperpilot.tools.retrieval import retrieve, situation_query
from hyperpilot.tools.types import Budget, Constraints, TaskSpec
from hyperpilot.tools.zoo import ZOO, get_model


def test_shipped_cards_have_unique_ids_and_name_real_families() -> None:
    cards = shipped_cards()
    assert len(cards) >= 15 and len({c.id for c in cards}) == len(cards)
    assert {f for c in cards for f in c.families} <= set(ZOO)
    assert {c.kind for c in cards} == {"model", "situation", "metric"}


def test_card_header_parsing() -> None:
    card = parse_card("---\nid: x\nkind: situation\ntags: a b\nfamilies: svm +1.5, knn -1\n---\n"
                      "Body text.", "fallback")
    assert (card.id, card.kind, card.tags, card.families, card.body) == \
        ("x", "situation", ["a", "b"], {"svm": 1.5, "knn": -1.0}, "Body text.")
    assert parse_card("plain note", "note-1").id == "note-1"


def test_bm25_ranks_the_matching_document_first() -> None:
    index = BM25([("a", "gradient boosting on large data"), ("b", "small data few rows"),
                  ("c", "text columns")])
    assert index.search("few rows of small data", 2)[0][0] == "b"
    assert index.search("nothing matches", 2) == []


def test_user_notes_become_cards(tmp_path) -> None:
    (tmp_path / "notes.md").write_text("our churn data: always try svm first")
    (tmp_path / "skip.csv").write_text("a,b")
    cards = user_cards(tmp_path)
    assert [c.id for c in cards] == ["user-notes"]
    with pytest.raises(DataError, match="is not a folder"):
        user_cards(tmp_path / "missing")


def _task(profile, metric="accuracy", trials=30, text="t") -> TaskSpec:
    return TaskSpec(text=text, task_type=profile.task_type, target=profile.target, metric=metric,
                    direction="maximize", budget=Budget(trials=trials))


def test_retrieval_applies_situation_cards_only_when_the_situation_holds() -> None:
    small = profile_table(load_table("sklearn:iris"), "species")
    found = retrieve(_task(small), small, shipped_cards(), None)
    assert found.cards[0].card.id == "situation-small-data"
    digits = profile_table(load_table("sklearn:digits"), "digit")
    found = retrieve(_task(digits), digits, shipped_cards(), None)
    assert [c.card.kind for c in found.cards] == ["metric"]


def _experience(run_id: str, profile, winner: str, config: dict, text: str = "old") -> Experience:
    return Experience(run_id=run_id, text=text, task_type=profile.task_type, metric="accuracy",
                      direction="maximize", meta=meta_features(profile), best_model=winner,
                      best_cv=0.97, families={winner: FamilyResult(best_config=config,
                                                                   best_cv=0.97, trials=5)})


def test_store_round_trip_and_similarity(tmp_path) -> None:
    store = ExperienceStore(tmp_path / "exp.sqlite")
    iris = profile_table(load_table("sklearn:iris"), "species")
    digits = profile_table(load_table("sklearn:digits"), "digit")
    store.add(_experience("iris-run", iris, "svm", {"C": 3.0}))
    store.add(_experience("digits-run", digits, "svm", {"C": 9.0}))
    wine = profile_table(load_table("sklearn:wine"), "cultivar")
    similar = store.similar(meta_features(wine), "predict the wine", "multiclass", k=2)
    assert [r.run_id for r, _ in similar] == ["iris-run", "digits-run"]
    assert store.similar(meta_features(wine), "x", "regression") == []


def test_a_corrupt_or_newer_store_is_set_aside_not_fatal(tmp_path, caplog) -> None:
    path = tmp_path / "exp.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    store = ExperienceStore(path)
    assert store.all() == []
    assert any(p.name.startswith("exp.sqlite.unreadable-") for p in tmp_path.iterdir())
    assert "set aside" in caplog.text
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    iris = profile_table(load_table("sklearn:iris"), "species")
    store.add(_experience("after", iris, "svm", {"C": 1.0}))
    assert [r.run_id for r in store.all()] == ["after"]


def test_a_similar_past_winner_gains_weight_and_is_cited(tmp_path) -> None:
    store = ExperienceStore(tmp_path / "exp.sqlite")
    iris = profile_table(load_table("sklearn:iris"), "species")
    store.add(_experience("past-1", iris, "knn", {"n_neighbors": 7}))
    retrieved = retrieve(_task(iris), iris, shipped_cards(), store)
    [plan] = make_plans(_task(iris, trials=6), iris, None, retrieved=retrieved).value
    assert "knn" in plan.trials and "past-1" in plan.sources


def test_warm_start_puts_past_winners_first() -> None:
    iris = profile_table(load_table("sklearn:iris"), "species")
    space = get_model("knn").space("multiclass")
    past = [{"n_neighbors": 7, "weights": "distance", "p": 1}, {"bogus": 1}]
    configs = warm_start("knn", space, _task(iris), iris, None, past=past).value
    assert configs[0] == get_model("knn").defaults("multiclass")  # the user's first try
    assert configs[1] == {"n_neighbors": 7, "weights": "distance", "p": 1}
    assert configs[2:] == [c for c in get_model("knn").strong_defaults("multiclass")
                           if c not in configs[:2]]


def test_a_second_run_retrieves_the_first_and_starts_from_its_winner(tmp_path) -> None:
    store = tmp_path / "exp.sqlite"
    first = run_task("predict the cultivar", "sklearn:wine", tmp_path / "a",
                     RunOptions(llm="none", trials=6, seed=0, experience=store))
    lines: list[str] = []
    second = run_task("predict the cultivar of wines", "sklearn:wine", tmp_path / "b",
                      RunOptions(llm="none", trials=6, seed=1, experience=store), progress=lines.append)
    assert any(first["run_id"] in line for line in lines)
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    assert result["run_id"] == second["run_id"] != first["run_id"]
    assert first["run_id"] in result["plans"][0]["cites"]
    winner = first["best"]
    opening = [t["config"] for t in second["trials"] if t["model"] == winner["model"]][:2]
    assert winner["config"] in opening  # right after the family's own defaults
    assert first["run_id"] in (tmp_path / "b" / "report.md").read_text()


def test_no_experience_reads_and_writes_nothing(tmp_path) -> None:
    state = run_task("predict the cultivar", "sklearn:wine", tmp_path / "a",
                     RunOptions(llm="none", trials=2, experience=None))
    assert state["retrieved"]["runs"] == []
    assert not list(tmp_path.rglob("experience.sqlite"))


def test_lightgbm_has_its_own_card_and_a_share_of_the_situation_cards() -> None:
    cards = shipped_cards()
    iris = profile_table(load_table("sklearn:iris"), "species")
    retrieved = retrieve(_task(iris), iris, cards, None)
    assert retrieved.family_cards["lightgbm"].id == "model-lightgbm"
    large = next(c for c in cards if c.id == "situation-large-data")
    assert large.families["lightgbm"] == large.families["hist_gb"] > 0


def test_a_feature_limit_is_the_width_the_situation_sees() -> None:
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 80)),
                         columns=[f"x{i}" for i in range(80)]).assign(y=["a", "b"] * 100)
    profile = profile_table(frame, "y")
    wide = _task(profile)
    limited = wide.model_copy(update={"constraints": Constraints(max_features=8)})
    assert "wide data" in situation_query(wide, profile)
    assert "wide data" not in situation_query(limited, profile)


def test_free_text_and_dates_kept_as_features_still_name_their_situation() -> None:
    n = 60
    frame = pd.DataFrame({
        "review": [f"review number {i} says that it was {'great' if i % 2 else 'bad'} and more"
                   for i in range(n)],
        "day": pd.date_range("2020-01-01", periods=n).astype(str),
        "y": ["a", "b"] * (n // 2)})
    profile = profile_table(frame, "y")
    assert profile.text_features == ["review"] and profile.date_features == ["day"]
    query = situation_query(_task(profile), profile)
    assert "free text columns" in query and "time date order" in query
    retrieved = retrieve(_task(profile), profile, shipped_cards(), None)
    text_card = next(c for c in retrieved.cards if c.card.id == "situation-text-columns")
    assert text_card.card.families["linear"] > 0
    [plan] = make_plans(_task(profile, trials=12), profile, None, retrieved=retrieved, k=1).value
    assert "situation-text-columns" in plan.sources
    assert max(plan.trials, key=plan.trials.__getitem__) == "linear"
