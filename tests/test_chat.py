"""``hyperpilot chat`` driven as a person would: the real program in a pseudo-terminal.

The LLM is a hand-written transcript played back with ``--llm replay:PATH`` (a subprocess
cannot use an in-process fake); what is asserted is what the screen shows and what the
session's folders hold.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pexpect
import pytest

PROMPT = "you> "


def customers(folder: Path) -> None:
    rng = np.random.default_rng(0)
    n = 240
    tenure, visits = rng.integers(1, 60, n), rng.poisson(4, n)
    logit = -0.08 * tenure - 0.3 * visits + 1.5
    frame = pd.DataFrame({"id": range(1000, 1000 + n), "tenure": tenure,
                          "spend": rng.normal(50, 15, n).round(2), "visits": visits,
                          "region": rng.choice(["north", "south", "east"], n),
                          "left": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)})
    frame.to_csv(folder / "customers.csv", index=False)
    frame.drop(columns=["left"]).head(5).to_csv(folder / "new.csv", index=False)


def spawn(folder: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "TERM": "dumb", "NO_COLOR": "1", "HYPERPILOT_NO_NETWORK": "1"}
    child = pexpect.spawn(sys.executable, ["-m", "hyperpilot.pipelines.cli", "chat", *args],
                          cwd=str(folder), env=env, encoding="utf-8", timeout=180,
                          dimensions=(60, 160))
    child.expect(PROMPT)
    return child


def say(child: pexpect.spawn, line: str) -> str:
    """Send one line and return what the screen showed until the next prompt, unwrapped."""
    child.sendline(line)
    child.expect(PROMPT)
    return " ".join(child.before.replace("\r", "").split())


def replay(path: Path, steps: list[tuple[str, dict]]) -> Path:
    lines = [json.dumps({"schema_name": name, "reply": json.dumps(reply)}) for name, reply in steps]
    path.write_text("\n".join(lines) + "\n")
    return path


CONVERSATION = [
    ("Intent", {"kind": "task"}),  # the request is read by the rules, as a run reads it
    ("Intent", {"kind": "task", "column": "left"}),
    ("Intent", {"kind": "correct"}),
    ("RequestDraft", {"is_ml": True, "metric": "recall"}),
    ("Intent", {"kind": "run"}),  # a run reads the settled request by the rules: no call
    ("PlansDraft", {"plans": [{"families": [{"name": "random_forest", "share": 1,
                                             "reason": "robust"}],
                               "rationale": "a small table suits a forest"}]}),
    ("SpaceDraft", {"narrow": []}),
    ("WarmStartDraft", {"configs": []}),
    ("Review", {"concerns": [], "summary": "fine"}),
    ("Intent", {"kind": "explain", "question": "why did it win, and can I trust it?"}),
    ("Answer", {"text": "{best_model} won with a mean CV {metric} of {cv_score}; on rows it "
                        "never saw it scored {holdout_score}, against {baseline} for a "
                        "trivial baseline."}),
    ("Intent", {"kind": "more", "trials": 2}),
    ("Review", {"concerns": [], "summary": "fine"}),
]


def test_a_conversation_from_a_vague_request_to_saved_predictions(tmp_path: Path) -> None:
    customers(tmp_path)
    script = replay(tmp_path / "llm.jsonl", CONVERSATION)
    child = spawn(tmp_path, "--data", "customers.csv", "--llm", f"replay:{script}",
                  "--trials", "3", "--session", "s1")
    asked = say(child, "I have customer data, can you build a model for it?")
    assert "Which column should be predicted" in asked and "region, left" in asked
    spec = say(child, "the one called left")
    assert "target left (binary)" in spec and "metric roc_auc (maximize), positive class 1" in spec
    corrected = say(child, "no, optimise recall for the positive class")
    assert "metric recall (maximize), positive class 1" in corrected
    ran = say(child, "looks good, go")
    assert "[plan] plan-1: random_forest x3 [llm]" in ran and "[tune] trial 3/3" in ran
    assert "verification ok" in ran
    run = tmp_path / "runs" / "chat-s1" / "run-1"
    result = json.loads((run / "result.json").read_text())
    assert result["task"]["target"] == "left" and result["task"]["metric"] == "recall"
    answer = say(child, "why did it win, and can I trust it?")
    assert (f"random_forest won with a mean CV recall of {result['best']['cv_score']:.4f}; on rows "
            f"it never saw it scored {result['holdout']['score']:.4f}") in answer
    assert "answer by llm" in answer
    more = say(child, "give it 2 more trials")
    assert "3 finished trials kept" in more and "[tune] trial 5/5" in more
    assert "[tune] trial 1/" not in more  # nothing re-run
    saved = say(child, "/predict new.csv")
    assert f"Wrote 5 predictions to {Path('runs/chat-s1/run-1/predictions-new.csv')}" in saved
    child.sendline("/quit")
    child.expect("Resume with: hyperpilot chat --session s1")
    child.expect(pexpect.EOF)
    predictions = pd.read_csv(run / "predictions-new.csv")
    assert len(predictions) == 5 and set(predictions["prediction"]) <= {0, 1}
    assert json.loads((run / "result.json").read_text())["trials"] == 5
    calls = (tmp_path / "runs" / "chat-s1" / "transcript.jsonl").read_text().splitlines()
    assert len(calls) == len(CONVERSATION)  # every scripted reply was used, none invented


def test_ctrl_c_keeps_trials_and_the_session_resumes_later(tmp_path: Path) -> None:
    child = spawn(tmp_path, "--data", "sklearn:wine", "--llm", "none", "--session", "s2")
    spec = say(child, "predict the cultivar")
    assert "target cultivar (multiclass)" in spec and "budget 20 trials" in spec
    assert "metric accuracy" in say(child, "/trials 5")
    child.sendline("go")
    child.expect(r"\[tune\] trial 2/5")
    child.sendintr()
    child.expect(PROMPT)
    stopped = " ".join(child.before.replace("\r", "").split())
    assert "Interrupted." in stopped and "finished trials are kept" in stopped
    kept = int(stopped.split("Interrupted. ")[1].split()[0])
    assert kept >= 1  # the trial on screen may have been cut short; finished ones are kept
    child.sendline("/quit")
    child.expect(pexpect.EOF)

    again = spawn(tmp_path, "--llm", "none", "--session", "s2")
    greeting = " ".join(again.before.replace("\r", "").split())
    assert "Resumed session s2" in greeting and "not finished (interrupted?)" in greeting
    assert f"{kept} trials on record" in greeting
    finished = say(again, "/resume")
    before, after = finished.split("[resume] ")[1].split(" finished after it kept")[0] \
        .split(" trials in the checkpoint and ")
    assert int(before) + int(after) == kept and "trial 5/5" in finished
    assert f"trial {kept}/5" not in finished and f"trial {kept + 1}/5" in finished
    again.sendline("/quit")
    again.expect(pexpect.EOF)
    trials = [json.loads(x) for x in
              (tmp_path / "runs" / "chat-s2" / "run-1" / "trials.jsonl").read_text().splitlines()]
    assert [t["number"] for t in trials] == list(range(5))
    history = (tmp_path / "runs" / "chat-s2" / "history").read_text()
    assert "predict the cultivar" in history and "/resume" in history


@pytest.mark.parametrize("line, expected", [
    ("/more", "usage: /more N [FAMILY]"),
    ("/explain", "there is no run yet"),
    ("/frobnicate", "unknown command /frobnicate"),
    ("/predict", "say which file"),
    ("/workers 0", "usage: /workers K"),
    ("/workers 2 dask", "--executor must be one of"),
])
def test_commands_misused_answer_in_one_line_and_the_chat_goes_on(line, expected,
                                                                   tmp_path) -> None:
    from rich.console import Console

    from hyperpilot.pipelines.chat.chat import Chat
    from hyperpilot.pipelines.chat.session import SessionStore

    store = SessionStore(tmp_path, "unit")
    console = Console(record=True, width=200)
    chat = Chat(store, None, console)
    assert chat.handle(line) is True
    assert expected in console.export_text()
    assert store.state["messages"][-1]["text"].startswith("That did not work")
    store.close()


def test_bad_data_for_chat_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run([sys.executable, "-m", "hyperpilot.pipelines.cli", "chat", "--data",
                           "nope.csv", "--llm", "none"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("data file not found: nope.csv")


def test_two_columns_that_fit_the_words_equally_are_asked_about_not_guessed(tmp_path: Path,
                                                                              monkeypatch) -> None:
    from rich.console import Console

    from hyperpilot.pipelines.chat.chat import Chat
    from hyperpilot.pipelines.chat.session import SessionStore

    rng = np.random.default_rng(0)
    pd.DataFrame({"sale_price": rng.normal(size=80), "list_price": rng.normal(size=80),
                  "rooms": rng.integers(1, 5, 80)}).to_csv(tmp_path / "homes.csv", index=False)
    monkeypatch.chdir(tmp_path)
    console = Console(record=True, width=200)
    chat = Chat(SessionStore(tmp_path / "runs", "ask"), None, console)
    chat.handle("/data homes.csv")
    chat.handle("predict the price, mean absolute error please")
    asked = console.export_text()
    assert "'sale_price' or 'list_price'" in asked and "The task I will run" not in asked
    assert chat.store.state["asking"] == "target" and "target" not in chat.store.state
    chat.handle("sale_price")
    spec = console.export_text()
    assert "sale_price (regression)" in spec and "mae (minimize)" in spec


def test_session_names_a_run_folder_made_by_hyperpilot_run_and_the_chat_attaches_it(
        tmp_path: Path) -> None:
    import subprocess

    out = tmp_path / "cli-run"
    done = subprocess.run([sys.executable, "-m", "hyperpilot.pipelines.cli", "run",
                           "predict the species", "--data", "sklearn:iris", "--trials", "3",
                           "--llm", "none", "--no-experience", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    child = spawn(tmp_path, "--llm", "none", "--session", str(out))
    greeting = " ".join(child.before.replace("\r", "").split())
    assert f"Attached {out}" in greeting and "it finished" in greeting
    assert "has finished; /more N adds trials" in say(child, "/resume")
    child.sendline("/quit")
    child.expect(pexpect.EOF)


def test_workers_in_the_chat_reach_the_next_run_and_outlive_the_session(tmp_path: Path) -> None:
    from rich.console import Console

    from hyperpilot.pipelines.chat.chat import Chat
    from hyperpilot.pipelines.chat.session import SessionStore
    from hyperpilot.pipelines.options import RunOptions

    store = SessionStore(tmp_path, "unit")
    console = Console(record=True, width=200)
    chat = Chat(store, None, console, RunOptions(llm="none", workers=3))
    assert chat.run_options(5).workers == 3  # from hyperpilot chat --workers 3
    chat.handle("/workers 2 process")
    assert "train 2 trials at once, on process" in console.export_text()
    store.close()
    again = SessionStore(tmp_path, "unit")
    options = Chat(again, None, Console(record=True), RunOptions(llm="none")).run_options(5)
    assert (options.workers, options.executor, options.trials) == (2, "process", 5)
    again.close()
