"""The API key stays out of every output: replies, logs, stderr, warnings and the run folder."""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from tenacity import wait_none

from hyperpilot.agents.llm import LLM, OpenAIBackend, Transcript, install_log_redaction, redact
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.errors import LLMUnavailableError

# Shaped like no known key, so only the environment variable can give it away.
KEY = "hp-echo-7Qx2Lm9Vb4Nc8Rt1Zk6Wd3"


class Note(BaseModel):
    note: str


class EchoServer(ThreadingHTTPServer):
    """An OpenAI-compatible server on 127.0.0.1 that answers the first ``failures``
    requests with HTTP 500 quoting the request's headers (so the client retries and logs),
    then with a completion whose text is ``reply(request body, headers)``; header names are
    lower case."""

    def __init__(self, reply: Callable[[dict[str, Any], dict[str, str]], str],
                 failures: int = 1) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.reply, self.failures = reply, failures
        self.headers_seen: list[dict[str, str]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Echo(BaseHTTPRequestHandler):
    server: EchoServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.headers_seen.append(headers)
        if len(self.server.headers_seen) <= self.server.failures:
            # Only the headers: a body that quotes the request's response_format reads to the
            # client as a server refusing that format, which it handles without a retry.
            self._send(500, {"error": {"message": f"upstream failed for {headers}"}})
            return
        text = self.server.reply(body, headers)
        self._send(200, {"id": "echo", "object": "chat.completion", "created": 0,
                         "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                   "total_tokens": 15}})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., EchoServer]]:
    """Starts an ``EchoServer`` and points ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` at it."""
    servers: list[EchoServer] = []

    def start(reply: Callable[[dict[str, Any], dict[str, str]], str],
              failures: int = 1) -> EchoServer:
        server = EchoServer(reply, failures)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stderr_logging() -> Iterator[None]:
    """Logging to stderr as the command line sets it up, then the redaction it installs."""
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    install_log_redaction()
    yield
    root.removeHandler(handler)


def _backend() -> OpenAIBackend:
    return OpenAIBackend("echo-model", wait=wait_none(), max_attempts=3)


def test_redact_hides_the_env_key_and_key_shaped_strings(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    text = redact(f"k={KEY}; sk-proj-abcdefghij0123; Authorization: Bearer tok.en; "
                  'api_key="Zq81Lm02Xc93Vb47"; key: 9f8e7d6c5b4a39281706; '
                  "https://bob:hunter2@llm.example/v1")
    for secret in (KEY, "sk-proj", "tok.en", "Zq81Lm02Xc93Vb47", "9f8e7d6c5b4a", "hunter2"):
        assert secret not in text
    assert text.count("[REDACTED]") == 6 and "@llm.example/v1" in text
    ordinary = "key: n_estimators; the key metric is f1; prompt_tokens: 123; monkey=bananas"
    assert redact(ordinary) == ordinary


def test_an_echoing_server_leaks_the_key_nowhere(echo, stderr_logging, caplog, capfd) -> None:
    server = echo(lambda body, headers: json.dumps(
        {"note": f"you sent {headers['authorization']} and {KEY}"}))
    caplog.set_level(logging.DEBUG)  # the HTTP clients' debug lines too
    llm = LLM(_backend(), transcript=Transcript(None))
    answer = llm.complete([{"role": "user", "content": "Say hi as JSON."}], Note)
    assert server.headers_seen[0]["authorization"] == f"Bearer {KEY}"  # it was echoed
    assert any("retrying in" in record.getMessage() for record in caplog.records)
    assert "[REDACTED]" in answer.note and KEY not in answer.note
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert KEY not in logged
    assert KEY not in capfd.readouterr().err
    assert KEY not in json.dumps(llm.transcript.records)


def test_the_error_after_the_last_retry_does_not_carry_the_key(echo, stderr_logging,
                                                               capfd) -> None:
    echo(lambda body, headers: "", failures=3)
    llm = LLM(_backend(), transcript=Transcript(None))
    with pytest.raises(LLMUnavailableError) as info:
        llm.complete([{"role": "user", "content": "hi"}], Note)
    chain = "".join(traceback.format_exception(info.value))  # what a traceback prints
    assert "HTTP 500" in str(info.value) and "after 3 attempts" in str(info.value)
    assert KEY not in chain
    assert KEY not in capfd.readouterr().err


def test_warnings_are_redacted(stderr_logging, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    # what warnings.showwarning and logging.captureWarnings print
    line = warnings.formatwarning(f"the server answered with {KEY}", UserWarning, "x.py", 1)
    assert "the server answered with [REDACTED]" in line and KEY not in line


def test_a_run_folder_never_holds_the_key(echo, stderr_logging, tmp_path: Path, capfd) -> None:
    def reply(body: dict[str, Any], headers: dict[str, str]) -> str:
        if '"title": "Review"' in json.dumps(body):  # the verifier's review: into the report
            return json.dumps({"concerns": [f"the request said {headers['authorization']}"],
                               "summary": f"all good; your key is {KEY}"})
        return "no JSON here"  # the other agents fall back to their rules

    echo(reply)
    out = tmp_path / "run"
    llm = LLM(_backend(), transcript=Transcript(out / "transcript.jsonl"), max_reasks=0)
    run_task("predict the species of iris flowers", "sklearn:iris", out,
             RunOptions(trials=2, seed=1, experience=None), llm=llm)
    report = (out / "report.md").read_text()
    assert "your key is [REDACTED]" in report  # the LLM's review made it into the report
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the key is in {path.name}"
    assert KEY not in capfd.readouterr().err
