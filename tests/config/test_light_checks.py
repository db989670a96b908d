"""Checks made lighter for start-up give the verdict and the error of the plain check.

Each light path is compared with what it replaces, on hypothesis' values and on
hand-picked edge cases: the same acceptance, and for a refusal the same error (type,
message, location) that ``hygiene`` turns into the line the user reads.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, ValidationError

from hygiene.config import AccountsSettings, Section
from hygiene.configtypes import SESSION_NAME_PATTERN

# ----------------------------------------------------------------- registry.accounts


class PlainSessionName(Section):
    """``session_name`` as it was declared: pydantic's pattern constraint, built with
    the model."""

    session_name: str = Field(default="registry-hygiene", pattern=SESSION_NAME_PATTERN)


def _outcome(model: type[Section], data: dict[str, Any]) -> Any:
    """The value of ``session_name``, or every error as the configuration reads them."""
    try:
        return ("ok", model.model_validate(data).model_dump()["session_name"])
    except ValidationError as exc:
        return [
            (e["type"], e["msg"], e["loc"], e.get("input"), e.get("ctx"))
            for e in exc.errors(include_url=False)
        ]


def _session_name(value: Any) -> Any:
    return _outcome(AccountsSettings, {"organization": True, "session_name": value})


SESSION_NAMES = [
    "registry-hygiene",
    "a",
    "ab",
    "a" * 64,
    "a" * 65,
    "a b",
    "josé",
    "e\u0301x",  # a combining mark: a word character to the pattern's engine
    "x\u203fy",  # connector punctuation
    "x²y",  # a digit that is not a decimal digit
    "x½",
    "日本語",
    "name/slash",
    "a+=,.@-_9",
    "",
    "tab\tname",
    "line\nbreak",
    "end\n",
    12,
    None,
]


@pytest.mark.parametrize("value", SESSION_NAMES, ids=repr)
def test_session_name_is_checked_as_by_the_pattern_constraint(value: Any) -> None:
    assert _session_name(value) == _outcome(PlainSessionName, {"session_name": value})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=70) | st.text(alphabet="ab+=,.@-_ é\u0301²", max_size=70))
def test_session_name_matches_the_pattern_constraint_on_any_text(value: str) -> None:
    assert _session_name(value) == _outcome(PlainSessionName, {"session_name": value})


def test_session_name_error_reads_the_same_in_the_loaded_configuration(tmp_path: Any) -> None:
    from hygiene.config import load_config
    from hygiene.errors import ConfigError

    (tmp_path / "default.yaml").write_text(
        "registry:\n  accounts:\n    organization: true\n    session_name: 'a b'\n"
    )
    (tmp_path / "projects.yaml").write_text("projects: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.problems == [
        f"{tmp_path / 'default.yaml'}:4: registry.accounts.session_name: String should "
        f"match pattern '{SESSION_NAME_PATTERN}' (got 'a b')"
    ]


# AWS's RoleSessionName pattern is ``[\w+=,.@-]*`` with an ASCII ``\w``: letters of other
# alphabets, marks, other digits and connector punctuation are word characters to
# Python's and pydantic's Unicode ``\w``, and STS refuses them at scan time
NOT_ASCII_SESSION_NAMES = [
    "ação",
    "josé",
    "日本語",
    "e\u0301x",
    "x²y",
    "x½",
    "x\u203fy",
    "ab\u0660",
]


def _policy_with_session_name(directory: Any, value: str) -> Any:
    from hygiene.config import load_config

    (directory / "default.yaml").write_text(
        "registry:\n  accounts:\n    organization: true\n    session_name: "
        + json.dumps(value)
        + "\n",
        encoding="utf-8",
    )
    (directory / "projects.yaml").write_text("projects: {}\n", encoding="utf-8")
    return load_config(directory)


@pytest.mark.parametrize("value", NOT_ASCII_SESSION_NAMES, ids=ascii)
def test_a_session_name_sts_refuses_is_a_configuration_error(value: str, tmp_path: Any) -> None:
    from hygiene.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        _policy_with_session_name(tmp_path, value)
    (problem,) = info.value.problems
    assert problem.startswith(
        f"{tmp_path / 'default.yaml'}:4: registry.accounts.session_name: String should "
        f"match pattern '{SESSION_NAME_PATTERN}'"
    )


@pytest.mark.parametrize("value", ["ab", "registry-hygiene", "A_z+0=9,.@-", "a" * 64])
def test_a_session_name_of_what_sts_accepts_loads(value: str, tmp_path: Any) -> None:
    config = _policy_with_session_name(tmp_path, value)
    assert config.policy.registry.accounts is not None
    assert config.policy.registry.accounts.session_name == value


def test_the_schema_says_what_the_configuration_accepts_of_a_session_name() -> None:
    r"""``hygiene config schema``'s pattern for session_name is the one validation uses,
    written without ``\w`` (an editor's ECMAScript ``\w`` is ASCII, Python's is not), and
    accepts exactly what the configuration accepts."""
    from click.testing import CliRunner

    from hygiene.cli import cli

    schema = json.loads(CliRunner().invoke(cli, ["config", "schema", "policy"]).output)
    (pattern,) = {
        definition["properties"]["session_name"]["pattern"]
        for definition in schema["$defs"].values()
        if "session_name" in definition.get("properties", {})
    }
    assert pattern == SESSION_NAME_PATTERN and "\\w" not in pattern
    for value in [*SESSION_NAMES, *NOT_ASCII_SESSION_NAMES]:
        if isinstance(value, str):
            accepted = _session_name(value)[0] == "ok"
            assert (re.fullmatch(pattern, value) is not None) is accepted, value


# ------------------------------------------------------------------- e-mail addresses


def _checked(
    check: str, shortcut: str, value: str, monkeypatch: pytest.MonkeyPatch | None, **options: Any
) -> Any:
    """``configtypes.<check>``'s outcome for ``value``; with ``monkeypatch``, the library's
    alone (the plain-value ``shortcut`` turned off)."""
    from hygiene import configtypes

    if monkeypatch is not None:
        monkeypatch.setattr(configtypes, shortcut, lambda *_: False)
    try:
        return ("ok", getattr(configtypes, check)(value, **options))
    except ValueError as exc:
        return ("refused", str(exc))
    finally:
        if monkeypatch is not None:
            monkeypatch.undo()


def _email(value: str, monkeypatch: pytest.MonkeyPatch | None = None) -> Any:
    """check_email's outcome; with ``monkeypatch``, email-validator's alone."""
    return _checked("check_email", "plain_address", value, monkeypatch)


def _library_accepts(value: str) -> bool:
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


ADDRESSES = [
    "joao.silva@lsd.ufcg.edu.br",
    "user+tag@example.org",
    "a_b-c@x.io",
    "-a@x.com",
    "A.B@example.com",
    "a@EXAMPLE.com",
    "a@b.co",
    "a@x.c",
    "a@x.c0m",
    "a@1.com",
    "a@x.123",
    "a@x.com.",
    "a@x..com",
    "a..b@x.com",
    ".a@x.com",
    "a.@x.com",
    "a@-x.com",
    "a@x-.com",
    "a@ab--cd.com",
    "a@xn--abc.com",
    "a@xn--nxasmq6b.com",
    "a@localhost",
    "a@x.localhost",
    "a@x.test",
    "a@x.local",
    "a@x.arpa",
    "a@x.onion",
    "a@x.invalid",
    "a@test.com",
    "a@" + "b" * 63 + ".com",
    "a@" + "b" * 64 + ".com",
    "a" * 64 + "@x.com",
    "a" * 65 + "@x.com",
    "a@" + ".".join(["b" * 60] * 4) + ".com",
    "a" * 60 + "@" + ".".join(["b" * 60] * 3) + ".co",
    "a" * 64 + "@" + ".".join(["b" * 61] * 3) + ".co",
    "a" * 64 + "@" + ".".join(["b" * 61] * 3) + ".abc",  # 254 characters
    "a" * 64 + "@" + ".".join(["b" * 61] * 3) + ".abcd",  # 255
    "joão@x.com",
    "a@ação.com",
    "Name <a@x.com>",
    "a b@x.com",
    "a@x.com\n",
    "",
    "@",
    "a@",
    "@x.com",
]


@pytest.mark.parametrize("value", ADDRESSES, ids=repr)
def test_an_address_gets_email_validators_verdict_and_message(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _email(value) == _email(value, monkeypatch)


def test_the_special_use_domains_are_email_validators() -> None:
    import email_validator

    from hygiene.configtypes import SPECIAL_USE_DOMAINS

    assert sorted(SPECIAL_USE_DOMAINS) == sorted(email_validator.SPECIAL_USE_DOMAIN_NAMES)


@settings(max_examples=400, deadline=None)
@given(
    st.from_regex(r"[A-Za-z0-9_+.-]{1,70}@[a-z0-9.-]{1,80}\.[a-z0-9]{1,8}", fullmatch=True)
    | st.from_regex(r"[a-z]{1,3}@(?:[a-z0-9-]{1,64}\.){1,5}[a-z]{1,64}", fullmatch=True)
    | st.text(alphabet="ab.-_+@é1 ", max_size=30)
)
def test_the_plain_path_accepts_only_what_email_validator_accepts(value: str) -> None:
    from hygiene.configtypes import plain_address

    if plain_address(value):
        assert _library_accepts(value), value


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"[A-Za-z0-9_+.-]{1,70}@[A-Za-z0-9.-]{1,80}", fullmatch=True)
    | st.text(alphabet="aZ.-_+@é1 <>\n", max_size=30)
)
def test_check_email_says_what_email_validator_says(value: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _email(value) == _email(value, monkeypatch)


def test_a_local_relays_domain_is_accepted_only_where_allowed() -> None:
    from hygiene.configtypes import LOCAL_MAIL_DOMAINS, check_email

    assert check_email("hygiene@localhost", local_domains=LOCAL_MAIL_DOMAINS)
    assert check_email("a.b@localhost", local_domains=LOCAL_MAIL_DOMAINS) == "a.b@localhost"
    with pytest.raises(ValueError, match="not an email address"):
        check_email("hygiene@localhost")
    with pytest.raises(ValueError, match="not an email address"):
        check_email("a..b@localhost", local_domains=LOCAL_MAIL_DOMAINS)


# ------------------------------------------------------------------------ schedules

NOW = "2026-12-01T00:00:00+00:00"


def _crontab(value: str, monkeypatch: pytest.MonkeyPatch | None = None) -> Any:
    """check_crontab's outcome; with ``monkeypatch``, APScheduler's parser's alone."""
    from datetime import datetime

    now = datetime.fromisoformat(NOW)
    return _checked("check_crontab", "plain_crontab", value, monkeypatch, now=lambda: now)


