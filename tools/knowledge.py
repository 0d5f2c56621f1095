"""Knowledge cards and lexical retrieval over them (BM25). No LLM here.

Cards are markdown files with a small header (``id``, ``kind``, ``title``, ``tags`` and
``families``: weight changes a card suggests for model families, e.g. ``svm +1.0``). The
shipped cards live in ``tools/cards/``; ``--knowledge DIR`` adds a user's own notes.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field

from hyperpilot.tools.errors import DataError

_TOKEN = re.compile(r"[a-z0-9_]+")
_STOP = frozenset("a an and are as at be by for from in is it its of on or that the to with "
                  "when where which than then this these those not no".split())


class Card(BaseModel):
    id: str
    kind: str = "note"
    title: str = ""
    tags: list[str] = Field(default_factory=list)
    families: dict[str, float] = Field(default_factory=dict)
    body: str = ""

    @property
    def text(self) -> str:
        return " ".join([self.title, " ".join(self.tags), self.body])


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stop words; ``random_forest`` stays one token.

    Args:
        text: any text.
    """
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOP]


def parse_card(text: str, fallback_id: str) -> Card:
    """A card from markdown with an optional ``---`` header of ``key: value`` lines.

    Args:
        text: the file's content.
        fallback_id: the id when the header names none (the file's stem).
    """
    header: dict[str, str] = {}
    body = text
    if text.startswith("---"):
        head, _, body = text[3:].partition("\n---")
        for line in head.strip().splitlines():
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
    return Card(id=header.get("id") or fallback_id, kind=header.get("kind", "note"),
                title=header.get("title", fallback_id), tags=header.get("tags", "").split(),
                families=_families(header.get("families", "")), body=body.strip())


def _families(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(" ")
        out[name] = float(weight) if weight else 0.0
    return out


def shipped_cards() -> list[Card]:
    """The cards that ship with hyperpilot."""
    folder = resources.files("hyperpilot.tools").joinpath("cards")
    return [parse_card(f.read_text(encoding="utf-8"), Path(f.name).stem)
            for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".md")]


def user_cards(folder: Path) -> list[Card]:
    """A user's notes (``.md`` and ``.txt`` files, searched recursively) as cards.

    Args:
        folder: the ``--knowledge`` folder.
    """
    if not folder.is_dir():
        raise DataError(f"--knowledge {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".md", ".txt"))
    cards = []
    for path in files:
        card = parse_card(path.read_text(encoding="utf-8", errors="replace"), f"user-{path.stem}")
        cards.append(card if card.id.startswith("user-") else card.model_copy(
            update={"id": f"user-{card.id}"}))
    return cards


class BM25:
    """Okapi BM25 over a fixed set of documents (id, text)."""

    def __init__(self, documents: list[tuple[str, str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.ids = [doc_id for doc_id, _ in documents]
        self.terms = [Counter(tokenize(text)) for _, text in documents]
        self.lengths = [sum(t.values()) for t in self.terms]
        self.mean_length = sum(self.lengths) / max(len(self.lengths), 1)
        frequency = Counter(term for terms in self.terms for term in terms)
        n = len(documents)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}
        self.k1, self.b = k1, b

    def score(self, query: str) -> list[float]:
        words = tokenize(query)
        return [self._score(words, i) for i in range(len(self.ids))]

    def _score(self, words: list[str], index: int) -> float:
        terms, length = self.terms[index], self.lengths[index]
        norm = self.k1 * (1 - self.b + self.b * length / max(self.mean_length, 1e-9))
        total = 0.0
        for word in words:
            count = terms.get(word, 0)
            if count:
                total += self.idf[word] * count * (self.k1 + 1) / (count + norm)
        return total

    def search(self, query: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` best (id, score) pairs with a positive score, best first.

        Args:
            query: the query text.
            k: how many to return at most.
        """
        ranked = sorted(zip(self.ids, self.score(query), strict=True), key=lambda p: -p[1])
        return [(doc_id, s) for doc_id, s in ranked[:k] if s > 0]
