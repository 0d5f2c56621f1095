"""A stand-in for ``llama-server`` in tests: same command line, OpenAI chat API on 127.0.0.1.

``FAKE_LLAMA_BEHAVIOUR`` picks a failure to act out: ``ok`` (default), ``exit_on_start``,
``crash_on_chat`` (every process exits on its first chat request), ``crash_once:PATH``
(only while PATH does not exist; it is created first), ``ignore_term`` (ignores SIGTERM),
``reject_schema`` (HTTP 500 for json_schema requests, like llama-cpp-python).
``FAKE_LLAMA_REPLY`` is the reply text. ``/health`` answers 503 for the first 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BEHAVIOUR = os.environ.get("FAKE_LLAMA_BEHAVIOUR", "ok")
REPLY = os.environ.get("FAKE_LLAMA_REPLY", '{"answer": 5}')
STARTED = time.monotonic()


def _should_crash() -> bool:
    if BEHAVIOUR == "crash_on_chat":
        return True
    if BEHAVIOUR.startswith("crash_once:"):
        marker = Path(BEHAVIOUR.partition(":")[2])
        if not marker.exists():
            marker.write_text("crashed\n")
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/health":
            loading = time.monotonic() - STARTED < 0.3
            self._send(503 if loading else 200, {"status": "loading" if loading else "ok"})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _should_crash():
            print("fake llama-server: simulated crash", flush=True)
            os._exit(3)
        kind = (body.get("response_format") or {}).get("type")
        if BEHAVIOUR == "reject_schema" and kind == "json_schema":
            self._send(500, {"error": {"message": "json_schema response_format not supported"}})
            return
        prompt = sum(len(m.get("content", "")) // 4 for m in body["messages"])
        self._send(200, {
            "id": "fake", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": REPLY}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 7,
                      "total_tokens": prompt + 7},
        })


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    if BEHAVIOUR == "exit_on_start":
        print(f"error: failed to load model '{args.model}'", flush=True)
        sys.exit(1)
    if BEHAVIOUR == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"fake llama-server listening on {args.host}:{args.port}", flush=True)
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
