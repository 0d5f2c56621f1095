"""``hyperpilot chat``: a conversation over the same graph and run folders as ``hyperpilot run``.

Slash commands (``/run``, ``/status``, ``/explain``, ``/more N``, ``/predict FILE``, ...) work
with or without an LLM; free text goes to the intent agent (its rules without an LLM).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hyperpilot.agents.explain import explain, explain_rules
from hyperpilot.agents.intent import Intent, find_family, route
from hyperpilot.agents.request import RequestDraft, parse_request, understand_request
from hyperpilot.agents.request_reading import summarise_table
from hyperpilot.pipelines.chat.records import run_facts
from hyperpilot.pipelines.chat.session import SessionStore
from hyperpilot.pipelines.chat.spec import preview, run_text, settled, spec_lines, target_of
from hyperpilot.pipelines.continue_run import checkpointed_trials, continue_run, resume_run
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.graph.intake import ASK_LLM_WHEN_UNSURE
from hyperpilot.pipelines.live import live_or_lines, print_line
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.predict import predict_rows, write_predictions
from hyperpilot.pipelines.run import checkpointed_state, run_task
from hyperpilot.tools.data import bundled_target, load_table
from hyperpilot.tools.errors import HyperpilotError

HELP = """\
Say what you want in words ("predict churn, optimise recall"), or use a command:
  /data SOURCE        use a CSV or Parquet file, or sklearn:NAME
  /run [TASK]         start the run (describing the task first, if given)
  /status             the task, and the state of the last run
  /explain [QUESTION] why the winner won, what was tried, which features matter
  /more N [FAMILY]    N more trials in the same run folder (FAMILY: e.g. hist_gb)
  /without COLUMN     search again without a column, in the same run folder
  /resume             go on with the last run, stopped or killed, where it stopped
  /attach RUN_DIR     work with a run made elsewhere (hyperpilot run, a script)
  /trials N           the trial budget of the next run
  /workers K [WHERE]  train K trials at once in the next runs; WHERE: process, ray, ray:ADDRESS
  /predict FILE [OUT] predict a file with the last run's model and save the predictions
  /help, /quit        this text; leave (Ctrl-D too). Ctrl-C stops a run, keeping its trials."""


class Chat:
    """One conversation: routes each line, acts, answers, and records the turn."""

    def __init__(self, store: SessionStore, llm: Any, console: Console,
                 options: RunOptions | None = None) -> None:
        """``options`` are the session's run options (its LLM spec among them); each run
        takes its trial budget from the session."""
        self.store, self.llm, self.console = store, llm, console
        self.options = options or RunOptions(llm=None if llm is not None else "none")
        self._frame: pd.DataFrame | None = None
        self._said: list[str] = []

    # --- the turn --------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Answer one line; False when the person wants to leave."""
        self._said = []
        try:
            keep_going = self._dispatch(line.strip())
        except HyperpilotError as err:
            self.say(f"That did not work: {err}", style="red")
            keep_going = True
        except KeyboardInterrupt:
            self._interrupted()
            keep_going = True
        self.store.save({"messages": [{"role": "you", "text": line},
                                      {"role": "hyperpilot", "text": "\n".join(self._said)}]})
        return keep_going

    def say(self, text: str, style: str | None = None) -> None:
        self._said.append(text)
        self.console.print(escape(text), style=style)

    def _dispatch(self, line: str) -> bool:
        if not line:
            return True
        if line.startswith("/"):
            return self._command(line)
        state = self.store.state
        intent = route(line, self._columns(), self._spec_ready(), bool(state.get("run_dir")),
                       state.get("asking"), self.llm).value
        return self._act(intent, line)

    def _act(self, intent: Intent, line: str) -> bool:
        actions: dict[str, Callable[[], Any]] = {
            "task": lambda: self.describe(line, intent.column),
            "correct": lambda: self.correct(line, intent.column),
            "run": self.run, "status": self.status, "help": lambda: self.say(HELP),
            "explain": lambda: self.answer(intent.question or line),
            "more": lambda: self.more(intent.trials or 10, intent.family),
            "drop": lambda: self.without(intent.column or ""),
            "predict": lambda: self.predict(intent.path or ""),
            "other": lambda: self.say("I did not follow that; /help lists what I can do."),
        }
        if intent.kind == "quit":
            return False
        actions[intent.kind]()
        return True

    def _command(self, line: str) -> bool:
        try:
            name, *args = shlex.split(line)
        except ValueError as err:
            raise HyperpilotError(f"cannot read that command: {err}") from None
        rest = line[len(name):].strip()
        commands: dict[str, Callable[[], Any]] = {
            "/help": lambda: self.say(HELP), "/data": lambda: self.use_data(rest),
            "/run": lambda: self.run(rest), "/status": self.status,
            "/explain": lambda: self.answer(rest) if rest else self.explain_all(),
            "/more": lambda: self.more(*_more_args(args)),
            "/without": lambda: self.without(rest), "/resume": self.resume,
            "/attach": lambda: self.attach(rest),
            "/trials": lambda: self.set_trials(args), "/workers": lambda: self.set_workers(args),
            "/predict": lambda: self.predict(*args[:2]),
        }
        if name in ("/quit", "/exit"):
            return False
        if name not in commands:
            raise HyperpilotError(f"unknown command {name}; /help lists them")
        commands[name]()
        return True

    # --- the task --------------------------------------------------------------------

    def use_data(self, source: str) -> None:
        if not source:
            raise HyperpilotError("say which data: /data FILE.csv or /data sklearn:NAME")
        self._frame = load_table(source)
        self.store.save({"data": source})
        columns = ", ".join(self._frame.columns)
        self.say(f"Loaded {source}: {len(self._frame)} rows; columns: {columns}.")

    def describe(self, text: str, column: str | None = None) -> None:
        state = self.store.state
        if "data" not in state:
            self.say("Which data should I use? Say /data FILE.csv (or sklearn:NAME).")
            return
        whole = state.get("text", "") if column is not None else \
            f"{state.get('text', '')} {text}".strip()
        draft = self._understand(whole, column)
        update: dict[str, Any] = {"asking": "", "text": whole, **settled(draft)}
        if draft.question is not None and draft.is_ml:
            # Two columns fit the words about equally: ask, as `hyperpilot run` exits 2 to.
            self.store.save(update | {"asking": "target"})
            self.say(f"{draft.question[0].upper()}{draft.question[1:]}. "
                     f"The columns are: {', '.join(self._columns())}.")
            return
        self.store.save(update)
        self.show_spec()

    def _understand(self, text: str, column: str | None) -> RequestDraft:
        """The reading a run would make of ``text`` (with ``column`` as the target when the
        person named it), so the chat and ``hyperpilot run`` settle the same task."""
        llm = self.llm if ASK_LLM_WHEN_UNSURE else None
        return understand_request(text, summarise_table(self.frame()), llm,
                                  declared=bundled_target(self.store.state["data"]),
                                  chosen=column).value

    def correct(self, text: str, column: str | None = None) -> None:
        draft = parse_request(text, self._columns(), self.llm).value
        update = settled(draft) | ({"target": column} if column else {})
        if not update:
            self.say("I could not tell what to change; name the target, the metric or the "
                     "positive class.")
            return
        self.store.save(update)
        self.show_spec()

    def set_trials(self, args: list[str]) -> None:
        if len(args) != 1 or not args[0].isdigit() or int(args[0]) < 1:
            raise HyperpilotError("usage: /trials N, with N at least 1")
        self.store.save({"trials": int(args[0])})
        self.show_spec()

    def set_workers(self, args: list[str]) -> None:
        """``/workers K [WHERE]``: the session's runs train K trials at once, in worker
        processes by default or where WHERE says (checked as ``--executor`` is)."""
        if len(args) not in (1, 2) or not args[0].isdigit() or int(args[0]) < 1:
            raise HyperpilotError("usage: /workers K [process|ray|ray:ADDRESS], with K at least 1")
        where = args[1] if len(args) == 2 else "auto"
        self.options.changed(workers=int(args[0]), executor=where)  # one line if WHERE is bad
        self.store.save({"workers": int(args[0]), "executor": where})
        self.say(f"The next runs train {args[0]} trial{'s' if int(args[0]) > 1 else ''} at once"
                 + ("." if where == "auto" else f", on {where}."))

    def run_options(self, trials: int) -> RunOptions:
        """The session's options for its next run: its trial budget and workers."""
        state = self.store.state
        return self.options.changed(trials=trials,
                                    workers=state.get("workers", self.options.workers),
                                    executor=state.get("executor", self.options.executor))

    def _spec(self) -> dict[str, Any] | None:
        state = self.store.state
        if "data" not in state:
            return None
        target = target_of(state, self.frame())
        return None if target is None else preview(state, self.frame(), target)

    def _spec_ready(self) -> bool:
        try:
            return self._spec() is not None
        except HyperpilotError:
            return False

    def show_spec(self) -> None:
        try:
            spec = self._spec()
        except HyperpilotError as err:
            self.store.save({"metric": "", "positive_class": ""})
            self.say(f"That does not fit the data ({err}); I went back to the default.")
            spec = self._spec()
        if spec is None:
            self.store.save({"asking": "target"})
            self.say(f"Which column should I predict? The columns are: "
                     f"{', '.join(self._columns())}.")
            return
        table = Table(title="The task I will run", show_header=False, box=None)
        for key, value in spec_lines(spec):
            table.add_row(key, escape(value))
        self.console.print(table)
        self._said.append("; ".join(f"{k}: {v}" for k, v in spec_lines(spec)))
        self.say("Say go (or /run) to start, or correct me in words.")

    # --- runs ------------------------------------------------------------------------

    def run(self, text: str = "") -> None:
        if text:
            self.describe(text)
        spec = self._spec()
        if spec is None:
            if not text:
                self.show_spec() if "data" in self.store.state else self.describe("")
            return
        out = self.store.next_run_dir()
        self.store.save({"run_dir": str(out), "runs": self.store.state.get("runs", 0) + 1})
        self.say(f"Running in {out} (Ctrl-C stops it and keeps finished trials).")
        options = self.run_options(spec["trials"])
        with self.live(options.time_limit) as (progress, watch):
            state = run_task(run_text(spec), self.store.state["data"], out, options,
                             progress=progress, frame=self.frame(), llm=self.llm, watch=watch)
        self._finished(state)

    def more(self, trials: int, family: str | None) -> None:
        run_dir = self._run_dir()
        self.say(f"Continuing {run_dir}" + (f" with {trials} more trials" if trials else "")
                 + (f" for {family}" if family else "") + ".")
        state = continue_run(run_dir, more=trials, family=family, progress=self.progress,
                             frame=self.frame(), llm=self.llm)
        self._finished(state)

    def resume(self) -> None:
        run_dir = self._run_dir()
        folder = RunFolder(run_dir)
        if not folder.is_stopped():
            self.say(f"The run in {run_dir} has finished; /more N adds trials to it.")
            return
        self.say(f"Resuming {run_dir} where it stopped.")
        with self.live(None) as (progress, watch):
            state = resume_run(run_dir, progress=progress, frame=self.frame(), llm=self.llm,
                               watch=watch)
        self._finished(state)

    def attach(self, path: str) -> None:
        """Make a run folder from outside the chat (``hyperpilot run``, a script) the
        session's run: its data is loaded, and /resume, /more, /explain work on it."""
        if not path:
            raise HyperpilotError("say which run folder: /attach RUN_DIR")
        run_dir = Path(path)
        folder = RunFolder(run_dir)
        if not folder.is_run():
            raise HyperpilotError(f"{run_dir} holds no hyperpilot run")
        values = checkpointed_state(folder) if folder.checkpoints.exists() else {}
        source = str(values.get("source", ""))
        if not source or source.startswith("DataFrame"):
            raise HyperpilotError(f"the run in {run_dir} has no data file to reload "
                                  f"({source or 'it stopped before reading its data'})")
        self.use_data(source)
        self.store.save({"run_dir": str(run_dir)})
        done = "finished" if folder.result.is_file() else "did not finish: /resume goes on with it"
        self.say(f"Attached {run_dir} ({values.get('text', '')!r}): "
                 f"{len(values.get('trials', []))} trials on record; it {done}.")

    def without(self, column: str) -> None:
        if not column:
            raise HyperpilotError("say which column to leave out: /without COLUMN")
        run_dir = self._run_dir()
        self.say(f"Searching again without {column}, in {run_dir}.")
        state = continue_run(run_dir, drop=[column], progress=self.progress, frame=self.frame(),
                             llm=self.llm)
        self._finished(state)

    def progress(self, line: str) -> None:
        print_line(self.console, line, "  ", "dim")

    def live(self, limit: float | None) -> Any:
        """A run's ``progress`` and ``watch``: the lines, dim and indented, above a live
        progress bar in a terminal."""
        return live_or_lines(self.console, limit, time.time(), indent="  ", style="dim")

    def _finished(self, state: dict[str, Any]) -> None:
        if state.get("status") == "rejected":
            reasons = "; ".join(state["verification"]["request"]["reasons"])
            self.say(f"The request check stopped the run: {reasons}", style="red")
            return
        best, hold = state["best"], state["holdout"]
        self.say(f"Done: {best['model']} with CV {hold['metric']} {best['cv_score']:.4f} and "
                 f"holdout {hold['score']:.4f} after {len(state['trials'])} trials; "
                 f"verification {state['status']}. Ask why, or /explain, /more N, /predict FILE.")

    def _interrupted(self) -> None:
        run_dir = self.store.state.get("run_dir")
        kept = checkpointed_trials(Path(run_dir)) if run_dir else 0
        self.say(f"Interrupted. {kept} finished trials are kept in {run_dir}; "
                 "/resume goes on where it stopped.", style="yellow")

    def _run_dir(self) -> Path:
        run_dir = self.store.state.get("run_dir")
        if not run_dir:
            raise HyperpilotError("there is no run yet; describe the task and say go")
        return Path(run_dir)

    # --- results ---------------------------------------------------------------------

    def answer(self, question: str) -> None:
        facts = run_facts(self._run_dir())
        decision = explain(question, facts, self.llm)
        self.say(decision.value)
        self.say(f"(from the run's records in {self._run_dir()}; answer by {decision.source})",
                 style="dim")

    def explain_all(self) -> None:
        self.say(explain_rules("", run_facts(self._run_dir())))

    def status(self) -> None:
        state = self.store.state
        if "data" not in state:
            self.say("No data yet: /data FILE.csv or /data sklearn:NAME.")
            return
        self.show_spec()
        run_dir = state.get("run_dir")
        if run_dir:
            done = "finished" if RunFolder(Path(run_dir)).result.exists() \
                else "not finished (interrupted?)"
            self.say(f"Last run: {run_dir}, {done}; {checkpointed_trials(Path(run_dir))} "
                     f"trials on record.")

    def predict(self, path: str = "", output: str | None = None) -> None:
        if not path:
            raise HyperpilotError("say which file: /predict FILE [OUTPUT]")
        run_dir = self._run_dir()
        target = Path(output) if output else _free_name(run_dir / f"predictions-{Path(path).stem}.csv")
        if target.exists():
            raise HyperpilotError(f"{target} exists; name another output file")
        predictions, lost = predict_rows(run_dir, path)
        for line in lost:
            self.say(f"Note: {line}.", style="yellow")
        write_predictions(target, predictions)
        self.say(f"Wrote {len(predictions)} predictions to {target}.")

    # --- data ------------------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = load_table(self.store.state["data"])
        return self._frame

    def _columns(self) -> list[str]:
        return list(self.frame().columns) if "data" in self.store.state else []


def _more_args(args: list[str]) -> tuple[int, str | None]:
    if not args or not args[0].isdigit() or int(args[0]) < 1:
        raise HyperpilotError("usage: /more N [FAMILY], with N at least 1")
    family = " ".join(args[1:]).lower() or None
    return int(args[0]), (find_family(family) or family) if family else None


def _free_name(path: Path) -> Path:
    """``path``, or ``path`` with -2, -3, ... before the suffix when it exists: never overwrite."""
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    return candidate
