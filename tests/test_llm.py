"""The LLM client: typed output, re-asks, transcripts, replay, the OpenAI transport."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fakes import FunctionLLM, ScriptedLLM, scripted_client
from pydantic import BaseModel, Field
from tenacity import wait_none

from hyperpilot.agents.llm import (
    LLM,
    ChatReply,
    OpenAIBackend,
    ReplayBackend,
    Transcript,
    Usage,
    make_llm,
    parse_llm_spec,
)
from hyperpilot.agents.llm.openai_backend import is_loopback
from hyperpilot.tools.errors import (
    BudgetExceeded,
    LLMOutputError,
    LLMUnavailableError,
    TaskSpecError,
)

pytest_plugins = ["llm_fixtures", "pytester"]

KEY = "sk-test-abcdefghijklmnopqrstuvwxyz"
ASK = [{"role": "system", "content": "You pick models."}, {"role": "user", "content": "Pick."}]


class Choice(BaseModel):
    model: str
    n_trials: int = Field(ge=1)


class Other(BaseModel):
    note: str


# --- LLM over a scripted backend ------------------------------------------------------


def test_valid_reply_is_parsed_with_schema_and_temperature_zero(scripted) -> None:
    llm, fake = scripted([{"model": "rf", "n_trials": 5}])
    assert llm.complete(ASK, Choice, agent="model") == Choice(model="rf", n_trials=5)
    messages, schema_name = fake.calls[0]
    assert schema_name == "Choice" and messages == ASK
    assert fake.settings[0] == {"temperature": 0}
    assert llm.usage.calls == 1 and llm.usage.invalid_replies == 0


def test_settings_override_the_default_temperature(scripted) -> None:
    llm, fake = scripted(['{"model": "rf", "n_trials": 1}'])
    llm.complete(ASK, Choice, temperature=0.7, max_tokens=50)
    assert fake.settings[0] == {"temperature": 0.7, "max_tokens": 50}


@pytest.mark.parametrize(
    "reply",
    [
        '```json\n{"model": "gbm", "n_trials": 3}\n```',
        '```\n{"model": "gbm", "n_trials": 3}\n```',
        'Sure! Here it is:\n{"model": "gbm", "n_trials": 3}\nGood luck.',
        'Answer: ```json\n{"model": "gbm", "n_trials": 3}``` done',
    ],
)
def test_json_in_fences_or_prose_is_parsed(scripted, reply: str) -> None:
    llm, _ = scripted([reply])
    assert llm.complete(ASK, Choice) == Choice(model="gbm", n_trials=3)


def test_invalid_reply_is_reasked_with_the_validation_error(scripted) -> None:
    llm, fake = scripted([{"model": "rf", "n_trials": 0}, {"model": "rf", "n_trials": 2}])
    assert llm.complete(ASK, Choice, agent="model").n_trials == 2
    reask = fake.calls[1][0]
    assert reask[: len(ASK)] == ASK
    assert reask[-2] == {"role": "assistant", "content": '{"model": "rf", "n_trials": 0}'}
    role, content = reask[-1]["role"], reask[-1]["content"]
    assert role == "user" and "n_trials" in content and "greater than or equal to 1" in content
    assert llm.usage.calls == 2 and llm.usage.invalid_replies == 1
    assert [r["valid"] for r in llm.transcript.records] == [False, True]


def test_always_invalid_raises_llm_output_error_with_raw(scripted) -> None:
    llm, _ = scripted(["no idea", "still none", '{"model": 3}'], max_reasks=2)
    with pytest.raises(LLMOutputError, match=r"^model: invalid output after 3 tries") as info:
        llm.complete(ASK, Choice, agent="model")
    assert info.value.raw == '{"model": 3}'
    assert llm.usage.invalid_replies == 3


def test_error_names_the_schema_when_no_agent_is_given(scripted) -> None:
    llm, _ = scripted(["nope"], max_reasks=0)
    with pytest.raises(LLMOutputError, match=r"^Choice: invalid output after 1 tries"):
        llm.complete(ASK, Choice)


def test_backend_unavailable_propagates_and_is_counted(scripted) -> None:
    llm, _ = scripted([LLMUnavailableError("server down")])
    with pytest.raises(LLMUnavailableError, match="server down"):
        llm.complete(ASK, Choice)
    assert llm.usage.failures == 1 and llm.usage.calls == 0
    assert llm.transcript.records[0]["failed"] is True


def test_token_budget_stops_calls_before_they_are_made(scripted) -> None:
    reply = ChatReply(text='{"model": "rf", "n_trials": 1}', prompt_tokens=80, completion_tokens=30)
    llm, fake = scripted([reply], token_budget=100)
    llm.complete(ASK, Choice)
    with pytest.raises(BudgetExceeded, match="110 of 100"):
        llm.complete(ASK, Choice)
    assert len(fake.calls) == 1
    assert llm.usage.as_dict()["prompt_tokens"] == 80


# --- transcripts and replay ----------------------------------------------------------


def test_transcript_writes_one_redacted_line_per_call(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-1234567890")
    path = tmp_path / "run" / "llm.jsonl"
    secret_ask = [{"role": "user", "content": f"key {KEY}, token tok-1234567890, Bearer abc.def"}]
    llm = scripted_client(
        ['{"model": "rf"}', '{"model": "rf", "n_trials": 4}'], transcript=Transcript(path)
    )
    llm.complete(secret_ask, Choice, agent="model")
    text = path.read_text()
    assert KEY not in text and "tok-1234567890" not in text and "abc.def" not in text
    assert "[REDACTED]" in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["call"] == 1 and second["call"] == 2
    assert first["agent"] == "model" and first["schema_name"] == "Choice"
    assert first["valid"] is False and "n_trials" in first["error"]
    assert second["valid"] is True and second["error"] == ""
    assert second["settings"] == {"temperature": 0}
    assert {"messages", "reply", "prompt_tokens", "completion_tokens", "seconds"} <= set(second)


def test_transcript_lines_are_on_disk_after_each_call(tmp_path: Path) -> None:
    path = tmp_path / "llm.jsonl"
    lines_seen: list[int] = []

    def reply(messages: list[dict[str, str]], schema_name: str) -> str:
        lines_seen.append(len(path.read_text().splitlines()) if path.exists() else 0)
        return '{"note": "ok"}'

    llm = LLM(FunctionLLM(reply), transcript=Transcript(path))
    for _ in range(3):
        llm.complete(ASK, Other)
    assert lines_seen == [0, 1, 2]


def _record_run(path: Path) -> list[BaseModel]:
    llm = scripted_client(
        ["not json", {"model": "rf", "n_trials": 2}, {"note": "done"}], transcript=Transcript(path)
    )
    return [llm.complete(ASK, Choice), llm.complete(ASK, Other)]


def test_replay_plays_a_recorded_run_exactly(tmp_path: Path) -> None:
    path = tmp_path / "llm.jsonl"
    recorded = _record_run(path)
    replay = ReplayBackend(path)
    llm = LLM(replay)
    assert [llm.complete(ASK, Choice), llm.complete(ASK, Other)] == recorded
    assert replay.remaining == 0
    assert llm.usage.calls == 3 and llm.usage.invalid_replies == 1


def test_replay_fails_on_divergence(tmp_path: Path) -> None:
    path = tmp_path / "llm.jsonl"
    _record_run(path)
    llm = LLM(ReplayBackend(path))
    with pytest.raises(LLMOutputError, match=r"diverged at call 1: expected 'Choice', got 'Other'"):
        llm.complete(ASK, Other)


def test_replay_fails_when_exhausted(tmp_path: Path) -> None:
    path = tmp_path / "llm.jsonl"
    _record_run(path)
    llm = LLM(ReplayBackend(path))
    llm.complete(ASK, Choice)
    llm.complete(ASK, Other)
    with pytest.raises(LLMOutputError, match="exhausted after 3 calls"):
        llm.complete(ASK, Other)


def test_replay_repeats_recorded_failures(tmp_path: Path) -> None:
    path = tmp_path / "llm.jsonl"
    llm = scripted_client([LLMUnavailableError("down")], transcript=Transcript(path))
    with pytest.raises(LLMUnavailableError):
        llm.complete(ASK, Choice)
    with pytest.raises(LLMUnavailableError, match="down"):
        LLM(ReplayBackend(path)).complete(ASK, Choice)


def test_replay_of_a_missing_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(LLMUnavailableError, match="cannot read replay transcript"):
        ReplayBackend(tmp_path / "absent.jsonl")


# --- OpenAIBackend against a fake transport ------------------------------------------


def _completion(content: str, usage: dict[str, int] | None = None,
                finish_reason: str = "stop") -> httpx2.Response:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": content},
            }
        ],
    }
    if usage is not None:
        body["usage"] = {**usage, "total_tokens": sum(usage.values())}
    return httpx2.Response(200, json=body)


def test_a_reply_cut_off_at_the_token_cap_is_not_asked_again(tmp_path: Path) -> None:
    server = Server(_completion('{"model": "rf", "n_tri', finish_reason="length"))
    llm = LLM(server.backend(), transcript=Transcript(tmp_path / "t.jsonl"))
    with pytest.raises(LLMOutputError, match="ran past the token cap and was cut off"):
        llm.complete(ASK, Choice, agent="model")
    assert len(server.requests) == 1 and llm.usage.invalid_replies == 1
    record = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert record["truncated"] is True
    replayed = LLM(ReplayBackend(tmp_path / "t.jsonl"), transcript=Transcript(None))
    with pytest.raises(LLMOutputError, match="cut off"):
        replayed.complete(ASK, Choice, agent="model")


def _error(status: int, message: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": {"message": message, "type": "error"}})


class Server:
    """Answers requests from a list of responses (or a function) and keeps the requests."""

    def __init__(self, *responses: httpx2.Response | Callable[[dict], httpx2.Response]) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        response = self.responses.pop(0)
        return response(body) if callable(response) else response

    def backend(self, **kwargs: Any) -> OpenAIBackend:
        client = httpx2.Client(transport=httpx2.MockTransport(self))
        kwargs = {"api_key": KEY, "wait": wait_none(), "http_client": client, **kwargs}
        return OpenAIBackend("test-model", base_url="http://llm.test/v1", **kwargs)


def _chat(backend: OpenAIBackend, schema: dict | None = None) -> ChatReply:
    return backend.chat(ASK, schema=schema, schema_name="Choice", settings={"temperature": 0})


def test_openai_success_sends_json_schema_and_reads_usage() -> None:
    server = Server(_completion('{"model": "rf"}', {"prompt_tokens": 12, "completion_tokens": 5}))
    schema = Choice.model_json_schema()
    reply = _chat(server.backend(), schema)
    assert reply == ChatReply(text='{"model": "rf"}', prompt_tokens=12, completion_tokens=5)
    sent = server.requests[0]
    assert sent["model"] == "test-model" and sent["messages"] == ASK and sent["temperature"] == 0
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Choice", "schema": schema, "strict": False},
    }
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"


def test_openai_without_schema_or_usage() -> None:
    server = Server(_completion("hello"))
    assert _chat(server.backend()) == ChatReply(text="hello")
    assert "response_format" not in server.requests[0]


def test_openai_client_is_made_on_first_call_only() -> None:
    backend = Server().backend()
    assert backend._client is None


def test_openai_rate_limit_is_retried() -> None:
    server = Server(_error(429, "slow down"), _completion("{}"))
    assert _chat(server.backend()).text == "{}"
    assert len(server.requests) == 2


def test_openai_connection_errors_are_retried_then_unavailable() -> None:
    calls = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        raise httpx2.ConnectError("connection refused", request=request)

    client = httpx2.Client(transport=httpx2.MockTransport(refuse))
    backend = OpenAIBackend(
        "m", base_url="http://llm.test/v1", http_client=client, wait=wait_none(), max_attempts=2
    )
    with pytest.raises(LLMUnavailableError, match="after 2 attempts"):
        _chat(backend)
    assert len(calls) == 2


def test_openai_auth_error_is_not_retried_and_hides_the_key() -> None:
    server = Server(_error(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(LLMUnavailableError) as info:
        _chat(server.backend())
    message = str(info.value)
    assert "HTTP 401" in message and "Incorrect API key" in message
    assert KEY not in message and "\n" not in message
    assert len(server.requests) == 1


def test_openai_server_errors_exhaust_attempts() -> None:
    server = Server(*[_error(500, "boom")] * 3)
    with pytest.raises(LLMUnavailableError, match=r"HTTP 500: boom \(after 3 attempts\)"):
        _chat(server.backend(max_attempts=3))
    assert len(server.requests) == 3


def test_openai_falls_back_to_schema_in_json_object_and_remembers() -> None:
    rejected = _error(400, "response_format type json_schema is not supported")
    server = Server(rejected, _completion('{"model": "a"}'), _completion('{"model": "b"}'))
    backend = server.backend()
    schema = Choice.model_json_schema()
    assert _chat(backend, schema).text == '{"model": "a"}'
    assert _chat(backend, schema).text == '{"model": "b"}'
    formats = [request["response_format"]["type"] for request in server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    assert server.requests[1]["response_format"]["schema"] == schema
    assert backend.dialect == "json_object+schema"
    hinted = server.requests[1]["messages"]
    assert hinted[0]["role"] == "system" and '"n_trials"' in hinted[0]["content"]
    assert hinted[1:] == ASK[1:]


def test_a_server_error_about_the_format_is_a_refusal_not_an_outage() -> None:
    # llama-cpp-python answers json_schema with HTTP 500 instead of 400.
    server = Server(_error(500, "json_schema response_format is not supported"),
                    _completion('{"model": "a"}'))
    backend = server.backend()
    assert _chat(backend, Choice.model_json_schema()).text == '{"model": "a"}'
    assert backend.dialect == "json_object+schema" and len(server.requests) == 2


def test_openai_walks_down_to_plain_json_when_every_format_is_refused() -> None:
    refusals = [_error(400, f"unsupported response_format {n}") for n in range(3)]
    server = Server(*refusals, _completion('{"model": "a"}'), _completion('{"model": "b"}'))
    backend = server.backend()
    assert _chat(backend, Choice.model_json_schema()).text == '{"model": "a"}'
    assert _chat(backend, Choice.model_json_schema()).text == '{"model": "b"}'
    assert backend.dialect == "plain"
    assert [r.get("response_format", {}).get("type") for r in server.requests] == [
        "json_schema", "json_object", "json_object", None, None]
    assert '"n_trials"' in server.requests[-1]["messages"][0]["content"]


def test_openai_other_bad_requests_are_not_retried() -> None:
    server = Server(_error(400, "messages: too long"))
    with pytest.raises(LLMUnavailableError, match="HTTP 400: messages: too long"):
        _chat(server.backend(), Choice.model_json_schema())
    assert len(server.requests) == 1


def test_network_guard_blocks_real_clients(monkeypatch) -> None:
    monkeypatch.setenv("HYPERPILOT_NO_NETWORK", "1")
    backend = OpenAIBackend("m", api_key=KEY)
    with pytest.raises(LLMUnavailableError, match="network access is disabled"):
        _chat(backend)
    assert backend._client is None


def test_network_guard_blocks_non_local_base_urls_and_allows_loopback(monkeypatch) -> None:
    monkeypatch.setenv("HYPERPILOT_NO_NETWORK", "1")
    remote = OpenAIBackend("m", api_key=KEY, base_url="http://10.1.2.3:8000/v1")
    with pytest.raises(LLMUnavailableError, match="network access is disabled"):
        _chat(remote)
    for url in ("http://127.0.0.1:8080/v1", "http://localhost:1/v1", "http://[::1]:9/v1"):
        assert OpenAIBackend("m", base_url=url)._get_client() is not None
    assert not is_loopback("http://127.0.0.1.example.test/v1")
    assert not is_loopback(None) and is_loopback("http://127.8.0.1/v1")


def test_missing_key_is_unavailable(monkeypatch) -> None:
    monkeypatch.delenv("HYPERPILOT_NO_NETWORK", raising=False)
    backend = OpenAIBackend("m", env={})
    with pytest.raises(LLMUnavailableError, match="no API key"):
        _chat(backend)


# --- make_llm ------------------------------------------------------------------------


def test_make_llm_none(monkeypatch) -> None:
    monkeypatch.setattr("hyperpilot.agents.llm.local_server.extra_installed", lambda: False)
    assert make_llm("none", env={}) == (None, "none (rule-based policies)")
    llm, description = make_llm(None, env={})
    assert llm is None and description.startswith("none (rule-based policies) [default: ")
    assert "[local] extra is not installed" in description


def test_default_llm_is_local_when_the_extra_is_installed(monkeypatch) -> None:
    monkeypatch.setattr("hyperpilot.agents.llm.local_server.extra_installed", lambda: True)
    assert parse_llm_spec(None, {}) == ("local", "")
    assert parse_llm_spec(None, {"OPENAI_API_KEY": KEY})[0] == "openai"
    assert parse_llm_spec(None, {"HYPERPILOT_LLM": "none", "OPENAI_API_KEY": KEY}) == ("none", "")
    assert parse_llm_spec("local:smollm2-135m", {}) == ("local", "smollm2-135m")


def test_make_llm_defaults_to_openai_when_the_env_names_a_server() -> None:
    llm, description = make_llm(None, env={"OPENAI_API_KEY": KEY})
    assert isinstance(llm, LLM)
    assert description.startswith("openai:gpt-4o-mini at https://api.openai.com/v1 [default: ")
    env = {"OPENAI_BASE_URL": "http://localhost:8000/v1", "HYPERPILOT_MODEL": "qwen"}
    assert make_llm(None, env=env)[1].startswith("openai:qwen at http://localhost:8000/v1")
    assert parse_llm_spec(None, {"OPENAI_API_KEY": KEY, "OPENAI_MODEL": "o"}) == ("openai", "o")


def test_make_llm_explicit_openai_model() -> None:
    env = {"OPENAI_BASE_URL": "http://localhost:8000/v1"}
    assert make_llm("openai:llama3", env=env)[1] == "openai:llama3 at http://localhost:8000/v1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt4", r"unknown --llm 'gpt4'; use none, openai:MODEL, local\[:MODEL\] or replay:PATH"),
        ("openai:", "needs a model"),
        ("replay", "needs a path"),
    ],
)
def test_make_llm_rejects_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(TaskSpecError, match=message):
        make_llm(spec, env={})


def test_make_llm_replay(tmp_path: Path) -> None:
    with pytest.raises(TaskSpecError, match="does not exist"):
        make_llm(f"replay:{tmp_path / 'absent.jsonl'}", env={})
    path = tmp_path / "llm.jsonl"
    _record_run(path)
    llm, description = make_llm(f"replay:{path}", env={})
    assert description == f"replay:{path}" and llm is not None
    assert llm.complete(ASK, Choice) == Choice(model="rf", n_trials=2)


# --- the fakes themselves ------------------------------------------------------------


def test_scripted_llm_is_strict() -> None:
    fake = ScriptedLLM([("Other", "{}"), "x"])
    with pytest.raises(AssertionError, match="asked for Choice, the script expected Other"):
        fake.chat(ASK, schema=None, schema_name="Choice", settings={})
    with pytest.raises(AssertionError, match="1 scripted reply left unused"):
        fake.assert_done()
    fake.chat(ASK, schema=None, schema_name="Choice", settings={})
    with pytest.raises(AssertionError, match="unexpected call #3"):
        fake.chat(ASK, schema=None, schema_name="Choice", settings={})


def test_scripted_llm_accepts_callables_and_models() -> None:
    llm = scripted_client([lambda messages: f'{{"note": "{len(messages)}"}}', Other(note="m")])
    assert llm.complete(ASK, Other).note == "2"
    assert llm.complete(ASK, Other).note == "m"
    llm.backend.assert_done()


def test_scripted_fixture_fails_a_test_that_leaves_replies(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["llm_fixtures"]')
    pytester.makepyfile(
        """
        def test_leaves_one(scripted):
            llm, _ = scripted(['{"a": 1}', '{"a": 2}'])

        def test_fails_itself(scripted):
            scripted(['{"a": 1}'])
            assert False
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*2 scripted replies left unused after 0 calls*"])


