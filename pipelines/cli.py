"""The ``hyperpilot`` command line: ``run``, ``resume``, ``chat``, ``predict``, ``report``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from hyperpilot.agents.llm import install_log_redaction, redact
from hyperpilot.agents.llm.tied import Terminated, interrupt_on_termination
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.options import DEFAULT_TRIALS, RunOptions, default, flag
from hyperpilot.tools.errors import HyperpilotError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"hyperpilot: error: {message} (see 'hyperpilot --help')\n")


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hyperpilot", description="From a sentence to a verified model.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="train and verify a model for a task written in words")
    run.add_argument("task", nargs="?", default=None,
                     help='e.g. "predict the species of iris flowers, optimise macro F1" '
                          "(leave out with --file)")
    run.add_argument("--data", default=None,
                     help="CSV or Parquet file, or sklearn:NAME (iris, wine, breast_cancer, "
                          "digits, diabetes)")
    run.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<task>-<time>)")
    run.add_argument("--llm", default=None,
                     help="none, openai:MODEL, local[:MODEL] or replay:PATH (default: an "
                          "OpenAI-compatible server when OPENAI_BASE_URL or OPENAI_API_KEY is set, "
                          "else local when the [local] extra is installed, else none)")
    run.add_argument("--trials", type=int, default=None,
                     help=f"trials in all (default {DEFAULT_TRIALS}; with --time-limit and no "
                          "--trials, tuning goes on until the time limit)")
    run.add_argument("--time-limit", type=float, default=None,
                     help="wall-clock seconds for the whole run, from start to report: a "
                          "trial still training at the limit is stopped (default: no limit)")
    run.add_argument("--seed", type=int, default=None, help=f"random seed (default {default('seed')})")
    run.add_argument("--file", type=Path, default=None,
                     help="a YAML run file of one or many tasks (see README); replaces TASK")
    run.add_argument("--parallel", type=_positive_int, default=1,
                     help="with --file: run this many tasks at once (default 1, in order)")
    run.add_argument("--experience", type=Path, default=None,
                     help="experience store of past runs (default: "
                          "$XDG_DATA_HOME/hyperpilot/experience.sqlite)")
    run.add_argument("--no-experience", action="store_true",
                     help="neither read nor write the experience store")
    run.add_argument("--knowledge", type=Path, default=None,
                     help="a folder of your own notes (.md, .txt) for the planner to retrieve")
    run.add_argument("--llm-budget", type=int, default=None,
                     help="LLM calls the tuner may spend on LLAMBO proposals, early trials "
                          f"first (default {default('llm_budget')}: classical Bayesian optimisation)")
    run.add_argument("--plans", type=int, default=None,
                     help="plans run side by side, the best ones getting more trials as "
                          f"evidence arrives (default {default('plans')}; fewer when --trials is small)")
    run.add_argument("--revisions", type=int, default=None,
                     help="times a failed verification may send the run back to the planner "
                          f"(default {default('revisions')})")
    run.add_argument("--no-halving", action="store_true",
                     help="run every fold of every trial (default: a trial clearly losing to "
                          "its family's earlier ones after 1-2 folds stops there, as PRUNED)")
    run.add_argument("--no-refit-all", action="store_true",
                     help="ship the model fitted on the training rows only (default: once the "
                          "holdout has scored it, it is refit on every row, holdout included)")
    _worker_flags(run)
    _live_flag(run)
    run.add_argument("--restart", action="store_true",
                     help="start over in an --out folder that holds a run which did not finish "
                          "(default: refuse, and say how to resume it)")
    resume = commands.add_parser("resume", help="go on with a run that was stopped or killed")
    resume.add_argument("run_dir", type=Path, help="the run folder of the stopped run")
    _worker_flags(resume)  # where its trials train may change; the rest of its options may not
    _live_flag(resume)
    chat = commands.add_parser("chat", help="a conversation: describe, run, ask, refine, predict")
    chat.add_argument("--data", default=None, help="CSV or Parquet file, or sklearn:NAME")
    chat.add_argument("--session", default=None,
                      help="resume the session with this ID, or attach a run folder (one that "
                           "'hyperpilot run' made) to a new session (default: a new session)")
    chat.add_argument("--llm", default=None, help="none, openai:MODEL or replay:PATH (as for run)")
    chat.add_argument("--trials", type=_positive_int, default=None,
                      help="trial budget of the session's runs (default 20)")
    chat.add_argument("--runs", type=Path, default=Path("runs"),
                      help="folder for sessions and their runs (default: runs)")
    _worker_flags(chat)
    predict = commands.add_parser("predict", help="predict new rows with a finished run")
    predict.add_argument("run_dir", type=Path, help="a run folder written by 'hyperpilot run'")
    predict.add_argument("--data", required=True, help="CSV or Parquet file of rows to predict")
    predict.add_argument("--output", type=Path, default=None,
                         help="CSV file to write (default: print CSV to standard output)")
    predict.add_argument("--force", action="store_true", help="overwrite an existing --output")
    predict.add_argument("--strict", action="store_true",
                         help="refuse rows whose numeric columns hold values that are not numbers "
                              "(default: read them as missing, with a warning per column)")
    report = commands.add_parser("report", help="draw a finished run's plots, report.md and "
                                                "report.html again from its folder")
    report.add_argument("run_dir", type=Path, help="a run folder written by 'hyperpilot run'")
    doctor = commands.add_parser("doctor", help="check the LLM a run would use, with one real call")
    doctor.add_argument("--llm", default=None, help="the --llm to check (default: as 'run' would)")
    _add_bench(commands)
    return parser


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="benchmarks of hyperpilot's parts")
    which = bench.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    tuner = which.add_parser("tuner", help="samplers side by side on the LLAMBO/Bayesmark tasks")
    tuner.add_argument("--quick", action="store_true",
                       help="2 datasets x 2 models x 2 seeds (a few minutes) instead of 5 x 5 x 5")
    tuner.add_argument("--methods", default=None,
                       help="comma-separated, e.g. tpe,gp,surrogate,optuna-tpe (default: all)")
    tuner.add_argument("--out", type=Path, default=Path("bench-tuner"),
                       help="folder for results.csv and summary.md (default: bench-tuner)")
    tuner.add_argument("--jobs", type=_positive_int, default=2, help="worker processes (default 2)")
    tuner.add_argument("--datasets", default=None, help="comma-separated subset of the datasets")
    tuner.add_argument("--models", default=None, help="comma-separated subset of rf,svm,dt,mlp-sgd,ada")
    tuner.add_argument("--seeds", type=_positive_int, default=None, help="run only the first N seeds")
    tuner.add_argument("--llm", default=None,
                       help="LLM for the 'llambo' method: openai:MODEL, local or replay:DIR_OR_FILE")
    tuner.add_argument("--llm-budget", type=int, default=None,
                       help="LLM calls per task for the LLM-assisted methods "
                            "(default 100; 8 for the local model)")


def _bench(args: argparse.Namespace) -> int:
    from hyperpilot.pipelines.bench.main import main as bench_main

    def names(text: str | None) -> list[str] | None:
        return [n.strip() for n in text.split(",") if n.strip()] if text else None

    narrow = {"datasets": names(args.datasets), "models": names(args.models), "seeds": args.seeds}
    try:
        return bench_main(args.quick, names(args.methods), args.out, args.jobs, args.llm,
                          args.llm_budget, narrow)
    except ValueError as err:
        raise HyperpilotError(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a bad argument already reported in one line
        return int(done.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="hyperpilot: %(levelname)s: %(message)s")
    install_log_redaction()  # no key reaches the terminal, a warning's text included
    interrupt_on_termination()  # SIGTERM unwinds like Ctrl-C: the local server is stopped
    if args.command == "doctor":
        from hyperpilot.pipelines.doctor import doctor

        return doctor(args.llm)
    try:
        if args.command == "chat":
            return _chat(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "resume":
            return _resume(args)
        if args.command == "report":
            return _report(args)
        return _run(args) if args.command == "run" else _predict(args)
    except HyperpilotError as err:
        print(f"hyperpilot: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as err:
        folder = getattr(args, "out", None) or getattr(args, "run_dir", None) or "DIR"
        print("hyperpilot: interrupted; the finished trials are kept in the run folder "
              f"(go on with `hyperpilot resume {folder}`)", file=sys.stderr)
        return 128 + err.signum if isinstance(err, Terminated) else EXIT_INTERRUPTED


def _worker_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--workers", type=int, default=None, metavar="K",
                         help="trials trained at once (default: one per plan); alone, in "
                              "local worker processes")
    command.add_argument("--executor", default=None, metavar="WHERE",
                         help="where trials train: process (local worker processes), ray (a "
                              "local Ray, with the [ray] extra), ray:ADDRESS (a Ray cluster) "
                              "or inprocess (default auto: worker processes with --time-limit "
                              "or --workers, else this process)")


def _live_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument("--no-live", action="store_true",
                         help="print the run's lines only, without the live progress bar "
                              "(which shows only in a terminal anyway)")


@contextlib.contextmanager
def _output(args: argparse.Namespace, limit: float | None,
            started: float) -> Iterator[tuple[Callable[[str], None], Any]]:
    """The run's ``progress`` and ``watch`` callbacks: in a terminal, a live view (lines
    above a progress bar); else plain lines."""
    from rich.console import Console

    from hyperpilot.pipelines.live import live_or_lines

    with live_or_lines(Console(), limit, started, live=not args.no_live) as callbacks:
        yield callbacks


def run_options(args: argparse.Namespace) -> RunOptions:
    """The ``RunOptions`` the flags give; a flag left out keeps the option's default."""
    given: dict[str, Any] = {name: getattr(args, name) for name in
                             ("trials", "time_limit", "seed", "llm", "llm_budget", "plans",
                              "revisions", "knowledge", "workers", "executor")
                             if getattr(args, name) is not None}
    if args.no_halving:
        given["halving"] = False
    if args.no_refit_all:
        given["refit_all"] = False
    if args.no_experience:
        given["experience"] = None
    elif args.experience is not None:
        given["experience"] = args.experience
    return RunOptions.of(given)


