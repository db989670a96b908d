"""What went wrong with a kubeconfig's exec credential plugin (``aws eks get-token`` …).

The official client runs the plugin when it loads the kubeconfig; when the plugin fails
(exits non-zero, prints no ``ExecCredential``) the client logs the error and goes on
without credentials, so the API server's ``401`` is all a read would report. The refusal
or alert the admins get names the plugin instead: its command (the program and its first
words, up to the first option), its exit status and the first line of what it wrote on
stderr, bounded to :data:`MAX_LINE` characters, with anything shaped like a secret (the
values of the plugin's ``env`` entries, long runs of token characters) masked.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

MAX_LINE = 200
MASK = "[…]"
# a token, key or signature: 24 or more characters of what base64/hex/JWTs are made of
_SECRETISH = re.compile(r"[A-Za-z0-9+/=_.-]{24,}", re.ASCII)
_RETURNED = re.compile(r"^exec: process returned (?P<status>-?\d+)\.?\s*(?P<stderr>.*)$", re.S)


class ExecFailures(logging.Handler):
    """While open, collects this thread's ``exec: …`` errors the kubernetes client logs
    (on the root logger, as ``logging.error``) instead of raising."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            text = record.getMessage()
            if text.startswith("exec:"):
                self.messages.append(text)

    def __enter__(self) -> ExecFailures:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        logging.getLogger().removeHandler(self)


def exec_failure(kubeconfig: Path | None, context: str, messages: list[str]) -> str | None:
    """``the kubeconfig's exec plugin `aws eks get-token` failed (exit status 255:
    <stderr's first line>)`` for the first of ``messages``; None when there is none."""
    if not messages:
        return None
    plugin = _plugin(kubeconfig, context)
    secrets = [str(e.get("value")) for e in plugin.get("env") or [] if isinstance(e, dict)]
    match = _RETURNED.match(messages[0])
    if match is not None:
        line = _first_line(match["stderr"], secrets)
        what = f"exit status {match['status']}" + (f": {line}" if line else ", nothing on stderr")
    else:
        what = _first_line(messages[0], secrets)
    return f"the kubeconfig's exec plugin `{_command(plugin)}` failed ({what})"


def _first_line(text: str, secrets: list[str]) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    for secret in secrets:
        if len(secret) >= 4:
            line = line.replace(secret, MASK)
    line = _SECRETISH.sub(MASK, line)
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def _command(plugin: dict[str, Any]) -> str:
    """The program and its leading words, up to the first option (``aws eks get-token``):
    what names the plugin, without the values it is given."""
    command = str(plugin.get("command") or "?")
    words = [os.path.basename(command)]
    for arg in plugin.get("args") or []:
        arg = str(arg)
        if arg.startswith("-") or "=" in arg or len(words) == 3:
            break
        words.append(os.path.basename(arg) if "/" in arg else arg)
    return _SECRETISH.sub(MASK, " ".join(words))[:MAX_LINE]


def _plugin(kubeconfig: Path | None, context: str) -> dict[str, Any]:
    """The ``exec`` entry of ``context``'s user ({} when it cannot be read)."""
    if kubeconfig is not None:
        paths = [kubeconfig]
    else:
        value = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
        paths = [Path(p) for p in value.split(os.pathsep) if p]
    contexts: dict[str, Any] = {}
    users: dict[str, Any] = {}
    for path in paths:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue
        for entry in document.get("contexts") or []:
            contexts.setdefault(entry.get("name"), entry.get("context") or {})
        for entry in document.get("users") or []:
            users.setdefault(entry.get("name"), entry.get("user") or {})
    user = users.get(contexts.get(context, {}).get("user"), {})
    plugin = user.get("exec") if isinstance(user, dict) else None
    return plugin if isinstance(plugin, dict) else {}
