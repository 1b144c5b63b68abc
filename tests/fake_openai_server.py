"""A small OpenAI-compatible HTTP server on 127.0.0.1 for adapter tests: scripted failures and an n it may ignore."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, *, ignore_n: bool = False, failures: list[int] | None = None,
                 model: str | list[str] = "fake-model",
                 delay_s: float = 0.0, stream_delay_s: float = 0.0, responder=None) -> None:
        # responder(body) -> the text of every choice (e.g. a right answer looked up from the prompt); None: the
        # scripted "The answer is {seed + i}" texts
        self.responder = responder
        self.stream_delay_s = stream_delay_s
        self.aborted = 0
        self.ignore_n = ignore_n
        self.failures = list(failures or [])  # status codes to answer with, in order, before succeeding
        self.models = [model] if isinstance(model, str) else list(model)  # what /models lists
        self.model = self.models[0]
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, text: str) -> None:
                """Server-sent events, one word a chunk (paced by stream_delay_s), then the usage and [DONE]; a
                client that closes the connection mid-stream is counted as an abort."""
                import time
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                words = text.split(" ")
                try:
                    for i, w in enumerate(words):
                        delta = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": server.model,
                                 "choices": [{"index": 0, "delta": {"content": w if i == 0 else " " + w},
                                              "finish_reason": "stop" if i == len(words) - 1 else None}]}
                        self.wfile.write(f"data: {json.dumps(delta)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(server.stream_delay_s)
                    usage = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": server.model,
                             "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": len(words),
                                                      "total_tokens": 10 + len(words),
                                                      "prompt_tokens_details": {"cached_tokens": 4}}}
                    self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    with server.lock:
                        server.aborted += 1

            def do_GET(self):
                if self.path.endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                                  "owned_by": "test"} for m in server.models]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    code = server.failures.pop(0) if server.failures else 200
                if code != 200:
                    self._send(code, {"error": {"message": f"scripted {code}", "type": "test"}})
                    return
                if server.delay_s:
                    import time
                    time.sleep(server.delay_s)
                n = 1 if server.ignore_n else body.get("n", 1)
                seed = body.get("seed") or 0
                if body.get("stream"):
                    self._stream(server.responder(body) if server.responder else
                                 f"Reasoning for seed {seed} choice 0. The answer is {seed}.")
                    return
                choices = []
                for i in range(n):
                    text = (server.responder(body) if server.responder else
                            f"Reasoning for seed {seed} choice {i}. The answer is {seed + i}.")
                    choice = {"index": i, "finish_reason": "stop"}
                    if self.path.endswith("/chat/completions"):
                        choice["message"] = {"role": "assistant", "content": text}
                        if body.get("logprobs"):
                            choice["logprobs"] = {"content": [
                                {"token": w, "logprob": -0.5, "bytes": None,
                                 "top_logprobs": [{"token": w, "logprob": -0.5, "bytes": None}]}
                                for w in text.split()]}
                    else:
                        choice["text"] = text
                    choices.append(choice)
                completion_tokens = sum(len(c.get("message", c).get("content", c.get("text", "")).split())
                                        for c in choices)
                self._send(200, {
                    "id": "x", "object": "chat.completion", "created": 0, "model": server.model, "choices": choices,
                    "usage": {"prompt_tokens": 10, "completion_tokens": completion_tokens,
                              "total_tokens": 10 + completion_tokens, "prompt_tokens_details": {"cached_tokens": 4}},
                })

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
