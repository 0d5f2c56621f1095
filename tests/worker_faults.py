"""Trial functions for executor tests, importable by worker processes and Ray actors: each
takes the worker's training data first, as every trial function does."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any


def rows(data: Any) -> int:
    """The worker's training rows: a trial that does nothing but read them."""
    return len(data.y)


def die_once(data: Any, marker: str, seconds: float = 0.0) -> int:
    """Kill this worker the first time (leaving ``marker``), then answer as ``rows``."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(seconds)
    return len(data.y)


def die(data: Any) -> int:
    """Kill this worker every time."""
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def sleep_then_rows(data: Any, seconds: float) -> int:
    time.sleep(seconds)
    return len(data.y)


def fail(data: Any) -> int:
    raise ValueError("a trial's own error")


def visible_gpus(data: Any) -> str:
    """The GPUs this worker may use, as Ray gives them (CUDA_VISIBLE_DEVICES)."""
    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
