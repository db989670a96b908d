"""Messages render their parameters as before: the common kinds (text, integers, floats)
take a short path, checked against the general one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hygiene.messages import Message, as_message, is_message, render_value
from tests.conftest import examples


def reference_value(value: Any, gettext: Any = None, shown: Any = str) -> str:
    """``render_value`` before its short path for text and numbers."""
    if is_message(value):
        return as_message(value).render(gettext, shown)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = list(value)
        if items and all(is_message(v) for v in items):
            return "; ".join(as_message(v).render(gettext, shown) for v in items)
        return ", ".join(reference_value(v, gettext, shown) for v in items)
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float):
        return shown(value)
    return str(value)


class Text(str):
    pass


class Number(int):
    pass


scalar = st.one_of(
    st.text(max_size=5), st.integers(), st.floats(), st.booleans(), st.none(),
    st.text(max_size=3).map(Text), st.integers().map(Number),
)  # fmt: skip
templates = st.sampled_from(["x %(a)s", "y"])


def message_of(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    params = st.fixed_dictionaries({"a": inner})
    return st.one_of(
        st.builds(Message, templates, params),
        st.fixed_dictionaries({"template": templates, "params": params}),
    )


value = st.recursive(
    scalar, lambda inner: st.one_of(st.lists(inner, max_size=3), message_of(inner)), max_leaves=6
)


def translated(template: str) -> str:
    return "T " + template


@given(value=value, shown=st.sampled_from([str, lambda v: f"<{v!r}>"]))
@settings(max_examples=examples(300), deadline=None)
def test_values_render_as_the_general_path(value: Any, shown: Any) -> None:
    assert render_value(value, None, shown) == reference_value(value, None, shown)
    assert render_value(value, translated, shown) == reference_value(value, translated, shown)
    message = Message("%(v)s and %(w)s", {"v": value, "w": 3})
    expected = reference_value(value, translated, shown)
    assert message.render(translated, shown) == f"T {expected} and {shown(3)}"
