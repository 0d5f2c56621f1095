"""The time limit as a promise: trials stopped at the deadline, LLM calls it pays for, and
tuning that goes on until the limit when no trial count is given."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from fakes import scripted_client
from pydantic import BaseModel

from hyperpilot.agents.llm.deadline import TimeBudgetExceeded, TimedLLM
from hyperpilot.agents.runner import AgentSpec, decide
from hyperpilot.agents.tuner.agent import TrainingData, evaluate_trial, run_trial
from hyperpilot.agents.tuner.workers import TrialPool, TrialStopped
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.data import profile_table
from hyperpilot.tools.evaluate import make_folds
from hyperpilot.tools.types import Budget, TaskSpec, TrialState
from hyperpilot.tools.zoo import get_model


def _setting(rows: int) -> tuple[TaskSpec, object, TrainingData]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"x{i}" for i in range(20)])
    y = pd.Series(np.where(X["x0"] + rng.normal(size=rows) > 0, "yes", "no"), name="label")
    frame = X.assign(label=y)
    task = TaskSpec(text="predict label", task_type="binary", target="label", metric="accuracy",
                    direction="maximize", budget=Budget(trials=5))
    data = TrainingData(X, y, make_folds(y.to_numpy(), "binary", 5, 0))
    return task, profile_table(frame, "label"), data


def test_a_trial_in_a_worker_scores_as_it_does_here() -> None:
    task, profile, data = _setting(300)
    space = get_model("linear").space("binary")
    config = get_model("linear").defaults("binary")
    here = run_trial("linear", space, [config], [], task, profile, data, 0)
    pool = TrialPool(data, workers=1)
    try:
        there = run_trial("linear", space, [config], [], task, profile, data, 0, executor=pool,
                          deadline=time.time() + 120)
    finally:
        pool.close()
    assert there.state == TrialState.COMPLETE
    assert there.fold_scores == here.fold_scores


def test_a_slow_trial_is_stopped_at_the_deadline_and_recorded() -> None:
    task, profile, data = _setting(20_000)
    family = get_model("random_forest")
    slow = {**family.defaults("binary"), "n_estimators": 500, "max_features": 1.0,
            "bootstrap": False}
    pool = TrialPool(data, workers=1)
    try:
        started = time.perf_counter()
        record = run_trial("random_forest", family.space("binary"), [slow], [], task, profile,
                           data, 0, executor=pool, deadline=time.time() + 2.0)
        waited = time.perf_counter() - started
        assert pool.stopped
        with pytest.raises(TrialStopped):  # the limit is the run's: nothing starts after it
            pool.run(evaluate_trial, None, task, 1, None, (), deadline=time.time() + 60)
    finally:
        pool.close()
    assert record.state == TrialState.FAIL
    assert record.tuner["stopped"] == "time limit"
    assert record.error.startswith("stopped at the time limit")
    # 500 unpruned trees on 16,000 rows take minutes on one core; stopped, it took seconds
    assert waited < 30


def test_a_trial_past_its_cap_is_stopped_alone_while_the_other_worker_trains_on() -> None:
    from concurrent.futures import ThreadPoolExecutor

    task, profile, data = _setting(20_000)
    forest, linear = get_model("random_forest"), get_model("linear")
    slow = {**forest.defaults("binary"), "n_estimators": 500, "max_features": 1.0,
            "bootstrap": False}
    pool = TrialPool(data, workers=2)
    try:
        with ThreadPoolExecutor(2) as threads:
            capped = threads.submit(run_trial, "random_forest", forest.space("binary"), [slow],
                                    [], task, profile, data, 0, executor=pool,
                                    deadline=time.time() + 300, cap=2.0)
            other = threads.submit(run_trial, "linear", linear.space("binary"),
                                   [linear.defaults("binary")], [], task, profile, data, 0,
                                   number=1, executor=pool, deadline=time.time() + 300)
            capped_record, other_record = capped.result(), other.result()
        assert not pool.stopped  # the run's deadline is not reached: only that trial stopped
        after = run_trial("linear", linear.space("binary"), [linear.defaults("binary")], [],
                          task, profile, data, 0, number=2, executor=pool,
                          deadline=time.time() + 300)  # the worker was replaced
    finally:
        pool.close()
    assert capped_record.state == TrialState.FAIL
    assert capped_record.tuner["stopped"] == "trial cap"
    assert capped_record.seconds < 30
    assert other_record.state == TrialState.COMPLETE and after.state == TrialState.COMPLETE


def test_the_trial_cap_follows_the_run_and_spares_the_baseline_forest() -> None:
    from types import SimpleNamespace

    from hyperpilot.pipelines.graph.schedule import trial_cap
    from hyperpilot.tools.types import TrialRecord

    def done(model: str, seconds: float) -> TrialRecord:
        return TrialRecord(number=0, model=model, config={}, score=0.5, fold_scores=[0.5],
                           seconds=seconds, state=TrialState.COMPLETE)

    timed, untimed = (SimpleNamespace(options=RunOptions(time_limit=60)),
                      SimpleNamespace(options=RunOptions()))
    history = [done("lightgbm", 3.0), done("linear", 1.0), done("lightgbm", 5.0)]
    assert trial_cap(history, "extra_trees", timed) == pytest.approx(12.0)  # 4 x median 3 s
    assert trial_cap(history[:2], "extra_trees", timed) == pytest.approx(9.0)  # 15% of 60 s
    assert trial_cap(history[:1], "extra_trees", timed) is None  # too few trials to judge
    assert trial_cap(history, "extra_trees", untimed) is None
    assert trial_cap(history, "random_forest", timed) is None  # the default forest runs out
    assert trial_cap(history + [done("random_forest", 9.0)], "random_forest",
                     timed) == pytest.approx(16.0)


def test_the_finish_reserve_holds_the_refits_of_the_likely_ensemble() -> None:
    from hyperpilot.pipelines.graph.schedule import FINISH_RESERVE_SECONDS, finish_reserve
    from hyperpilot.tools.types import TrialRecord

    def done(number: int, model: str, score: float, seconds: float, **tuner: object) -> TrialRecord:
        return TrialRecord(number=number, model=model, config={}, score=score,
                           fold_scores=[score] * 5, seconds=seconds, state=TrialState.COMPLETE,
                           tuner=dict(tuner))

    trials = [done(0, "lightgbm", 0.90, 8.0), done(1, "lightgbm", 0.80, 40.0),  # not its best
              done(2, "hist_gb", 0.89, 12.0), done(3, "random_forest", 0.88, 6.0, out_of_bag=True),
              done(4, "linear", 0.70, 100.0)]  # fourth family: not in the ensemble's reserve
    # one fit each: 8/4 + 12/4 for 5-fold trials, 6 for the out-of-bag forest's single fit
    ensemble = 2.0 + 3.0 + 6.0
    assert finish_reserve(trials, 50.0, "maximize", refits=2) == \
        pytest.approx(ensemble + FINISH_RESERVE_SECONDS)
    # the best trial's refits, when they take longer than one refit of the ensemble
    assert finish_reserve(trials, 50.0, "maximize", refits=6) == \
        pytest.approx(6 * 2.0 + FINISH_RESERVE_SECONDS)
    assert finish_reserve(trials[:1], 50.0, "maximize") == pytest.approx(10.0)  # 20% share
    assert finish_reserve(trials, 30.0, "maximize", refits=2) == pytest.approx(15.0)  # half at most


class Answer(BaseModel):
    value: int


AGENT = AgentSpec(name="probe", prompt="system.j2", output_type=Answer)


def test_an_llm_call_the_time_left_cannot_pay_for_is_not_made() -> None:
    llm = scripted_client([])  # a call would fail the strict fake: none may be made
    timed = TimedLLM(llm, deadline=time.time() + 5, limit=60, first_call=10)
    with pytest.raises(TimeBudgetExceeded, match="cannot pay"):
        timed.complete([{"role": "user", "content": "x"}], Answer, agent="probe")
    decision = decide(AGENT, {"agent": "probe"}, timed, accept=lambda a: a.value, rules=lambda: 7)
    assert decision.value == 7 and decision.source == "rules (fallback)"
    assert "time limit cannot pay" in decision.note


def test_llm_calls_stop_at_their_share_of_the_limit() -> None:
    llm = scripted_client([Answer(value=1)])
    lines: list[str] = []
    timed = TimedLLM(llm, deadline=time.time() + 600, limit=10, share=0.3, first_call=0.0,
                     progress=lines.append)
    assert timed.complete([{"role": "user", "content": "x"}], Answer).value == 1
    timed.spent = 2.9  # as if the first call had taken 2.9 of the 3 s share
    timed._by_agent[""] = [2.9]
    with pytest.raises(TimeBudgetExceeded, match="share"):
        timed.complete([{"role": "user", "content": "x"}], Answer)
    assert len(lines) == 1 and lines[0].startswith("[llm]")
    assert timed.usage is llm.usage  # the rest is the wrapped client's


class _SlowServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible server on 127.0.0.1 that takes 5 s to answer."""

    def do_POST(self) -> None:  # noqa: N802 (the handler's name is http.server's)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(5)
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop", "message": {
                               "role": "assistant", "content": '{"value": 1}'}}]}).encode()
        with contextlib.suppress(OSError):  # the client has stopped waiting
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_call_that_is_made_may_take_only_what_the_limit_leaves() -> None:
    from tenacity import wait_none

    from hyperpilot.agents.llm import LLM, OpenAIBackend, Transcript

    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{server.server_port}/v1",
                                api_key="sk-not-a-real-key", wait=wait_none())
        llm = LLM(backend, transcript=Transcript(None))
        # the share of a 5 s limit is 1.5 s: a first call is expected to fit, then cut there
        timed = TimedLLM(llm, deadline=time.time() + 600, limit=5, share=0.3, first_call=0.0)
        started = time.perf_counter()
        decision = decide(AGENT, {"agent": "probe"}, timed, accept=lambda a: a.value,
                          rules=lambda: 7)
        took = time.perf_counter() - started
    finally:
        server.shutdown()
    assert decision.value == 7 and decision.source == "rules (fallback)"
    assert "no answer within the time the limit leaves" in decision.note
    assert took < 3.5  # not the server's 5 s, nor four retried waits
    assert not llm.unavailable  # a reply cut by the limit does not turn the LLM off


