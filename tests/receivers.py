"""Real receivers for notification tests: an HTTP server that records POSTs and can be told to fail."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """A real HTTP server on a free loopback port; ``fail_next`` answers that many requests with 503."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.paths: list[str] = []
        self.fail_next = 0
        self.status_on_fail = 503
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._cond:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        code = receiver.status_on_fail
                    else:
                        receiver.received.append(json.loads(body))
                        receiver.paths.append(self.path)
                        code = 200
                    receiver._cond.notify_all()
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/s3cr3t-token"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict]:
        """Block until at least n notifications arrived (or the timeout); return them."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.received) >= n, timeout)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