def _run(args: argparse.Namespace) -> int:
    from hyperpilot.pipelines.run import default_out_dir, process_started_at, run_task

    if args.file is not None or args.task is None:
        return _run_file(args)
    if args.parallel != 1:
        raise HyperpilotError("--parallel runs the tasks of a --file; one TASK runs alone")
    options = run_options(args)
    if args.data is None:
        raise HyperpilotError("no data given; pass --data FILE.csv or --data sklearn:NAME")
    out = args.out = args.out or default_out_dir(args.task)  # named if the run is interrupted
    started = process_started_at()
    try:
        with _output(args, options.time_limit, started) as (progress, watch):
            state = run_task(args.task, args.data, out, options, progress=progress,
                             started_at=started, restart=args.restart, watch=watch)
    except HyperpilotError:
        raise
    except Exception:  # an internal fault: one line for the user, the trace in a log
        return _internal_error(out)
    return _summarise(state, out)


def _resume(args: argparse.Namespace) -> int:
    from hyperpilot.pipelines.continue_run import WHERE_OPTIONS, resume_run

    try:
        where = {name: getattr(args, name) for name in WHERE_OPTIONS
                 if getattr(args, name) is not None}
        with _output(args, None, time.time()) as (progress, watch):
            state = resume_run(args.run_dir, progress=progress, where=where, watch=watch)
    except HyperpilotError:
        raise
    except Exception:
        return _internal_error(args.run_dir)
    return _summarise(state, args.run_dir)


