"""Pytest fixtures for LLM fakes; load with ``pytest_plugins = ["llm_fixtures"]``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from fakes import ScriptedLLM, Step

from hyperpilot.agents.llm import LLM, Transcript

ScriptedFactory = Callable[..., tuple[LLM, ScriptedLLM]]
_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Lets the teardown below skip its check when the test body already failed.
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Iterator[ScriptedFactory]:
    """Factory ``scripted(steps, **llm_kwargs) -> (LLM, ScriptedLLM)``.

    The test fails at teardown if any ScriptedLLM it made still has replies left.
    """
    fakes: list[ScriptedLLM] = []

    def make(steps: Iterable[Step], **kwargs: Any) -> tuple[LLM, ScriptedLLM]:
        fake = ScriptedLLM(steps)
        fakes.append(fake)
        kwargs.setdefault("transcript", Transcript(None))
        return LLM(fake, **kwargs), fake

    yield make
    if request.node.stash.get(_CALL_FAILED, False):
        return
    for fake in fakes:
        fake.assert_done()
