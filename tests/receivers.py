"""Real receivers for notification tests: an HTTP server that records POSTs and can be told to fail, and an
SMTP server (aiosmtpd) that records the mail it is given."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class HttpRequest:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _parse_body(content_type: str, body: bytes) -> dict:
    """JSON bodies as themselves, form bodies as a dict of their fields, anything else as {"raw": text}."""
    if "application/x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    try:
        parsed = json.loads(body)
    except ValueError:
        return {"raw": body.decode(errors="replace")}
    return parsed if isinstance(parsed, dict) else {"raw": parsed}


class WebhookReceiver:
    """A real HTTP server on a free loopback port; ``fail_next`` answers that many requests with
    ``status_on_fail`` (503 unless told otherwise). Successful requests are answered with ``ok_body``
    (empty unless told otherwise; bot platforms answer e.g. ``{"errcode": 0}``)."""

    def __init__(self, path: str = "/hook/s3cr3t-token") -> None:
        self.received: list[dict] = []  # bodies of the accepted requests (JSON, or form fields)
        self.paths: list[str] = []  # their paths (with the query string)
        self.requests: list[HttpRequest] = []  # every request, accepted or failed, in full
        self.fail_next = 0
        self.status_on_fail = 503
        self.ok_body = b""
        self.hang_suffix: str | None = None  # requests whose path ends so are held unanswered, not recorded
        self.hanging = threading.Event()  # set once such a request has arrived
        self.release = threading.Event()
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.hang_suffix and self.path.endswith(receiver.hang_suffix):
                    receiver.hanging.set()
                    receiver.release.wait(30)
                    return
                with receiver._cond:
                    receiver.requests.append(HttpRequest(self.command, self.path, dict(self.headers), body))
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        code, answer = receiver.status_on_fail, b""
                    else:
                        receiver.received.append(_parse_body(self.headers.get("Content-Type", ""), body))
                        receiver.paths.append(self.path)
                        code, answer = 200, receiver.ok_body
                    receiver._cond.notify_all()
                self.send_response(code)
                self.send_header("Content-Length", str(len(answer)))
                if answer:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = "127.0.0.1"
        self.port = self.server.server_port
        self.path = path
        self.url = f"http://{self.host}:{self.port}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict]:
        """Block until at least n notifications arrived (or the timeout); return them."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.received) >= n, timeout)
            return list(self.received)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A loopback port nobody listens on at the moment of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on a free loopback port, without TLS, accepting AUTH PLAIN/LOGIN for
    ``user``/``password`` only; ``messages`` holds every accepted mail, parsed."""

    def __init__(self, user: str = "shouwang", password: str = "s3cr3t-pw") -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TO) of each accepted mail
        self.logins: list[str] = []  # user names that authenticated
        self._cond = threading.Condition()
        receiver = self

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            if ok:
                receiver.logins.append(user)
            return AuthResult(success=ok)

        class Handler:
            async def handle_DATA(self, server, session, envelope) -> str:
                message = email.message_from_bytes(envelope.original_content or envelope.content,
                                                   policy=email.policy.default)
                with receiver._cond:
                    receiver.messages.append(message)
                    receiver.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                    receiver._cond.notify_all()
                return "250 OK"

        self.host, self.port = "127.0.0.1", free_port()
        self.controller = Controller(Handler(), hostname=self.host, port=self.port, authenticator=authenticator,
                                     auth_require_tls=False)
        self.controller.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[EmailMessage]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= n, timeout)
            return list(self.messages)

    def close(self) -> None:
        self.controller.stop()


class TcpProxy:
    """Forwards a free loopback port to ``target``; ``cut()`` closes every connection and refuses new ones
    (accepts and closes at once) until ``restore()``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepting = True
        self.refused = 0
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.accepting:
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._conns.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self) -> None:
        self.accepting = False
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            self._drop(s)

    def restore(self) -> None:
        self.accepting = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.server.close()