def test_after_an_outage_later_calls_fail_fast_without_the_backend() -> None:
    class Answer(BaseModel):
        value: int

    fake = ScriptedLLM([LLMUnavailableError("connection refused")])
    llm = LLM(fake, transcript=Transcript(None))
    for _ in range(2):
        with pytest.raises(LLMUnavailableError):
            llm.complete([{"role": "user", "content": "x"}], Answer)
    assert len(fake.calls) == 1 and llm.usage.failures == 1
    assert len(llm.transcript.records) == 1


def test_usage_reports_seconds_per_call_and_tokens_per_second() -> None:
    usage = Usage(calls=4, completion_tokens=100, seconds=2.0)
    report = usage.as_dict()
    assert report["seconds_per_call"] == 0.5 and report["tokens_per_second"] == 50.0
    assert Usage().as_dict()["seconds_per_call"] is None


def test_server_start_time_is_kept_out_of_call_time() -> None:
    class Starting:
        name = "starting"
        startup_seconds = 0.0

        def chat(self, messages, *, schema, schema_name, settings) -> ChatReply:
            time.sleep(0.05)
            self.startup_seconds = 10.0  # as if a server start had taken 10 s
            return ChatReply(text='{"model": "rf", "n_trials": 2}', completion_tokens=5)

    llm = LLM(Starting())
    llm.complete(ASK, Choice)
    assert llm.usage.server_start_seconds == 10.0 and 0 <= llm.usage.seconds < 1.0
