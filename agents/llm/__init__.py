"""The LLM room: the typed client, its transports, transcripts and the embedded local server.

``client`` holds ``LLM`` and ``make_llm``; ``openai_backend`` is the only module that imports
``openai``; ``transcript`` records and replays calls; ``secrets`` keeps keys out of replies,
records and logs (``install_log_redaction``); ``local_server`` and ``local_models``
run the embedded llama.cpp model and are imported only when a run asks for it.
"""

from __future__ import annotations

from hyperpilot.agents.llm.client import (
    LLM,
    ChatBackend,
    LLMClient,
    Usage,
    default_llm_spec,
    make_llm,
    parse_llm_spec,
)
from hyperpilot.agents.llm.openai_backend import OpenAIBackend
from hyperpilot.agents.llm.secrets import install_log_redaction, redact
from hyperpilot.agents.llm.transcript import ChatReply, ReplayBackend, Transcript

__all__ = [
    "LLM",
    "ChatBackend",
    "ChatReply",
    "LLMClient",
    "OpenAIBackend",
    "ReplayBackend",
    "Transcript",
    "Usage",
    "default_llm_spec",
    "install_log_redaction",
    "make_llm",
    "parse_llm_spec",
    "redact",
]
