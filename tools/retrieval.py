"""Retrieval for planning: knowledge cards by BM25 on a description of the data, and the most
similar past runs from the experience store. No LLM here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from hyperpilot.tools.experience import Experience, ExperienceStore, meta_features
from hyperpilot.tools.knowledge import BM25, Card
from hyperpilot.tools.types import DataProfile, TaskSpec

SMALL_ROWS, LARGE_ROWS = 1000, 50_000
# Cards scoring under this share of the best card are noise from shared common words.
MIN_RELATIVE = 0.3


class ScoredCard(BaseModel):
    card: Card
    score: float
    relative: float = 1.0  # score over the best score of the same query


class ScoredRun(BaseModel):
    run: Experience
    similarity: float


class Retrieved(BaseModel):
    """What the planner may cite: situation cards (best first), each model family's own
    card, and similar past runs."""

    query: str
    cards: list[ScoredCard] = Field(default_factory=list)
    family_cards: dict[str, Card] = Field(default_factory=dict)
    runs: list[ScoredRun] = Field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What was found, as JSON-able data (past winners' configs included)."""
        return {
            "query": self.query,
            "cards": [{"id": c.card.id, "score": round(c.score, 3)} for c in self.cards],
            "runs": [{"run_id": r.run.run_id, "similarity": round(r.similarity, 3),
                      "winner": r.run.best_model, "best_cv": r.run.best_cv,
                      "configs": {f: v.best_config for f, v in r.run.families.items()},
                      "top_configs": {f: v.starts() for f, v in r.run.families.items()}}
                     for r in self.runs],
        }


def metric_query(task: TaskSpec) -> str:
    """Words naming the task type and metric."""
    return " ".join([task.task_type, task.metric.replace("_", " "), task.metric])


def situation_query(task: TaskSpec, profile: DataProfile) -> str:
    """Words describing the data's situation (empty when nothing stands out).

    Args:
        task: the resolved task.
        profile: the data profile.
    """
    words: list[str] = []
    # A feature limit the task states is the width the models will see.
    n_features = max(min(len(profile.features), task.constraints.max_features or 10**9), 1)
    if profile.n_rows < SMALL_ROWS:
        words.append("small data few rows")
    elif profile.n_rows > LARGE_ROWS:
        words.append("large data many rows")
    if profile.imbalance_ratio > 3:
        words.append("imbalanced classes minority")
    if len(profile.categorical_features) > 0.3 * n_features:
        words.append("categorical columns high cardinality")
    if profile.missing_fraction > 0.02:
        words.append("missing values")
    if n_features > max(50, profile.n_rows // 5):
        words.append("wide data many features")
    if profile.target_skew is not None and abs(profile.target_skew) > 1:
        words.append("skewed target heavy tail")
    if profile.text_features:
        words.append("free text columns")
    if profile.date_features:
        words.append("time date order")
    return " ".join(words)


def retrieve(task: TaskSpec, profile: DataProfile, cards: list[Card],
             store: ExperienceStore | None, k_cards: int = 6, k_runs: int = 3) -> Retrieved:
    """The best cards for this situation and the most similar past runs of the same task type.

    Args:
        task: the resolved task.
        profile: the data profile.
        cards: the cards to search (shipped and the user's).
        store: the experience store, or ``None`` to use no past runs.
        k_cards: cards to return at most.
        k_runs: past runs to return at most.
    """
    situation = situation_query(task, profile)
    found = _search([c for c in cards if c.kind not in ("model", "metric")], situation, k_cards)
    found += _search([c for c in cards if c.kind == "metric"], metric_query(task), 2)
    family_cards = {family: c for c in cards if c.kind == "model" for family in c.families}
    runs: list[ScoredRun] = []
    if store is not None:
        similar = store.similar(meta_features(profile), task.text, task.task_type, k_runs)
        runs = [ScoredRun(run=r, similarity=s) for r, s in similar]
    return Retrieved(query=f"{situation} | {metric_query(task)}".strip(" |"), cards=found,
                     family_cards=family_cards, runs=runs)


def _search(cards: list[Card], query: str, k: int) -> list[ScoredCard]:
    if not cards or not query.strip():
        return []
    by_id = {c.id: c for c in cards}
    hits = BM25([(c.id, c.text) for c in cards]).search(query, k)
    top = hits[0][1] if hits else 1.0
    return [ScoredCard(card=by_id[i], score=s, relative=s / top) for i, s in hits
            if s >= MIN_RELATIVE * top]
