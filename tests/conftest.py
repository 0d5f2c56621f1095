from __future__ import annotations

import os
import socket
import tempfile

import pytest

# Real LLM requests are refused by the client itself in every test.
os.environ["HYPERPILOT_NO_NETWORK"] = "1"
# Runs in tests keep their experience store out of the user's data folder.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="hyperpilot-tests-")

pytest_plugins = ["llm_fixtures"]

# A test that leaves --llm out must not start the local model the [local] extra installs.
os.environ["HYPERPILOT_LLM"] = "none"

_LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")
_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in _LOCAL_HOSTS and self.family != socket.AF_UNIX:
        raise RuntimeError(f"tests must not reach the network (tried {address!r})")
    return _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True)
def _own_experience_store(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    # Each test starts with no past runs unless it makes them itself.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))
