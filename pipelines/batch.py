"""Scripted runs from a YAML file: ``hyperpilot run --file runs.yaml [--parallel k]``.

Each task is validated on its own, so one broken task is reported (with its line and key)
while the others still run. Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hyperpilot.agents.llm import install_log_redaction
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.errors import HyperpilotError, TaskSpecError


class TaskOptions(RunOptions):
    """What ``defaults:`` may set for every task: the data and any run option."""

    data: str | None = None


class TaskEntry(TaskOptions):
    """One task of a run file: the options plus the task text, a name and a run folder."""

    task: str = Field(min_length=1)
    name: str | None = Field(None, pattern=r"^[\w.-]+$")
    out: str | None = None

    def run_options(self) -> RunOptions:
        return RunOptions.model_validate(self.model_dump(include=set(RunOptions.model_fields)))


class RunFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    tasks: list[Any] = Field(min_length=1)


class Outcome(BaseModel):
    """How one task of the file ended; ``status`` is ok, failed, rejected or invalid."""

    name: str
    status: str
    out: str = ""
    metric: str = ""
    cv_score: float | None = None
    holdout_score: float | None = None
    message: str = ""


def read_run_file(path: Path) -> tuple[list[TaskEntry | Outcome], yaml.Node]:
    """The file's tasks, each validated alone: a ``TaskEntry``, or an invalid ``Outcome``."""
    if not path.is_file():
        raise TaskSpecError(f"run file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        root, data = yaml.compose(text), yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise TaskSpecError(f"{path}{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if isinstance(data, list):
        data = {"tasks": data}  # a bare list of tasks; _child maps "tasks" to the list itself
    spec = _validated(path, root, RunFile, data, ())
    _validated(path, root, TaskOptions, spec.defaults, ("defaults",))
    return _entries(path, root, spec), root


def _validated(path: Path, root: yaml.Node, model: type[Any], data: Any,
               prefix: tuple[Any, ...]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise TaskSpecError(_located(path, root, prefix + tuple(first["loc"]),
                                     first["msg"])) from None


def _entries(path: Path, root: yaml.Node, spec: RunFile) -> list[TaskEntry | Outcome]:
    entries: list[TaskEntry | Outcome] = []
    seen: set[str] = set()
    names = [str((raw.get("name") if isinstance(raw, dict) else None) or f"task{i + 1}")
             for i, raw in enumerate(spec.tasks)]
    for index, (raw, name) in enumerate(zip(spec.tasks, names, strict=True)):
        if name in names[:index]:
            message = _located(path, root, ("tasks", index, "name"),
                               f"another task is already named '{name}'")
            entries.append(Outcome(name=name, status="invalid", message=message))
            continue
        try:
            entry = _entry(path, index, raw, spec.defaults)
        except ValidationError as err:
            first = err.errors()[0]
            message = _located(path, root, ("tasks", index, *first["loc"]), first["msg"])
            entries.append(Outcome(name=name, status="invalid", message=message))
            continue
        if entry.out in seen:
            message = _located(path, root, ("tasks", index, "out"),
                               f"another task already writes to {entry.out}")
            entries.append(Outcome(name=name, status="invalid", message=message))
            continue
        seen.add(str(entry.out))
        entries.append(entry)
    return entries


def _entry(path: Path, index: int, raw: Any, defaults: dict[str, Any]) -> TaskEntry:
    if not isinstance(raw, dict):
        return TaskEntry.model_validate(raw)  # raises, naming the expected mapping
    entry = TaskEntry.model_validate({**defaults, **raw})
    name = entry.name or f"task{index + 1}"
    return entry.model_copy(update={
        "name": name,
        "data": _relative(path, entry.data),
        "out": _relative(path, entry.out) or str(path.parent / "runs" / name),
        # The default experience store's path is absolute, so only a path the file gives moves.
        **{key: Path(str(_relative(path, str(value)))) for key in ("knowledge", "experience")
           if (value := getattr(entry, key)) is not None},
    })


def _relative(path: Path, value: str | None) -> str | None:
    if value is None or value.startswith("sklearn:") or Path(value).expanduser().is_absolute():
        return value
    return str(path.parent / value)


def _located(path: Path, root: yaml.Node, loc: tuple[Any, ...], message: str) -> str:
    """``FILE:LINE: key.path: message``, the line of the deepest node of ``loc`` that exists."""
    node, line = root, root.start_mark.line + 1 if root is not None else 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return f"{path}:{line}: {key or 'file'}: {message}"


def _child(node: yaml.Node | None, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(part):
                return value
        return None
    if isinstance(node, yaml.SequenceNode) and part == "tasks":
        return node
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


def run_entry(entry: TaskEntry, echo: bool = True) -> Outcome:
    """Run one validated task; every failure becomes an ``Outcome``, never an exception."""
    install_log_redaction()  # a worker process of --parallel has its own logging
    name = str(entry.name)
    progress: Callable[[str], None] = (lambda line: print(f"[{name}] {line}", flush=True)) \
        if echo else (lambda line: None)
    if entry.data is None:
        return Outcome(name=name, status="failed", out=str(entry.out), message="no data given")
    try:
        state = run_task(entry.task, entry.data, Path(str(entry.out)), entry.run_options(),
                         progress=progress)
    except HyperpilotError as err:
        return Outcome(name=name, status="failed", out=str(entry.out), message=str(err))
    except Exception as err:  # an internal fault must not stop the other tasks
        return Outcome(name=name, status="failed", out=str(entry.out),
                       message=f"internal error: {type(err).__name__}: {err}")
    return _outcome(name, str(entry.out), state)


def _outcome(name: str, out: str, state: dict[str, Any]) -> Outcome:
    status = state.get("status", "ok")
    if status == "rejected":
        reasons = "; ".join(state["verification"]["request"]["reasons"])
        return Outcome(name=name, status="rejected", out=out, message=reasons)
    failed = [n for n in ("request", "execution", "implementation")
              if state["verification"][n]["status"] == "fail"]
    return Outcome(name=name, status="ok" if status == "ok" else "failed", out=out,
                   metric=state["holdout"]["metric"], cv_score=state["best"]["cv_score"],
                   holdout_score=state["holdout"]["score"],
                   message=f"verification failed: {', '.join(failed)}" if failed else "")


def run_file(path: Path, parallel: int = 1, echo: bool = True) -> list[Outcome]:
    """Run every task of the file, in order or in ``parallel`` worker processes."""
    entries, _ = read_run_file(path)
    valid = [e for e in entries if isinstance(e, TaskEntry)]
    if parallel > 1 and len(valid) > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=parallel, mp_context=context) as pool:
            futures = {id(e): pool.submit(run_entry, e, echo) for e in valid}
            done = {key: future.result() for key, future in futures.items()}
    else:
        done = {id(e): run_entry(e, echo) for e in valid}
    return [done[id(e)] if isinstance(e, TaskEntry) else e for e in entries]


def summary_table(outcomes: list[Outcome]) -> str:
    """A plain-text table of the outcomes, one row per task, in file order."""
    header = ("task", "status", "metric", "cv", "holdout", "folder / reason")
    rows = [header] + [(o.name, o.status, o.metric or "-", _number(o.cv_score),
                        _number(o.holdout_score), o.message if o.status != "ok" else o.out)
                       for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
             + "  " + row[-1] for row in rows]
    ok = sum(o.status == "ok" for o in outcomes)
    return "\n".join(lines + [f"{ok} of {len(outcomes)} tasks succeeded"])


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
