"""Messages for people: an English template with ``%(name)s`` placeholders and its parameters.

Rules, the planner and the reports say things to people as a :class:`Message`. The
template is the gettext message id (marked with :func:`N_` so the catalog tools extract
it); the parameters are the data (names, counts, dates). English text is the template
filled in, which is what the JSON contract carries in ``message``; a report renders the
same template through its language's catalog (:mod:`hygiene.report.i18n`) with the same
parameters, so a Portuguese report says the finding in Portuguese.

A parameter may itself be a message (``{"template": …, "params": …}`` in JSON): it is
translated too. A list of messages is joined with ``"; "``; a list of plain values with
``", "``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Gettext = Callable[[str], str]
ValueFormatter = Callable[[Any], str]


def N_(message: str) -> str:
    """Mark ``message`` for extraction into the catalogs; it is translated where shown."""
    return message


def _identity(message: str) -> str:
    return message


def _plain(value: Any) -> str:
    return str(value)


@dataclass(frozen=True, slots=True)
class Message:
    """A template (the English msgid) and its parameters."""

    template: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, gettext: Gettext | None = None, value: ValueFormatter | None = None) -> str:
        """The text in the language of ``gettext`` (English without it); ``value``
        formats numbers for that language."""
        translate = gettext or _identity
        shown = value or _plain
        text = translate(self.template)
        if not self.params:
            return text
        return text % {
            key: render_value(param, translate, shown) for key, param in self.params.items()
        }

    def __str__(self) -> str:
        return self.render()

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "params": {k: _json(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        return cls(str(data["template"]), dict(data.get("params") or {}))


def message(template: str, **params: Any) -> Message:
    return Message(template, params)


def is_message(value: Any) -> bool:
    return isinstance(value, Message) or (
        isinstance(value, Mapping)
        and (isinstance(value.get("template"), str) or "message" in value)
    )


def as_message(value: Any) -> Message:
    """A :class:`Message` from a message, its JSON (``{"template", "params"}``, or a
    finding-like ``{"message", "message_template", "message_params"}``), or plain text (a
    template without parameters: translated when the catalog knows it, else shown as
    written)."""
    if isinstance(value, Message):
        return value
    if isinstance(value, Mapping):
        if isinstance(value.get("template"), str):
            return Message.from_json(value)
        if value.get("message_template"):
            return Message(str(value["message_template"]), dict(value.get("message_params") or {}))
        if "message" in value:
            return Message(str(value["message"]))
    return Message(str(value))


def message_json(value: Any) -> dict[str, Any]:
    """A message as the JSON contract carries it: the English text, and the template
    and parameters reports translate (empty for plain text)."""
    text = as_message(value)
    has_template = isinstance(value, Message) or (
        isinstance(value, Mapping) and (value.get("template") or value.get("message_template"))
    )
    return {
        "message": text.render(),
        "message_template": text.template if has_template else "",
        "message_params": text.to_json()["params"] if has_template else {},
    }


def render_value(value: Any, gettext: Gettext | None = None, shown: ValueFormatter = _plain) -> str:
    """One parameter as text: messages translated, lists joined, numbers formatted."""
    kind = type(value)  # the common kinds first: no abstract-class checks for them
    if kind is str:
        return value
    if kind is int or kind is float:
        return shown(value)
    if is_message(value):
        return as_message(value).render(gettext, shown)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = list(value)
        if items and all(is_message(v) for v in items):
            return "; ".join(as_message(v).render(gettext, shown) for v in items)
        return ", ".join(render_value(v, gettext, shown) for v in items)
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float):
        return shown(value)
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, Message):
        return value.to_json()
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_json(v) for v in value]
    return value


def render_message(
    data: Any, gettext: Gettext | None = None, value: ValueFormatter | None = None
) -> str:
    """Render a message given as :class:`Message`, its JSON, or plain text."""
    return as_message(data).render(gettext, value)