CRONTABS = [
    "0 3 * * *",
    "0 8 * * mon",
    "00 03 * * *",
    "*/5 * * * *",
    "*/59 */23 * * *",
    "*/60 * * * *",
    "* */24 * * *",
    "*/0 * * * *",
    "60 * * * *",
    "0 24 * * *",
    "0 0 28 2 *",
    "0 0 29 2 *",
    "0 0 30 2 *",
    "0 0 31 4 *",
    "0 0 0 * *",
    "0 0 1 0 *",
    "0 0 1 13 *",
    "0 0 * 12 *",
    "0 0 * * mon-fri",
    "0 0 * * fri-mon",
    "0 0 * * sun-sun",
    "0 0 * * MON",
    "0 0 * * mon,wed",
    "0 0 * * monday",
    "0 0 1 * mon",
    "0 0 ? * mon",
    "0 0 * * 1",
    "1-5 * * * *",
    "1,2 * * * *",
    "+1 * * * *",
    "٣ * * * *",
    "0 3 * *",
    "0 3 * * * *",
    "",
]


@pytest.mark.parametrize("value", CRONTABS, ids=repr)
def test_a_crontab_gets_apschedulers_verdict_and_message(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _crontab(value) == _crontab(value, monkeypatch)


MINUTES = st.sampled_from(["*", "*/0", "*/1", "*/23", "*/24", "*/59", "*/60", "1-5", "1,2"])
NUMBERS = st.integers(min_value=0, max_value=99).map(str) | st.sampled_from(["00", "07", "007"])
DAYS = st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun", "MON", "xyz"])
WEEK = st.sampled_from(["*", "?", "1"]) | DAYS | st.tuples(DAYS, DAYS).map("-".join)


@settings(max_examples=400, deadline=None)
@given(
    minute=MINUTES | NUMBERS,
    hour=MINUTES | NUMBERS,
    day=st.sampled_from(["*", "?", "*/2"]) | NUMBERS,
    month=st.sampled_from(["*", "*/2", "jan"]) | NUMBERS,
    week=WEEK,
)
def test_check_crontab_says_what_apscheduler_says(
    minute: str, hour: str, day: str, month: str, week: str
) -> None:
    value = f"{minute} {hour} {day} {month} {week}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _crontab(value) == _crontab(value, monkeypatch)


# ----------------------------------------------------------------------------- URLs


def _url(value: str, monkeypatch: pytest.MonkeyPatch | None = None) -> Any:
    """check_http_url's outcome; with ``monkeypatch``, pydantic's URL type's alone."""
    return _checked("check_http_url", "plain_url", value, monkeypatch)


URLS = [
    "http://127.0.0.1:42057",
    "http://localhost:5000",
    "https://hooks.slack.example.org/services/T000/B000",
    "https://api.ecr.us-east-1.amazonaws.com",
    "http://vpce-0a1b.ecr.us-east-1.vpce.amazonaws.com/",
    "http://a.b.c.d.e",
    "http://x",
    "http://1.2.3",
    "http://1.2.3.4.5",
    "http://256.1.1.1",
    "http://01.1.1.1",
    "http://a.1",
    "http://a.1a",
    "http://a.b1",
    "http://a-.com",
    "http://-a.com",
    "http://ab--cd.com",
    "http://xn--abc.com",
    "http://xn--nxasmq6b.com",
    "http://example.com:0",
    "http://example.com:65535",
    "http://example.com:65536",
    "http://example.com:99999",
    "http://example.com:080",
    "http://example.com:",
    "http://example.com/a/../b",
    "http://example.com//",
    "http://example.com/%41",
    "http://example.com?x=1",
    "http://example.com#f",
    "http://user:pw@example.com",
    "http://user@example.com",
    "HTTP://example.com",
    "http://EXAMPLE.com",
    "ftp://example.com",
    "http:/example.com",
    "http://",
    "http:///path",
    "http://[::1]:8080",
    "http://exa mple.com",
    "http://example.com/\n",
    "example.com",
    "",
]


@pytest.mark.parametrize("value", URLS, ids=repr)
def test_a_url_gets_pydantics_verdict_and_message(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _url(value) == _url(value, monkeypatch)


@settings(max_examples=400, deadline=None)
@given(
    st.from_regex(
        r"https?://[a-z0-9.-]{1,30}(:[0-9]{1,6})?(/[A-Za-z0-9._~%-]{0,8}){0,3}", fullmatch=True
    )
    | st.from_regex(r"http://[0-9]{1,3}(\.[0-9]{1,3}){2,4}(:[0-9]{1,5})?", fullmatch=True)
    | st.text(alphabet="hpts:/.a1-@?#", max_size=25)
)
def test_check_http_url_says_what_pydantic_says(value: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _url(value) == _url(value, monkeypatch)
