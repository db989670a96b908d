"""The one way commands print rich output: text from users and the registry is inert.

Reject reasons, mutelist reasons, tags, descriptions and registry messages reach the
terminal. Through rich, ``[/oops]`` in such text is markup (a MarkupError that crashed
``hygiene audit``) and an escape sequence is passed to the terminal as is. A
:class:`SafeConsole` treats every plain string as text: no markup, no emoji codes, no
highlighting, unsafe characters shown as escapes (``\\x1b``). Styling is done with
:class:`rich.text.Text` objects (:func:`styled`), which never parse their text.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from hygiene.text import escape_unsafe


class SafeConsole(Console):
    """A rich Console for which every ``str`` is plain text (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.update(markup=False, emoji=False, highlight=False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(escape_unsafe(text), **kwargs)


def styled(text: object, style: str) -> Text:
    """``text`` (never parsed as markup) in ``style``."""
    return Text(escape_unsafe(str(text)), style=style)


__all__ = ["SafeConsole", "styled"]
