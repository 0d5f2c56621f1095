"""Resuming a run that was stopped or killed: every finished trial kept, none trained twice,
and the result the uninterrupted run ends with."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyperpilot.pipelines.continue_run import resume_run
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.artifacts import read_jsonl
from hyperpilot.tools.errors import DataError

TASK = "predict the species, optimise macro F1"
CLI = [sys.executable, "-m", "hyperpilot.pipelines.cli"]
TRIALS = 12


def _run_command(out: Path, *extra: str) -> list[str]:
    return [*CLI, "run", TASK, "--data", "sklearn:iris", "--trials", str(TRIALS), "--llm", "none",
            "--no-experience", "--out", str(out), *extra]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def _kill_after(out: Path, finished: int, sig: int = signal.SIGKILL,
                said: list[str] | None = None) -> list[dict]:
    """Start the run, send it ``sig`` once ``finished`` trials are in its journal; the journal
    then. ``said`` gets the run's exit status and standard error."""
    process = subprocess.Popen(_run_command(out), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 240
        while len(read_jsonl(out / "trials.jsonl")) < finished:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.05)
        os.kill(process.pid, sig)
    finally:
        _, err = process.communicate(timeout=60)
    if said is not None:
        said += [str(process.returncode), err]
    return read_jsonl(out / "trials.jsonl")