def _report(args: argparse.Namespace) -> int:
    from hyperpilot.pipelines.report.rebuild import rebuild_report

    folder = rebuild_report(args.run_dir)
    print(f"report: {folder.report_html} and {folder.report} ({len(list(folder.plots.glob('*.png')))} "
          f"plots in {folder.plots})")
    return EXIT_OK


def _internal_error(out: Path) -> int:
    """One line for the user about a fault of hyperpilot's own, the traceback in the run
    folder's log."""
    err = sys.exc_info()[1]
    trace = redact(traceback.format_exc())
    folder = RunFolder(out)
    if folder.write_log(trace):
        where = f"traceback in {folder.log}"
    else:  # no run folder to put it in
        with tempfile.NamedTemporaryFile("w", prefix="hyperpilot-", suffix=".log",
                                         delete=False) as handle:
            handle.write(trace)
        where = f"traceback in {handle.name}"
    print(f"hyperpilot: internal error: {type(err).__name__}: {redact(str(err))} ({where})",
          file=sys.stderr)
    return EXIT_FAILED


def _run_file(args: argparse.Namespace) -> int:
    from hyperpilot.pipelines.batch import run_file, summary_table

    if args.file is None:
        raise HyperpilotError("no task given; pass TASK_TEXT --data SOURCE, or --file runs.yaml")
    if args.task is not None:
        raise HyperpilotError("give either TASK_TEXT or --file, not both")
    given = [flag(name) for name in ("data", "out", "llm", "time_limit", "trials", "seed",
                                     "llm_budget", "plans", "revisions", "experience", "knowledge",
                                     "workers", "executor")
             if getattr(args, name) is not None]
    given += [f"--{name}" for name in ("no-halving", "no-experience", "no-refit-all", "restart")
              if getattr(args, name.replace("-", "_"))]
    if given:
        raise HyperpilotError(f"with --file, set {', '.join(given)} in the file "
                              "(per task or under defaults:)")
    outcomes = run_file(args.file, parallel=args.parallel)
    print(summary_table(outcomes), flush=True)
    failed = [o.name for o in outcomes if o.status != "ok"]
    if failed:
        print(f"hyperpilot: error: {len(failed)} of {len(outcomes)} tasks failed: "
              f"{', '.join(failed)}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _chat(args: argparse.Namespace) -> int:
    from hyperpilot.pipelines.chat.repl import run_chat
    from hyperpilot.pipelines.continue_run import WHERE_OPTIONS

    given = {name: getattr(args, name) for name in WHERE_OPTIONS
             if getattr(args, name) is not None}
    return run_chat(args.data, args.session, args.llm, args.trials, args.runs,
                    options=RunOptions.of(given))


def _summarise(state: dict, out: Path) -> int:
    status = state.get("status", "ok")
    if status == "rejected":
        reasons = "; ".join(state["verification"]["request"]["reasons"])
        print(f"hyperpilot: error: request check failed: {reasons}", file=sys.stderr)
        return EXIT_USAGE
    hold, best = state["holdout"], state["best"]
    final = best.get("final") or {}
    name = (f"ensemble of {len(final['members'])} ({best['model']} best alone)"
            if final.get("kind") == "ensemble" else best["model"])
    score = final.get("cv_score", best["cv_score"])
    print(f"{name}: CV {hold['metric']} {score:.4f}, holdout "
          f"{hold['score']:.4f}; verification {status}; report: {out / 'report.html'} "
          f"(and report.md)")
    if status != "ok":
        failed = [n for n in ("request", "execution", "implementation")
                  if state["verification"][n]["status"] == "fail"]
        print(f"hyperpilot: error: verification failed ({', '.join(failed)}); see "
              f"{out / 'report.md'}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    from hyperpilot.pipelines.predict import (
        check_output,
        predict_rows,
        print_predictions,
        write_predictions,
    )

    check_output(args.output, args.force)
    predictions, warnings = predict_rows(args.run_dir, args.data, strict=args.strict)
    for line in warnings:
        print(f"hyperpilot: warning: {line}", file=sys.stderr)
    if args.output is None:
        print_predictions(predictions, sys.stdout)
    else:
        write_predictions(args.output, predictions)
        print(f"wrote {len(predictions)} predictions to {args.output}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
