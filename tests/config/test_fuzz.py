"""Random YAML documents and random bytes fed to the loader: only ConfigError escapes.

Three generators, from shallow to deep:

* random bytes (and random text over YAML's special characters) as either file;
* random YAML documents: nested mappings and lists of scalars YAML can write (huge
  integers, non-finite floats, dates, booleans, text with control characters), keyed by
  real configuration keys so they get past "unknown key" often;
* the shipped configuration with one value, at a random key path, replaced by a random
  value, which reaches the checks of every field and of the rules engine.

The loader is the whole of it: reading, decoding, YAML, the models and the rule check,
as ``hygiene`` runs it (``hygiene.cli.common.load``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hygiene.cli.common import load
from hygiene.config import POLICY_FILE, PROJECTS_FILE
from hygiene.errors import ConfigError

from ..builders import RULES_DIR
from ..conftest import examples

SHIPPED = {
    POLICY_FILE: yaml.safe_load((RULES_DIR / POLICY_FILE).read_text(encoding="utf-8")),
    PROJECTS_FILE: yaml.safe_load((RULES_DIR / PROJECTS_FILE).read_text(encoding="utf-8")),
}


def _keys(data: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            found.add(str(key))
            found |= _keys(value)
    elif isinstance(data, list):
        for item in data:
            found |= _keys(item)
    return found


KEYS = sorted(_keys(SHIPPED[POLICY_FILE]) | _keys(SHIPPED[PROJECTS_FILE]) | {"IM002", "NS004"})
FUZZ = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["us-east-1", "US_EAST_1", "0 3 31 2 *", "a@b.co", "[/oops]", "*", "ALL"]),
    st.dates(),
    st.datetimes(),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), children, max_size=5
        ),
    ),
    max_leaves=30,
)
yaml_alphabet = st.sampled_from(list("{}[]:,-?&*!|>'\"%@`#\n\t ") + ["<<", "---", "...", "a", "1"])


@contextmanager
def _rules_dir(files: dict[str, bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "rules"
        shutil.copytree(RULES_DIR, directory)
        for name, content in files.items():
            (directory / name).write_bytes(content)
        yield directory


def _only_config_errors(files: dict[str, bytes]) -> None:
    with _rules_dir(files) as directory:
        try:
            load(directory)
        except ConfigError as exc:
            assert exc.message.strip(), "an empty error message"
            for line in exc.lines():
                assert "\n" not in line


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True).encode("utf-8")


@FUZZ
@given(target=st.sampled_from([POLICY_FILE, PROJECTS_FILE]), content=st.binary(max_size=400))
def test_random_bytes(target: str, content: bytes) -> None:
    _only_config_errors({target: content})


@FUZZ
@given(
    target=st.sampled_from([POLICY_FILE, PROJECTS_FILE]),
    pieces=st.lists(st.one_of(yaml_alphabet, st.text(max_size=4)), max_size=60),
)
def test_random_yaml_text(target: str, pieces: list[str]) -> None:
    _only_config_errors({target: "".join(pieces).encode("utf-8", "surrogatepass")})


@FUZZ
@given(target=st.sampled_from([POLICY_FILE, PROJECTS_FILE]), document=documents)
def test_random_documents(target: str, document: Any) -> None:
    _only_config_errors({target: _dump(document)})


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _paths(value, (*prefix, index))
    return out


PATHS = {name: _paths(data)[1:] for name, data in SHIPPED.items()}


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {k: (_replace(v, rest, value) if k == head else v) for k, v in data.items()}
    return [(_replace(v, rest, value) if i == head else v) for i, v in enumerate(data)]


@FUZZ
@given(data=st.data(), target=st.sampled_from([POLICY_FILE, PROJECTS_FILE]), value=documents)
def test_shipped_config_with_one_value_replaced(
    data: st.DataObject, target: str, value: Any
) -> None:
    path = data.draw(st.sampled_from(PATHS[target]))
    _only_config_errors({target: _dump(_replace(SHIPPED[target], path, value))})


def test_the_generators_reach_valid_configurations() -> None:
    """The mutation test is only worth something if the unmutated file loads."""
    with _rules_dir({name: _dump(data) for name, data in SHIPPED.items()}) as directory:
        config = load(directory)
    assert config.namespaces
    assert isinstance(SHIPPED[POLICY_FILE]["mutelist"][0]["expires"], date | datetime)
