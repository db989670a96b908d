"""Unsafe characters in text from people: what is refused and how it is shown.

A light module (``re`` only): the command line imports it at start-up.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, bidirectional embeddings, overrides
# and isolates: CR/LF header injection, terminal escape sequences, text that reads
# differently from what it is. Refused in every configuration string and in text given
# on the command line; shown escaped if they reach a terminal anyway (old store rows).
UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def check_text(value: str) -> str:
    """``value`` if it holds no unsafe character (see :data:`UNSAFE_CHARACTERS`)."""
    bad = UNSAFE_CHARACTERS.search(value)
    if bad:
        raise ValueError(f"control character U+{ord(bad.group()):04X} in {value[:40]!r}")
    return value


def escape_unsafe(text: str) -> str:
    """``text`` with every unsafe character written as an escape (``\\x1b``)."""
    return UNSAFE_CHARACTERS.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


__all__ = ["UNSAFE_CHARACTERS", "check_text", "escape_unsafe"]
