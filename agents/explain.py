"""The explain agent: answers about a finished run, grounded in the run's records.

The LLM never writes a number: it writes prose with ``{fact}`` placeholders, which are
filled from the measured facts; an answer that names an unknown fact or carries a number
of its own is rejected and the rule-based answer (built from the same facts) is given.
"""

from __future__ import annotations

import re
import string
from typing import Any

from pydantic import BaseModel

from hyperpilot.agents.runner import AgentSpec, Decision, decide


class Answer(BaseModel):
    """An answer whose numbers are ``{fact_name}`` placeholders."""

    text: str


EXPLAIN_AGENT = AgentSpec(name="explain", prompt="explain.j2", output_type=Answer)
_NUMBER = re.compile(r"(?<![\w{])\d+(?:\.\d+)?(?![\w}])")


def explain(question: str, facts: dict[str, Any], llm: object | None) -> Decision[str]:
    """An answer to ``question`` from ``facts`` (flat: name -> number or short text)."""
    inputs = {"question": question, "facts": facts}
    return decide(EXPLAIN_AGENT, inputs, llm,  # type: ignore[arg-type]
                  accept=lambda answer: fill(answer.text, facts),
                  rules=lambda: explain_rules(question, facts))


def fill(template: str, facts: dict[str, Any]) -> str:
    """``template`` with every ``{fact}`` replaced by its measured value.

    ``ValueError`` when it names a fact that does not exist or states a number itself.
    """
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    unknown = [name for name in names if name not in facts]
    if unknown:
        raise ValueError(f"the answer cites facts that do not exist: {unknown}")
    if _NUMBER.search(re.sub(r"\{[^}]*\}", "", template)):
        raise ValueError("the answer states a number instead of citing a fact")
    return template.format(**{name: show(facts[name]) for name in names})


def show(value: Any) -> str:
    """A fact as the person reads it: scores to four decimals."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


SECTIONS: dict[str, str] = {
    "winner": r"why|won|win|winner|best|chose|choice",
    "holdout": r"holdout|cv|cross|overfit|generali[sz]e|compare|trust|how (good|well)",
    "tried": r"tried|try|trials?|famil|search|what (else|did)",
    "features": r"feature|column|importan|matter|drive|depend",
}


def explain_rules(question: str, facts: dict[str, Any]) -> str:
    """The sections of the full explanation that the question asks about (all when unclear)."""
    wanted = [name for name, pattern in SECTIONS.items()
              if re.search(pattern, question, re.IGNORECASE)] or list(SECTIONS)
    return "\n".join(_SECTION_TEXT[name](facts) for name in wanted)


def _winner(facts: dict[str, Any]) -> str:
    runner = (f" The best other family, {facts['runner_up']}, reached {show(facts['runner_up_cv'])}."
              if facts.get("runner_up") else " No other family completed a trial.")
    return (f"{facts['best_model']} (trial #{facts['best_trial']}) won: the best mean "
            f"cross-validated {facts['metric']}, {show(facts['cv_score'])} "
            f"(± {show(facts['cv_std'])} across folds), with {facts['best_config']}.{runner}"
            + (f" The saved model is {facts['final_model']}." if facts.get("final_model") else ""))


def _holdout(facts: dict[str, Any]) -> str:
    gap = facts["holdout_score"] - facts["cv_score"]
    verdict = ("within the spread of the CV folds" if abs(gap) <= max(facts["cv_std"], 1e-12)
               else "outside the spread of the CV folds")
    return (f"On {facts['holdout_rows']} holdout rows never used in tuning it scored "
            f"{show(facts['holdout_score'])} against CV {show(facts['cv_score'])} (a difference of "
            f"{gap:+.4f}, {verdict}); a trivial baseline scores {show(facts['baseline'])}. "
            f"Verification: {facts['verification']}.")


def _tried(facts: dict[str, Any]) -> str:
    dropped = f" Columns left out: {facts['dropped']}." if facts.get("dropped") else ""
    return (f"{facts['trials']} trials ({facts['failed_trials']} failed): {facts['families']}. "
            f"Tuning stopped because: {facts['stop_reason']}.{dropped}")


def _features(facts: dict[str, Any]) -> str:
    return (f"Permutation importance on the holdout (loss in {facts['metric']} when a column "
            f"is shuffled): {facts['importance']}.")


_SECTION_TEXT = {"winner": _winner, "holdout": _holdout, "tried": _tried, "features": _features}
