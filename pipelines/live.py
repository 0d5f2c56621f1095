"""The live view of a run in a terminal: the run's lines scroll above a progress bar with
the trials done, the time left against ``--time-limit`` and the best score so far."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn
from rich.progress_bar import ProgressBar
from rich.table import Column, Table
from rich.text import Text

from hyperpilot.pipelines.graph.state import Tick

# The stage a progress line's tag names, as the bar says it.
STAGES = {"run": "starting", "resume": "resuming", "parse": "reading", "data": "reading",
          "plan": "planning", "tune": "tuning", "halving": "tuning", "select": "choosing",
          "holdout": "scoring", "verify": "verifying", "revise": "revising",
          "report": "reporting", "experience": "reporting"}
TAG = re.compile(r"^\[([a-z]+)\]")
BAR_WIDTH = 20


class _Status(ProgressColumn):
    """The bar and its words, drawn from the view at each refresh: the clock ticks between
    trials."""

    def __init__(self, view: LiveView) -> None:
        super().__init__(table_column=Column(no_wrap=True, overflow="ellipsis"))
        self.view = view

    def render(self, task: Any) -> Table:
        row = Table.grid(padding=(0, 1))
        row.add_column(no_wrap=True)
        row.add_column(no_wrap=True)
        row.add_column(no_wrap=True, overflow="ellipsis")
        row.add_row(self.view.stage, ProgressBar(total=1.0, completed=self.view.fraction(),
                                                 width=BAR_WIDTH),
                    Text(self.view.words(), style="cyan"))
        return row


class LiveView:
    """A progress bar under the run's printed lines; ``line`` and ``tick`` are the run's
    ``progress`` and ``watch`` callbacks. Use as a context manager around the run.

    The bar fills with the trials done of the budget or, under a time limit, with the time
    spent, whichever is further on (a run with a limit and no trial count tunes until it).
    """

    def __init__(self, console: Console, limit: float | None, started: float, *,
                 indent: str = "", style: str = "") -> None:
        self.console = console
        self.indent, self.style = indent, style
        self.limit, self.started = limit, started
        self.stage = STAGES["run"]
        self.done, self.total = 0, None
        self.best = ""
        self._lock = threading.Lock()
        self._bar = Progress(SpinnerColumn(), _Status(self), console=console, transient=True,
                             refresh_per_second=4)
        self._bar.add_task("run", total=None)

    def __enter__(self) -> LiveView:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def line(self, text: str) -> None:
        """Print one of the run's lines above the bar, and show the stage it belongs to."""
        found = TAG.match(text)
        with self._lock:
            if found and found.group(1) in STAGES:
                self.stage = STAGES[found.group(1)]
            print_line(self._bar.console, text, self.indent, self.style)

    def tick(self, tick: Tick) -> None:
        """A trial finished: trials done, the best so far, and the run's own clock."""
        with self._lock:
            self.started, self.limit = tick.started, tick.limit
            self.done, self.total = tick.done, tick.total
            self.stage = STAGES["tune"]
            self.best = ("" if tick.best is None
                         else f"best {tick.metric} {tick.best:.4f} ({tick.best_model})")

    def fraction(self) -> float:
        shares = [self.done / self.total] if self.total else []
        if self.limit:
            shares.append((time.time() - self.started) / self.limit)
        return min(1.0, max(shares, default=0.0))

    def words(self) -> str:
        trials = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        spent = max(0.0, time.time() - self.started)
        clock = (f"{spent:.0f} s" if self.limit is None
                 else f"{max(0.0, self.limit - spent):.0f} of {self.limit:.0f} s left")
        return "  ".join(p for p in (f"{trials} trials", clock, self.best) if p)


def print_line(console: Console, line: str, indent: str = "", style: str = "") -> None:
    """One of a run's lines, as it is: no markup, emoji codes or highlighting read into the
    text (a column's name is the data's own), never wrapped."""
    console.print(indent + line, markup=False, emoji=False, highlight=False, soft_wrap=True,
                  style=style)


def wants_live(console: Console) -> bool:
    """Whether a live view suits the output: a terminal that can redraw a line."""
    return console.is_terminal and not console.is_dumb_terminal


@contextlib.contextmanager
def live_or_lines(console: Console, limit: float | None, started: float, *, live: bool = True,
                  indent: str = "", style: str = "",
                  ) -> Iterator[tuple[Callable[[str], None], Callable[[Tick], None] | None]]:
    """A run's ``progress`` and ``watch`` callbacks: a live view in a terminal (unless not
    ``live``), else the lines alone, as a log or a pipe wants them."""
    if not (live and wants_live(console)):
        yield (lambda line: print_line(console, line, indent, style)), None
        return
    with LiveView(console, limit, started, indent=indent, style=style) as view:
        yield view.line, view.tick