def _key(trial: dict) -> tuple:
    return (trial["number"], trial["plan_id"], trial["model"],
            json.dumps(trial["config"], sort_keys=True), trial["score"], trial["state"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    done = subprocess.run(_run_command(out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_a_run_killed_at_a_random_trial_resumes_losing_and_repeating_none(
        uninterrupted: Path, tmp_path: Path, seed: int) -> None:
    out = tmp_path / "run"
    at = random.Random(seed).randint(1, TRIALS - 2)
    journal = _kill_after(out, at)
    assert not (out / "result.json").exists()

    done = _cli("resume", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    final = read_jsonl(out / "trials.jsonl")
    numbers = sorted(t["number"] for t in final)
    assert numbers == list(range(TRIALS))  # all planned trials, each once
    kept = {_key(t) for t in final}
    assert all(_key(t) in kept for t in journal)  # no finished trial lost or changed
    trained = done.stdout.count("[tune] trial")
    assert trained <= TRIALS - len(journal) + 1  # the rest, and at most the one in flight again

    whole = read_jsonl(uninterrupted / "trials.jsonl")
    assert sorted(map(_key, final)) == sorted(map(_key, whole))
    mine, theirs = (json.loads((d / "result.json").read_text()) for d in (out, uninterrupted))
    assert mine["best"] == theirs["best"] and mine["holdout"] == theirs["holdout"]


def test_running_again_on_a_stopped_run_says_how_to_resume_and_touches_nothing(
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    journal = _kill_after(out, 2)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    again = subprocess.run(_run_command(out), capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.strip() == (f"hyperpilot: error: {out} holds a run that did not finish; "
                                    f"resume it with `hyperpilot resume {out}`, or pass "
                                    "--restart to start it over")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert read_jsonl(out / "trials.jsonl") == journal

    over = subprocess.run(_run_command(out, "--restart"), capture_output=True, text=True,
                          timeout=300)
    assert over.returncode == 0, over.stderr
    assert len(read_jsonl(out / "trials.jsonl")) == TRIALS


def test_resume_refuses_what_it_cannot_resume_in_one_line(uninterrupted: Path,
                                                          tmp_path: Path) -> None:
    finished = _cli("resume", str(uninterrupted), cwd=tmp_path)
    assert finished.returncode == 2
    assert finished.stderr.startswith(f"hyperpilot: error: the run in {uninterrupted} has "
                                      "finished; there is nothing to resume")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    other = _cli("resume", str(tmp_path / "notes"), cwd=tmp_path)
    assert other.returncode == 2 and other.stderr.count("\n") == 1
    assert "holds no hyperpilot run to resume" in other.stderr


def _stop_at(trial: int):
    def progress(line: str) -> None:
        if line.startswith("[tune] trial") and f"trial {trial}" in line.split(":")[0]:
            raise KeyboardInterrupt

    return progress


def test_a_stopped_run_resumes_in_process_and_its_pause_does_not_count(tmp_path: Path) -> None:
    import hyperpilot

    out = tmp_path / "run"
    began = time.time()
    with pytest.raises(KeyboardInterrupt):
        run_task(TASK, "sklearn:iris", out, RunOptions(llm="none", trials=6, time_limit=120,
                                                      experience=None),
                 progress=_stop_at(3), started_at=began)
    ran = time.time() - began
    with pytest.raises(DataError, match="did not finish; go on with it with hyperpilot.resume"):
        hyperpilot.load(out)
    time.sleep(2.0)  # the pause

    lines: list[str] = []
    result = hyperpilot.resume(out, progress=lines.append)
    said = next(line for line in lines if line.startswith("[resume]"))
    used = float(said.rsplit("; ", 1)[1].split(" s ")[0])
    assert used <= ran + 1.0, said  # the 2 s stopped are not on the run's clock
    assert result.verified and result.result["trials"] == 6
    assert sorted(t["number"] for t in read_jsonl(out / "trials.jsonl")) == list(range(6))


def test_a_resumed_run_may_train_elsewhere_but_keeps_its_other_options(tmp_path: Path) -> None:
    import hyperpilot
    from hyperpilot.tools.errors import TaskSpecError

    out = tmp_path / "run"
    options = RunOptions(llm="none", trials=6, experience=None, seed=4)
    with pytest.raises(KeyboardInterrupt):
        run_task(TASK, "sklearn:iris", out, options, progress=_stop_at(2))
    with pytest.raises(TaskSpecError, match="only workers, executor may change, not trials"):
        hyperpilot.resume(out, trials=20)
    result = hyperpilot.resume(out, workers=2, executor="process")
    assert result.verified and result.result["trials"] == 6
    assert RunFolder(out).load_options() == options.changed(workers=2, executor="process")


def test_an_out_path_that_is_a_file_is_one_line_even_with_an_llm(tmp_path: Path) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("mine\n")
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-not-used", "OPENAI_BASE_URL":
           "http://127.0.0.1:9/v1"}
    done = subprocess.run([*CLI, "run", TASK, "--data", "sklearn:iris", "--out", str(taken),
                           "--llm", "openai:some-model", "--no-experience"], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"hyperpilot: error: --out {taken} is a file, not a folder"
    assert taken.read_text() == "mine\n"
    under = subprocess.run([*CLI, "run", TASK, "--data", "sklearn:iris", "--out",
                            str(taken / "sub"), "--llm", "none"], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert under.returncode == 2 and "is a file, not a folder" in under.stderr


def test_the_chat_attaches_a_stopped_cli_run_and_resumes_it(tmp_path: Path) -> None:
    from rich.console import Console

    from hyperpilot.pipelines.chat.chat import Chat
    from hyperpilot.pipelines.chat.session import SessionStore

    out = tmp_path / "run"
    journal = _kill_after(out, 3)
    console = Console(record=True, width=200)
    chat = Chat(SessionStore(tmp_path / "runs", "attach"), None, console)
    try:
        chat.handle(f"/attach {out}")
        assert "did not finish: /resume goes on with it" in console.export_text()
        chat.handle("/resume")
        said = console.export_text()
        assert "Done:" in said and "verification ok" in said, said
        assert RunFolder(out).result.is_file()
        final = {_key(t) for t in read_jsonl(out / "trials.jsonl")}
        assert all(_key(t) in final for t in journal) and len(final) == TRIALS
    finally:
        chat.store.close()


def test_resume_run_is_refused_for_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds no hyperpilot run to resume"):
        resume_run(tmp_path)


def test_sigterm_stops_a_run_that_then_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    said: list[str] = []
    _kill_after(out, 3, signal.SIGTERM, said)
    code, err = said
    assert code == "143" and "Traceback" not in err
    assert err.strip().endswith(f"go on with `hyperpilot resume {out}`)")
    done = _cli("resume", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(t["number"] for t in read_jsonl(out / "trials.jsonl")) == list(range(TRIALS))
