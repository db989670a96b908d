"""The base of every configuration section (:class:`Section`): what each field of
``rules/default.yaml`` and ``rules/projects.yaml`` gets by construction."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class Section(BaseModel):
    """A config section: unknown keys are errors, values are immutable after load.

    Every field also gets, by construction:

    * numbers: finite (no ``.inf``/``.nan``), and a boolean is not a number (pydantic
      would read ``true`` as 1); every numeric field must declare both bounds (a test
      walks the models);
    * strings: one line (no line break or tab) unless the field is listed in
      ``free_text``; control characters never get this far (:mod:`hygiene.yamlfile`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    free_text: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _numeric(field.annotation):
            raise ValueError(f"expected a number, got {str(value).lower()}")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _one_line(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name not in cls.free_text:
            for text in _strings(value):
                if "\n" in text or "\t" in text:
                    raise ValueError(f"a line break or tab in a one-line value: {text[:40]!r}")
        return value


def _numeric(annotation: Any) -> bool:
    """Whether a field annotation holds an int or a float (possibly optional)."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_numeric(arg) for arg in get_args(annotation))
    if get_origin(annotation) is Annotated:
        return _numeric(get_args(annotation)[0])
    return False


def _strings(value: Any) -> Iterator[str]:
    """The strings in a field value (lists, tuples, mapping keys and values; not models)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
