"""hyperpilot: from a sentence to a verified model.

The Python API lives in ``hyperpilot.pipelines.api``; this package re-exports it lazily, so
``import hyperpilot.tools`` (the reload worker, for one) does not pay for the whole graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyperpilot.pipelines.api import RunResult, load, resume, run

__version__ = "0.1.0"
__all__ = ["RunResult", "load", "resume", "run", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("RunResult", "load", "resume", "run"):
        from hyperpilot.pipelines import api

        return getattr(api, name)
    raise AttributeError(f"module 'hyperpilot' has no attribute {name!r}")
