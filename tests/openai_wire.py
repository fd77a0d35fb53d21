"""A loopback server speaking the OpenAI chat completions wire format, SSE streaming included.

It answers structured-output requests with the tool call the graph expects and everything else with
a short cited answer; `mode` makes it slow or failing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

ANSWER_PIECES = ["Apple designs ", "and sells ", "consumer electronics. ", "[1]"]
DECISIONS: dict[str, dict[str, Any]] = {
    "RouteDecision": {"route": "kb", "reason": "a question about a company"},
    "GradeDecision": {"relevant": [1]},
    # no metadata condition: narrowing leaves retrieval over the whole KB
    "SQLDraft": {"sql": None},
}


class OpenAIWire:
    def __init__(self) -> None:
        self.mode = "ok"  # ok | slow | error
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.completions)

    async def completions(self, request: Request):
        body = await request.json()
        self.requests.append(body)
        if self.mode == "slow":
            await asyncio.sleep(3)
        if self.mode == "error":
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, status_code=500)
        tool = body["tools"][0]["function"]["name"] if body.get("tools") else None
        if not body.get("stream"):
            return JSONResponse(self._completion(body, tool))
        return StreamingResponse(self._chunks(body, tool), media_type="text/event-stream")

    def _completion(self, body: dict[str, Any], tool: str | None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(ANSWER_PIECES)}
        if tool:
            message = {"role": "assistant", "content": None, "tool_calls": [self._call(tool)]}
        return {
            "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def _chunks(self, body: dict[str, Any], tool: str | None) -> Iterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            payload = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": int(time.time()),
                       "model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(payload)}\n\n"

        if tool:
            yield chunk({"role": "assistant", "content": None, "tool_calls": [{"index": 0, **self._call(tool)}]})
            yield chunk({}, "tool_calls")
        else:
            yield chunk({"role": "assistant", "content": ""})
            for piece in ANSWER_PIECES:
                yield chunk({"content": piece})
            yield chunk({}, "stop")
        yield "data: [DONE]\n\n"

    @staticmethod
    def _call(tool: str) -> dict[str, Any]:
        return {"id": "call_1", "type": "function", "function": {"name": tool, "arguments": json.dumps(DECISIONS[tool])}}


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Runs `app` on a free loopback port for the duration; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
