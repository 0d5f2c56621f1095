"""``hyperpilot doctor``: which LLM a run would use, and whether it really answers.

Each check prints one line; the exit status is 0 when the LLM a run would use works (or
none is chosen), 1 otherwise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from hyperpilot.agents.llm import LLM, default_llm_spec, make_llm, parse_llm_spec
from hyperpilot.agents.llm.local_models import DEFAULT_LOCAL_MODEL, cache_dir, lookup
from hyperpilot.agents.llm.local_server import find_server_binary
from hyperpilot.tools.errors import HyperpilotError

Say = Callable[[str], None]


class _Sum(BaseModel):
    answer: int


_PING = [{"role": "user", "content": 'What is 17 + 25? Reply with JSON: {"answer": <number>}.'}]


def doctor(spec: str | None, say: Say = print, env: Mapping[str, str] | None = None) -> int:
    """Print the checks for ``--llm spec`` (``None``: the default) and return the exit status."""
    env = os.environ if env is None else env
    chosen, why = (spec, "given with --llm") if spec else default_llm_spec(env)
    say(f"LLM: {chosen} ({why})")
    _torch(say)
    try:
        scheme, argument = parse_llm_spec(chosen, env)
        if scheme == "local":
            _engine_and_model(argument, say, env)
        if scheme == "none":
            say("agents: rule-based policies only; nothing to start")
            return 0
        llm, described = make_llm(chosen, env=env)
    except HyperpilotError as err:
        say(f"problem: {err}")
        return 1
    assert llm is not None
    try:
        return _one_call(llm, described, say)
    finally:
        llm.close()


def _engine_and_model(argument: str, say: Say, env: Mapping[str, str]) -> None:
    say(f"llama-server: {find_server_binary(env)}")
    name = argument or DEFAULT_LOCAL_MODEL
    if name.endswith(".gguf"):
        say(f"model: {name} (a file given by path; its sha256 is not pinned)")
        return
    model = lookup(name)
    say(f"model: {model.name}, pinned sha256 {model.sha256}, {model.size:,} bytes; "
        f"cache {cache_dir(env) / 'models'}")


def _one_call(llm: LLM, described: str, say: Say) -> int:
    say(f"backend: {described}")
    began = time.perf_counter()
    try:
        answer = llm.complete(_PING, _Sum, agent="doctor", max_tokens=32)
    except HyperpilotError as err:
        say(f"problem: the LLM did not answer: {err}")
        return 1
    _server_line(llm.backend, say)
    usage = llm.usage.as_dict()
    say(f"one call: {usage['seconds']:.2f} s ({time.perf_counter() - began:.1f} s with any "
        f"server start), {usage['completion_tokens']} completion tokens, "
        f"{usage['tokens_per_second']} tokens/s, structured output: "
        f"{usage['structured_output'] or 'n/a'}; 17 + 25 = {answer.answer} "
        f"({'right' if answer.answer == 42 else 'wrong'})")
    return 0


def _server_line(backend: Any, say: Say) -> None:
    server = getattr(backend, "server", None)
    if server is None:
        return
    settings = server.settings
    say(f"server: started in {server.start_seconds:.1f} s on {server.base_url}, model "
        f"{settings.model}, {settings.threads} generation / {settings.batch_threads} prompt "
        f"threads, context {settings.context}")


def _torch(say: Say) -> None:
    try:
        import torch
    except ImportError:
        say("torch: not installed (the MLP family is skipped)")
        return
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    say(f"torch: {torch.__version__}, device {device}, {torch.get_num_threads()} threads")
