"""Where every visible piece of a rendered report comes from.

The reports are rendered with instrumented parts:

- the translation functions wrap what they return in ``T`` marks and each placeholder's
  value in ``D`` marks, and record every message id the catalog does not have;
- Jinja's ``finalize`` wraps every other ``{{ … }}`` output in ``D`` marks (data);
- the formatter wraps its output (sizes, dates, money, numbers) in ``F`` marks.

Text outside any mark is the templates' own: it must hold no words. Text in ``D`` marks
must be data the reader knows (names, tags, digests, ids, commands, e-mail addresses,
errors from AWS), never a sentence. The marks are private-use characters, invisible in
the output and untouched by autoescaping and the CSS inliner.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from markupsafe import Markup

T_OPEN, T_CLOSE = "\ue000", "\ue001"
D_OPEN, D_CLOSE = "\ue002", "\ue003"
F_OPEN, F_CLOSE = "\ue004", "\ue005"
MARKS = {T_OPEN: T_CLOSE, D_OPEN: D_CLOSE, F_OPEN: F_CLOSE}
CLOSES = set(MARKS.values())
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
LETTER = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ]")
# templates whose only text is placeholders (a join of other messages)
NO_WORDS = re.compile(r"^[^A-Za-zÀ-ÖØ-öø-ÿ]*$")


def _mark_placeholders(text: str) -> str:
    return PLACEHOLDER.sub(lambda m: D_OPEN + m.group(0) + D_CLOSE, text)


@dataclass
class Recorder:
    """Translation functions that mark their output and note what the catalog lacks."""

    gettext_of: Callable[[str], str]
    ngettext_of: Callable[[str, str, int], str]
    known: set[str]
    missing: set[str] = field(default_factory=set)

    def _check(self, msgid: str) -> None:
        if msgid not in self.known and not NO_WORDS.match(PLACEHOLDER.sub("", msgid)):
            self.missing.add(msgid)

    def gettext(self, message: str) -> str:
        self._check(message)
        return T_OPEN + _mark_placeholders(self.gettext_of(message)) + T_CLOSE

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        self._check(singular)
        return T_OPEN + _mark_placeholders(self.ngettext_of(singular, plural, n)) + T_CLOSE


def finalize(value: Any) -> Any:
    """Mark a ``{{ … }}`` output as data unless it is already marked."""
    if value is None:
        return value
    text = str(value)
    if not text or text[0] in MARKS:
        return value
    marked = D_OPEN + text + D_CLOSE
    return Markup(marked) if isinstance(value, Markup) else marked


class MarkedFormatter:
    """Wraps a :class:`~hygiene.report.format.Formatter`: every output is F-marked."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value) or name in ("zone", "usd_month"):
            return value

        def marked(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            return F_OPEN + result + F_CLOSE if isinstance(result, str) else result

        return marked


# --------------------------------------------------------------------------- reading


@dataclass
class Chunk:
    kind: str  # "literal" | "T" | "D" | "F"
    text: str  # the visible text of this chunk without nested chunks
    depth: int


def chunks(text: str) -> Iterator[Chunk]:
    """Split marked text into chunks; nested marks end the enclosing chunk's text."""
    stack: list[str] = []
    current: list[str] = []

    def flush() -> Iterator[Chunk]:
        if current:
            kind = {T_OPEN: "T", D_OPEN: "D", F_OPEN: "F"}[stack[-1]] if stack else "literal"
            yield Chunk(kind, "".join(current), len(stack))
            current.clear()

    for char in text:
        if char in MARKS:
            yield from flush()
            stack.append(char)
        elif char in CLOSES:
            yield from flush()
            if not stack or MARKS[stack[-1]] != char:
                raise AssertionError(f"unbalanced marks near {''.join(current)[:40]!r}")
            stack.pop()
        else:
            current.append(char)
    yield from flush()
    if stack:
        raise AssertionError("unclosed mark")


def data_chunks(text: str) -> list[str]:
    """The full text of every outermost D chunk (with its nested parts)."""
    found, depth, start = [], 0, 0
    kinds: list[str] = []
    for i, char in enumerate(text):
        if char in MARKS:
            kinds.append(char)
            if char == D_OPEN and D_OPEN not in kinds[:-1] and F_OPEN not in kinds[:-1]:
                start, depth = i + 1, len(kinds)
        elif char in CLOSES:
            if kinds and kinds[-1] == D_OPEN and len(kinds) == depth:
                found.append(text[start:i])
                depth = 0
            kinds.pop()
    return found


def strip_marks(text: str) -> str:
    return re.sub("[\ue000-\ue005]", "", text)


class _Visible(HTMLParser):
    """Text nodes and visible attributes; block elements end lines."""

    BLOCKS = {"p", "div", "br", "tr", "td", "th", "li", "h1", "h2", "h3", "table", "ul",
              "ol", "title"}  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.attributes: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")
        for name, value in attrs:
            if name in ("title", "alt", "data-label") and value:
                self.attributes.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_html(html: str) -> tuple[str, list[str]]:
    parser = _Visible()
    parser.feed(html)
    return "".join(parser.parts), parser.attributes


# --------------------------------------------------------------------------- checks

TOKEN_SPLIT = re.compile(r"[\s,;()\[\]\"'“”«»]+")
COMMAND_WORDS = {"hygiene", "approve", "reject", "--namespace", "--rule", "--reason", "--expect",
                 "PROPOSAL_ID", "…", '"…"', "$"}  # fmt: skip


def untranslated_words(text: str) -> list[str]:
    """Literal template text (outside every mark) that holds words."""
    return [c.text.strip() for c in chunks(text) if c.kind == "literal" and LETTER.search(c.text)]


def unknown_data(text: str, allowed: set[str], verbatim: Iterable[str] = ()) -> list[str]:
    """D chunks that are not made of known data tokens (a sentence passed as data)."""
    whole = set(verbatim)
    bad = []
    for chunk in data_chunks(text):
        plain = strip_marks(_drop_formatted(chunk)).strip()
        if not plain or plain in whole or plain in allowed:
            continue
        for token in TOKEN_SPLIT.split(plain):
            token = token.strip(".:")
            if not token or not LETTER.search(token):
                continue
            if token in allowed or token in COMMAND_WORDS:
                continue
            bad.append(plain)
            break
    return bad


def _drop_formatted(chunk: str) -> str:
    """Remove F chunks and T chunks nested in a D chunk (they were checked as such)."""
    return re.sub("\ue004[^\ue005]*\ue005", " ", re.sub("\ue000[^\ue001]*\ue001", " ", chunk))


JOIN = re.compile(r"(?:[.!?:;,)]|[A-Za-zÀ-ÖØ-öø-ÿ])\Z")


def missing_spaces(text: str) -> list[str]:
    """Places where two sentences or words of the report's own text run together:
    a translated or literal chunk ending in a letter or punctuation directly followed by
    one starting with a letter ("registry.Recuperável", "GiB.Cada")."""
    problems = []
    pieces = [c for c in chunks(text) if c.text]
    for left, right in itertools.pairwise(pieces):
        if left.kind in ("D", "F") and right.kind in ("D", "F"):
            continue
        if left.kind in ("D", "F") or right.kind in ("D", "F"):
            # data next to text: only a sentence end directly followed by a word
            if re.search(r"[.!?]\Z", left.text) and LETTER.match(right.text):
                problems.append(left.text[-20:] + "|" + right.text[:20])
            continue
        if JOIN.search(left.text) and LETTER.match(right.text):
            problems.append(left.text[-20:] + "|" + right.text[:20])
    return problems
