"""``Finding.to_json`` without ``dataclasses.asdict`` for flat details and message
parameters: the same dict (keys in the same order, dicts copied) as asdict's."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hygiene.model import Finding, FixSafety, Severity
from tests.conftest import examples

atom = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3)
)
value = st.one_of(
    atom,
    st.lists(atom, max_size=2),
    st.lists(st.lists(atom, max_size=1), max_size=1),
    st.tuples(atom),
    st.dictionaries(st.text(max_size=2), atom, max_size=2),
)
mapping = st.one_of(
    st.dictionaries(st.text(max_size=3), atom, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), value, max_size=3),
    st.dictionaries(st.text(max_size=3), atom, max_size=2).map(OrderedDict),
)


def reference(finding: Finding) -> dict[str, Any]:
    """The obvious way: ``asdict`` and the enums and tags as JSON."""
    data = asdict(finding)
    data["severity"] = finding.severity.value
    data["fix_safety"] = finding.fix_safety.value
    data["tags"] = list(finding.tags)
    return data


@given(
    details=mapping,
    params=mapping,
    tags=st.lists(st.text(max_size=3), max_size=2).map(tuple),
    digest=st.one_of(st.none(), st.text(max_size=3)),
)
@example(details={"a": [1]}, params={}, tags=(), digest=None)  # a list: copied, not shared
@example(details={"a": [[1]], "b": ["x"]}, params={"n": 1}, tags=(), digest=None)
@settings(max_examples=examples(300), deadline=None)
def test_a_findings_json_is_asdicts(
    details: dict[Any, Any], params: dict[Any, Any], tags: tuple[str, ...], digest: str | None
) -> None:
    finding = Finding(
        code="IM001", rule="r", severity=Severity.WARNING, account="1", region="x",
        repository="ml/a", namespace=None, message="m", fix="f", fix_safety=FixSafety.SAFE,
        image_digest=digest, tags=tags, bytes=3, details=details, message_template="t",
        message_params=params,
    )  # fmt: skip
    made, expected = finding.to_json(), reference(finding)
    assert made == expected
    assert list(made) == list(expected)  # the fields' order
    assert type(made["details"]) is type(expected["details"])
    # every dict and list copied, nested ones too, as asdict copies them
    assert not shared(made["details"], details) and not shared(made["message_params"], params)


def shared(made: Any, given: Any) -> bool:
    """Whether ``made`` is ``given`` or holds one of its lists or dicts."""
    if isinstance(made, list | dict) and made is given:
        return True
    if isinstance(made, dict):
        return any(shared(made[key], given[key]) for key in made)
    if isinstance(made, list | tuple):
        return any(shared(a, b) for a, b in zip(made, given, strict=True))
    return False
