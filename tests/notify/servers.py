"""Local stand-ins for the services notify talks to: an aiosmtpd SMTP server (plain,
STARTTLS, implicit TLS, with AUTH) and a Slack Web API / incoming-webhook HTTP server.

Tests reach them through the ``smtp_server`` / ``slack_server`` fixtures
(tests/conftest.py), which put the test in the integration lane."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- TLS


def self_signed_cert(directory: Path) -> tuple[Path, Path, str]:
    """(cert file, key file, cert PEM) for 127.0.0.1/localhost, valid one day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, pem


# --------------------------------------------------------------------------- SMTP


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpRecorder:
    host: str
    port: int
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    # called for each message before it is accepted (a test's clock: a slow relay)
    on_message: Callable[[], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        if self.on_message is not None:
            self.on_message()
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


@contextmanager
def start_smtp_server(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    users: dict[str, str] | None = None,
) -> Iterator[SmtpRecorder]:
    port = free_port()
    recorder = SmtpRecorder("127.0.0.1", port)

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            recorder.logins.append((user, password))
            if users and users.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": port}
    if starttls is not None:
        kwargs.update(tls_context=starttls, require_starttls=True)
    if implicit_tls is not None:
        kwargs.update(ssl_context=implicit_tls, server_hostname="localhost")
    if users is not None:
        kwargs.update(authenticator=authenticate, auth_require_tls=starttls is not None)
    controller = Controller(recorder, **kwargs)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


# --------------------------------------------------------------------------- Slack


@dataclass
class SlackCall:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: bytes


@dataclass
class SlackState:
    calls: list[SlackCall] = field(default_factory=list)
    rate_limit_first: dict[str, int] = field(default_factory=dict)  # method → Retry-After s
    users: dict[str, str] = field(default_factory=lambda: {"ana.costa@lsd.ufcg.edu.br": "U0ANA"})
    uploads: dict[str, bytes] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)
    base: str = ""

    def called(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]


def _handler(state: SlackState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            params: dict[str, Any] = {k: v[0] for k, v in parse_qs(url.query).items()}
            ctype = self.headers.get("Content-Type", "")
            if "json" in ctype and body:
                params.update(json.loads(body))
            elif "x-www-form-urlencoded" in ctype and body:
                params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
            method = url.path.rsplit("/", 1)[-1]
            if url.path.startswith("/upload/"):
                state.uploads[method] = body
                state.calls.append(SlackCall("upload", {}, dict(self.headers), body))
                return self._reply(200, b"OK - " + str(len(body)).encode())
            if url.path.startswith("/hooks/"):
                state.calls.append(SlackCall("webhook", params, dict(self.headers), body))
                return self._reply(200, b"ok")
            state.calls.append(SlackCall(method, params, dict(self.headers), body))
            if method in state.rate_limit_first and len(state.called(method)) == 1:
                return self._reply(
                    429,
                    {"ok": False, "error": "ratelimited"},
                    {"Retry-After": str(state.rate_limit_first[method])},
                )
            if method in state.fail:
                return self._reply(200, {"ok": False, "error": "channel_not_found"})
            return self._reply(200, self._answer(method, params))

        def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
            if method == "users.lookupByEmail":
                user = state.users.get(params.get("email", ""))
                return (
                    {"ok": True, "user": {"id": user}}
                    if user
                    else {"ok": False, "error": "users_not_found"}
                )
            if method == "conversations.open":
                return {"ok": True, "channel": {"id": "D" + params["users"]}}
            if method == "chat.postMessage":
                channel = params["channel"]
                channel_id = channel if not channel.startswith("#") else "C" + channel[1:].upper()
                return {"ok": True, "channel": channel_id, "ts": "1764331200.000100"}
            if method == "files.getUploadURLExternal":
                file_id = f"F{len(state.called(method)):04d}"
                return {
                    "ok": True,
                    "upload_url": f"{state.base}upload/{file_id}",
                    "file_id": file_id,
                }
            if method == "files.completeUploadExternal":
                files = (
                    json.loads(params["files"])
                    if isinstance(params["files"], str)
                    else params["files"]
                )
                return {
                    "ok": True,
                    "files": [{"id": f["id"], "title": f.get("title")} for f in files],
                }
            return {"ok": False, "error": "unknown_method"}

    return Handler


@contextmanager
def start_slack_server(state: SlackState | None = None) -> Iterator[SlackState]:
    state = state or SlackState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- webhooks


@dataclass
class WebhookPost:
    path: str
    headers: dict[str, str]
    payload: Any


@dataclass
class WebhookState:
    """A chat service's incoming webhook: answers ``status`` (the first ``fail_first``
    posts get 503) and records each JSON body."""

    status: int = 200
    fail_first: int = 0
    posts: list[WebhookPost] = field(default_factory=list)
    base: str = ""

    def url(self, name: str) -> str:
        return f"{self.base}hooks/{name}"


def _webhook_handler(state: WebhookState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.posts.append(WebhookPost(self.path, dict(self.headers), json.loads(body)))
            status = 503 if len(state.posts) <= state.fail_first else state.status
            answer = b"1" if status < 300 else b'{"error": "try again"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


@contextmanager
def start_webhook_server(status: int = 200, fail_first: int = 0) -> Iterator[WebhookState]:
    state = WebhookState(status=status, fail_first=fail_first)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _webhook_handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
