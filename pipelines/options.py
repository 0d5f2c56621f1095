"""``RunOptions``: every option of a run, its default and its check, in one place.

The command line, ``hyperpilot.run(...)``, the YAML run file and the chat all build one,
and the run folder keeps it (``options.json``), so a continued or resumed run goes on with
the options it was started with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hyperpilot.agents.tuner.executors import check_kind
from hyperpilot.tools.errors import TaskSpecError
from hyperpilot.tools.experience import default_store_path

# Trials of a run that names no trial count (and the first round of one tuned until the limit).
DEFAULT_TRIALS = 30


class RunOptions(BaseModel):
    """How a run is made; the task text and the data are not options, they are the run.

    ``experience`` is the experience store's path, or None for no store (its default is
    ``$XDG_DATA_HOME/hyperpilot/experience.sqlite``, resolved when the options are made, so
    a continued run writes to the store it read). ``llm`` is an LLM spec (``none``,
    ``openai:MODEL``, ``local[:MODEL]``, ``replay:PATH``), None for the environment's default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int | None = Field(None, ge=1, description="model trainings in all, each a "
                               "cross-validation; None: 30, or until the time limit when one is given")
    time_limit: float | None = Field(None, gt=0, description="wall seconds for the whole run")
    seed: int = Field(0, description="the random seed")
    llm: str | None = Field(None, description="the LLM spec; None: the environment's default")
    llm_budget: int = Field(0, ge=0, description="LLM calls the tuner may spend on LLAMBO parts")
    plans: int = Field(3, ge=1, description="plans run side by side")
    revisions: int = Field(2, ge=0, description="times verification may send the run back")
    halving: bool = Field(True, description="stop a clearly losing trial after 1-2 folds")
    refit_all: bool = Field(True, description="once the holdout has scored the model, refit "
                            "the shipped model on every row, holdout included, when time allows")
    experience: Path | None = Field(default_factory=default_store_path,
                                    description="the store of past runs; None for none")
    knowledge: Path | None = Field(None, description="a folder of the user's own notes")
    workers: int | None = Field(None, ge=1, description="trials trained at once; None: one "
                                "per plan (one when the tuner talks to an LLM)")
    executor: str = Field("auto", description="where trials train: auto (worker processes "
                          "with --time-limit or --workers, else this process), inprocess, "
                          "process, ray (a local Ray) or ray:ADDRESS (a Ray cluster)")

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, value: str) -> str:
        return check_kind(value.strip())

    @field_validator("experience", mode="before")
    @classmethod
    def _experience_switch(cls, value: Any) -> Any:
        """``True`` means the default store and ``False`` none, as ``--no-experience`` does."""
        if value is True:
            return default_store_path()
        return None if value is False else value

    @property
    def until_deadline(self) -> bool:
        """Whether tuning goes on until the time limit: a limit is given and no trial count."""
        return self.trials is None and self.time_limit is not None

    @property
    def planned_trials(self) -> int:
        """The trials the planner spreads over its plans (with ``until_deadline``, the first
        round; the best plan gets more while time is left)."""
        return DEFAULT_TRIALS if self.trials is None else self.trials

    @classmethod
    def of(cls, values: dict[str, Any]) -> RunOptions:
        """Options from keyword values, with a bad or unknown one as one ``TaskSpecError``
        line naming it the way the command line does (``--time-limit``)."""
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            raise TaskSpecError(describe_error(err)) from None

    def changed(self, **values: Any) -> RunOptions:
        """A copy with ``values`` replaced, checked like the original."""
        return RunOptions.of({**self.model_dump(), **values})


def flag(name: str) -> str:
    """The command-line spelling of an option: ``time_limit`` -> ``--time-limit``."""
    return "--" + name.replace("_", "-")


def describe_error(err: ValidationError) -> str:
    """The first problem of a validation error as one line: ``--trials must be at least 1, got 0``."""
    first = err.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "options"
    if first["type"] == "extra_forbidden":
        return f"unknown option '{name}'; the options are {', '.join(RunOptions.model_fields)}"
    limits = first.get("ctx") or {}
    messages = {"greater_than_equal": f"must be at least {limits.get('ge')}",
                "greater_than": "must be positive" if limits.get("gt") == 0
                else f"must be more than {limits.get('gt')}",
                "int_parsing": "expected a whole number", "int_from_float": "expected a whole number",
                "float_parsing": "expected a number", "bool_parsing": "expected true or false"}
    message = messages.get(first["type"], str(first["msg"]).removeprefix("Value error, "))
    return f"{flag(name)} {message}, got {first.get('input')!r}"


def default(name: str) -> Any:
    """An option's default, for help texts."""
    field = RunOptions.model_fields[name]
    return field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]


def load_options(path: Path) -> RunOptions:
    """The options saved in a run folder's ``options.json``."""
    try:
        return RunOptions.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as err:
        raise TaskSpecError(f"cannot read the run's options in {path}: "
                            f"{type(err).__name__}") from None