def test_a_call_that_did_not_fit_last_time_is_not_made_this_time(tmp_path) -> None:
    from hyperpilot.agents.llm.deadline import CallTimes

    times = CallTimes(tmp_path / "llm_seconds.json", "local:slow-model")
    times.add("planner", 18.0)  # last run's plan call ran to its 18 s bound and was cut
    times.add("model", 4.0)
    llm = scripted_client([Answer(value=3)])  # only the model call may be made
    timed = TimedLLM(llm, deadline=time.time() + 600, limit=60, times=times)
    plan = decide(AgentSpec(name="planner", prompt="system.j2", output_type=Answer),
                  {"agent": "planner"}, timed, accept=lambda a: a.value, rules=lambda: 7)
    assert plan.source == "rules (fallback)" and "a planner call takes about 18 s here" in plan.note
    model = decide(AgentSpec(name="model", prompt="system.j2", output_type=Answer),
                   {"agent": "model"}, timed, accept=lambda a: a.value, rules=lambda: 7)
    assert model.source == "llm" and model.value == 3
    again = CallTimes(tmp_path / "llm_seconds.json", "local:slow-model")
    assert again.expected("planner") == 18.0 and len(json.loads(
        (tmp_path / "llm_seconds.json").read_text())["local:slow-model"]["model"]) == 2
    assert CallTimes(tmp_path / "llm_seconds.json", "other").expected("planner") is None
    (tmp_path / "llm_seconds.json").write_text("{not json")
    assert again.expected("planner") is None  # a damaged file is only a lost memory
    again.add("planner", 1.0)
    assert again.expected("planner") == 1.0


@pytest.mark.slow
def test_with_only_a_time_limit_tuning_goes_on_until_it(tmp_path) -> None:
    limit = 30.0
    started = time.time()
    state = run_task("predict species", "sklearn:iris", tmp_path / "run",
                     RunOptions(llm="none", time_limit=limit, experience=None))
    took = time.time() - started
    assert state["until_deadline"] is True
    assert state["stop_reason"].startswith("time limit")
    assert len(state["trials"]) > 30  # past the 30 trials a run without a limit plans
    assert state["status"] == "ok"
    assert took < limit * 1.05 + 3
