"""The live view: a progress bar under the run's lines with trials done, time left against
the time limit and the best so far; plain lines where the output is not a terminal."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from rich.console import Console

from hyperpilot.pipelines.graph.state import Tick
from hyperpilot.pipelines.live import LiveView, wants_live


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120), out


def test_a_tick_shows_trials_done_time_left_and_the_best_so_far() -> None:
    console, out = terminal()
    started = time.time() - 30
    with LiveView(console, None, time.time()) as view:
        view.line("[tune] trial 3/12 lightgbm: 0.9100 in 0.4s; best 0.9300 linear")
        view.tick(Tick(3, 12, 0.93, "linear", "accuracy", started, 60.0))
        words = view.words()
        assert "3/12 trials" in words and "best accuracy 0.9300 (linear)" in words
        assert "of 60 s left" in words and int(words.split("  ")[1].split()[0]) in (29, 30)
        assert view.fraction() == pytest.approx(0.5, abs=0.02)  # time, further on than 3/12
        assert view.stage == "tuning"
        view.line("[verify] execution: pass")
        assert view.stage == "verifying"
    printed = out.getvalue()
    assert "[tune] trial 3/12 lightgbm" in printed and "[verify] execution: pass" in printed


def test_without_a_time_limit_the_bar_follows_the_trials() -> None:
    console, _ = terminal()
    view = LiveView(console, None, time.time())
    view.tick(Tick(9, 10, None, "", "rmse", time.time(), None))
    assert view.fraction() == pytest.approx(0.9)
    assert view.words().startswith("9/10 trials") and "left" not in view.words()
    view.tick(Tick(40, None, 3.2, "lightgbm", "rmse", time.time() - 5, 10.0))  # until the limit
    assert view.words().startswith("40 trials") and view.fraction() == pytest.approx(0.5, abs=0.05)


def test_only_a_terminal_gets_the_live_view() -> None:
    assert wants_live(Console(file=io.StringIO(), force_terminal=True))
    assert not wants_live(Console(file=io.StringIO()))


def run_command(out: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "hyperpilot.pipelines.cli", "run", "predict the species",
            "--data", "sklearn:iris", "--llm", "none", "--trials", "4", "--no-experience",
            "--out", str(out), *flags]


def test_a_run_in_a_terminal_shows_the_bar(tmp_path: Path) -> None:
    command = run_command(tmp_path / "live")
    child = pexpect.spawn(command[0], command[1:], encoding="utf-8", timeout=120,
                          dimensions=(40, 160), env={"TERM": "xterm", "PATH": "/usr/bin:/bin",
                                                     "HYPERPILOT_NO_NETWORK": "1"})
    child.expect(r"\d/4 trials .*best accuracy \d\.\d{4} \(\w+\)")
    child.expect("verification ok")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_run_piped_or_with_no_live_prints_plain_lines(tmp_path: Path) -> None:
    piped = subprocess.run(run_command(tmp_path / "piped"), capture_output=True, text=True,
                           timeout=300)
    assert piped.returncode == 0
    assert "\x1b[" not in piped.stdout and "[tune] trial 4/4" in piped.stdout
    command = run_command(tmp_path / "plain", "--no-live")
    child = pexpect.spawn(command[0], command[1:], encoding="utf-8", timeout=120,
                          env={"TERM": "xterm", "PATH": "/usr/bin:/bin"})
    text = child.read()
    child.close()
    assert child.exitstatus == 0 and "trials  " not in text and "[tune] trial 4/4" in text
