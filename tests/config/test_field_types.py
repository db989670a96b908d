"""The guarantees every configuration field gets by construction, checked over every
model, so that a field added later (by any issue) gets them or fails here."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from hygiene import configtypes
from hygiene.config import Policy, ProjectsRegistry, Section
from tests.builders import REPO_ROOT


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        for inner in _inner_types(field.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                yield from _models(inner, seen)


def _inner_types(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in get_args(annotation):
        yield from _inner_types(arg)


SEEN: set[type[BaseModel]] = set()
MODELS = [*_models(Policy, SEEN), *_models(ProjectsRegistry, SEEN)]
FIELDS = [(m, name, f) for m in MODELS for name, f in m.model_fields.items()]


def _ids(item: tuple[type[BaseModel], str, FieldInfo]) -> str:
    return f"{item[0].__name__}.{item[1]}"


def test_every_model_is_a_section() -> None:
    assert len(MODELS) > 15
    assert [m.__name__ for m in MODELS if not issubclass(m, Section)] == []


def _is_numeric(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, types.UnionType, Annotated):
        return any(_is_numeric(a) for a in get_args(annotation))
    return False


def _bounds(field: FieldInfo) -> tuple[bool, bool]:
    lower = any(isinstance(m, annotated_types.Ge | annotated_types.Gt) for m in field.metadata)
    upper = any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in field.metadata)
    return lower, upper


@pytest.mark.parametrize("item", [f for f in FIELDS if _is_numeric(f[2].annotation)], ids=_ids)
def test_every_number_has_a_finite_range(item: tuple[type[BaseModel], str, FieldInfo]) -> None:
    model, name, field = item
    assert _bounds(field) == (True, True), f"{model.__name__}.{name}: give it ge=… and le=…"
    for bad in (float("inf"), float("nan"), True):
        with pytest.raises(ValidationError) as info:
            model.model_validate({name: bad})
        assert any(e["loc"][:1] == (name,) for e in info.value.errors()), (name, bad)


# What a field name says it holds → the value type it must be declared with.
NAMED = [
    (re.compile(r"(^|_)(emails?|owners|members)$"), configtypes.check_email),
    (re.compile(r"^sender$"), configtypes.check_email),
    (re.compile(r"(^|_)regions?$"), configtypes.check_region),
    (re.compile(r"(^|_)timezone$"), configtypes.check_zone),
    (re.compile(r"^(nightly|weekly)$|(^|_)cron$"), configtypes.check_crontab),
    (re.compile(r"(^|_)url$"), None),  # HttpUrl or StoreUrl
]


def _validators(field: FieldInfo) -> set[Any]:
    """The functions of the AfterValidators on a field and inside its type (list[…])."""
    metadata = list(field.metadata)
    for inner in _inner_types(field.annotation):
        metadata += getattr(inner, "__metadata__", ())
    found = set()
    for meta in metadata:
        func = getattr(meta, "func", None)
        found.add(getattr(func, "func", func))  # functools.partial → its function
    return found


@pytest.mark.parametrize("item", FIELDS, ids=_ids)
def test_a_field_is_declared_with_the_type_its_name_says(
    item: tuple[type[BaseModel], str, FieldInfo],
) -> None:
    model, name, field = item
    if bool in set(_inner_types(field.annotation)):
        return  # a switch (notify.email, weekly_cc_members), not a value
    validators = _validators(field)
    for pattern, check in NAMED:
        if pattern.search(name):
            expected = (
                {configtypes.check_http_url, configtypes.check_store_url}
                if check is None
                else {check}
            )
            assert validators & expected, f"{model.__name__}.{name}: use the configtypes type"


def test_strings_are_one_line_unless_free_text() -> None:
    from hygiene.config import MuteEntry, PriceSettings, Project

    with pytest.raises(ValidationError, match="line break"):
        PriceSettings.model_validate({"currency": "U\nSD"})
    assert Project.model_validate({"owners": ["a@example.org"], "description": "one\ntwo"})
    entry = MuteEntry.model_validate({"reason": "line one\nline two", "rules": ["ALL"]})
    assert entry.reason.count("\n") == 1
    assert {m.__name__: sorted(m.free_text) for m in MODELS if m.free_text} == {
        "MuteEntry": ["reason"],
        "Project": ["description"],
    }


def test_only_the_safe_console_prints_rich_output() -> None:
    """Every rich Console is a SafeConsole (user text is never markup), and the progress
    bar shows repository names as text."""
    offenders = []
    for path in sorted((REPO_ROOT / "hygiene").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"(?<!Safe)Console\(", line) and path.name != "terminal.py":
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}")
            if "[progress.description]" in line or re.search(
                r"\[/?(bold|red|green|yellow|cyan)\]", line
            ):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{number} (markup)")
    assert offenders == []


def test_email_checks_make_no_network_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a DNS lookup")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert configtypes.check_email("joao.silva@lsd.ufcg.edu.br")
    with pytest.raises(ValueError, match="not an email address"):
        configtypes.check_email("joao@lsd")


def test_templates_dir_and_paths_stay_paths() -> None:
    from hygiene.config import ReportSettings

    assert ReportSettings.model_validate({"out_dir": "x/y"}).out_dir == Path("x/y")


def test_known_regions_are_the_ones_botocore_lists() -> None:
    """Regions are read from botocore's endpoint data without its session (start-up);
    they are exactly the ECR regions botocore's session lists, in every partition."""
    import botocore.session

    regions = configtypes.known_regions()
    assert regions == configtypes.regions_from_botocore()
    model = botocore.session.get_session().get_service_model("ecr")
    assert model.metadata["endpointPrefix"] == configtypes.ECR_ENDPOINT_PREFIX
    assert {"us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"} <= regions
    with pytest.raises(ValueError, match="not an AWS region known to botocore"):
        configtypes.check_region("us-east-99")
