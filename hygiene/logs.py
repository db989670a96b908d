"""Logging: human-readable lines by default, JSON lines with ``--log-format json``.

Secrets never reach a log record: :class:`RedactingFilter` masks values of environment
variables whose names look secret (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``, ``*WEBHOOK*``)
in every message, whatever logger emitted it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

_SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|WEBHOOK|SESSION_TOKEN|ACCESS_KEY", re.I)


def _secret_values() -> list[str]:
    return [v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 6]


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in _secret_values():
            if secret in message:
                message = message.replace(secret, "***")
        record.msg, record.args = message, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted.

    A handler bound to the stream of its day keeps writing to it after it was replaced
    and closed (a command run in-process by a test runner or a notebook), and every
    later record prints "--- Logging error ---" in the middle of another command's output.
    """

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Configure the root logger once per process (stderr)."""
    handler = CurrentStderrHandler()
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
