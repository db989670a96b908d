"""Validated value types of the configuration, for every section to declare its fields with.

A field says *what* it holds — ``EmailAddress``, ``Region``, ``HttpUrl``, ``StoreUrl``,
``TimeZone``, ``Crontab``, ``Digest`` — and gets that value's checks by construction;
the section base (:class:`hygiene.configbase.Section`) adds what every field gets: finite
numbers, no boolean where a number is expected, one line per string unless the field is
free text. The same checks serve command-line options (``--region``, ``--store-url``…).

Every check here is local: no DNS query, no network call (email-validator runs with
``check_deliverability=False``; regions come from the endpoint data botocore ships).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, StringConstraints, TypeAdapter, ValidationError, WithJsonSchema
from pydantic_core import PydanticKnownError

from hygiene.text import UNSAFE_CHARACTERS, check_text, escape_unsafe

if TYPE_CHECKING:
    from pydantic import AnyHttpUrl

# ------------------------------------------------------------------- e-mail addresses

# Domains a local relay accepts that email-validator refuses as special-use names.
LOCAL_MAIL_DOMAINS = frozenset({"localhost"})


# email-validator's special-use domains (``email_validator.SPECIAL_USE_DOMAIN_NAMES``,
# compared by tests/config/test_light_checks.py): never taken by the plain path below.
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")

# The plainest addresses: ASCII word characters, + and - in dot-separated atoms before the
# @; lowercase host labels (no hyphen at either end, none doubled) and a top-level part of
# letters after it.
_PLAIN_ADDRESS = re.compile(
    r"(?P<local>[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})"
)


def plain_address(value: str) -> bool:
    """Whether ``value`` is an address email-validator accepts for certain, without
    asking it: one of the plainest shapes (:data:`_PLAIN_ADDRESS`) within every length
    limit, no doubled hyphen in the domain (IDNA's reserved labels), no special-use
    domain. Anything else goes to email-validator itself (importing it took 14 ms of
    start-up, its patterns' compilation); ``tests/config/test_light_checks.py`` checks
    that it accepts whatever this does."""
    match = _PLAIN_ADDRESS.fullmatch(value)
    if match is None or len(value) > 254:
        return False
    domain = match["domain"]
    return (
        len(match["local"]) <= 64  # the domain's 253 follows from the address's 254
        and "--" not in domain
        and not any(domain == d or domain.endswith("." + d) for d in SPECIAL_USE_DOMAINS)
    )


def check_email(value: str, *, local_domains: frozenset[str] = frozenset()) -> str:
    """``value`` if it is a bare address (``user@example.org``), else ValueError.

    Syntax only (RFC 5321/5322 as email-validator reads them): no display name, no
    quoted local part, no IP-literal domain, no control character, a domain with a
    top-level part. ``local_domains`` are accepted after the ``@`` too (a relay on
    ``localhost``).
    """
    local, _, domain = value.rpartition("@")
    probe = f"{local}@example.com" if local and domain in local_domains else value
    if plain_address(probe):
        return value
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(probe, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not an email address {value!r}: {exc}") from None
    return value


EmailAddress = Annotated[str, AfterValidator(check_email)]
"""A recipient: owners, members, admin addresses."""

SenderAddress = Annotated[
    str, AfterValidator(functools.partial(check_email, local_domains=LOCAL_MAIL_DOMAINS))
]
"""A From address; ``…@localhost`` is accepted for a local relay."""


# ------------------------------------------------------------------ AWS accounts, regions


def check_account(value: str) -> str:
    """``value`` if it is a 12-digit AWS account id, else ValueError."""
    if not re.fullmatch(r"\d{12}", value):
        raise ValueError(f"{value!r} is not an AWS account id (12 digits)")
    return value


REGION_SHAPE = re.compile(r"^[a-z]{2,4}(?:-[a-z]+)+-\d{1,2}$")


# ECR's endpoint prefix in botocore's service model (``metadata.endpointPrefix``): the key
# of its endpoints in the endpoint data.
ECR_ENDPOINT_PREFIX = "api.ecr"


@functools.cache
def known_regions() -> frozenset[str]:
    """ECR regions of every partition in the endpoint data of the installed botocore.

    Read from botocore's ``data/endpoints.json`` directly: importing ``botocore.session``
    and loading ECR's service model to ask ``get_available_regions`` took 0.2 s, most of
    ``hygiene rules``'s start-up. Same regions (``tests/config/test_field_types.py``);
    botocore's own answer when the file is not where it is expected.
    """
    import importlib.util
    from pathlib import Path

    import orjson

    spec = importlib.util.find_spec("botocore")
    data = Path(spec.origin).parent / "data" / "endpoints.json" if spec and spec.origin else None
    if data is None or not data.is_file():
        return regions_from_botocore()
    return frozenset(
        region
        for partition in orjson.loads(data.read_bytes())["partitions"]
        for region in partition["services"].get(ECR_ENDPOINT_PREFIX, {}).get("endpoints", {})
        if region in partition["regions"]
    )


def regions_from_botocore() -> frozenset[str]:
    """ECR regions of every partition, as botocore's session lists them."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ecr", partition_name=partition)
    )


def check_region(value: str) -> str:
    """``value`` if it is an ECR region botocore knows, else ValueError (one line)."""
    if not isinstance(value, str) or not REGION_SHAPE.match(value):
        raise ValueError(f"{value!r} is not an AWS region name (like us-east-1)")
    if value not in known_regions():
        import botocore

        raise ValueError(
            f"{value!r} is not an AWS region known to botocore {botocore.__version__} "
            "(a new region needs a newer boto3)"
        )
    return value


Region = Annotated[str, AfterValidator(check_region)]


# ``session_name``: STS's RoleSessionName, 2 to 64 characters of ``[\w+=,.@-]`` where
# AWS's ``\w`` is ASCII: spelled out, since Python's and pydantic's ``\w`` also take
# letters of every alphabet (``ação``), marks and other digits, which STS refuses at scan
# time; spelled out, the JSON Schema (``hygiene config schema``) reads the same in every
# regular expression dialect. Checked by pydantic's own pattern constraint, the same
# regular expression engine and the same error as ``Field(pattern=...)``; but built on
# first use: compiling the pattern when it held a Unicode class took 15 ms of every
# command's start-up, for a field most configurations never set (its default is not
# validated).
SESSION_NAME_PATTERN = r"^[A-Za-z0-9_+=,.@-]{2,64}$"


@functools.cache
def _session_name_adapter() -> TypeAdapter[str]:
    return TypeAdapter(Annotated[str, StringConstraints(pattern=SESSION_NAME_PATTERN)])


def _check_session_name(value: str) -> str:
    try:
        _session_name_adapter().validate_python(value)
    except ValidationError:
        raise PydanticKnownError(
            "string_pattern_mismatch", {"pattern": SESSION_NAME_PATTERN}
        ) from None
    return value


SessionName = Annotated[
    str,
    AfterValidator(_check_session_name),
    WithJsonSchema({"type": "string", "pattern": SESSION_NAME_PATTERN}),
]


# ----------------------------------------------------------------------------- URLs


@functools.cache
def _http_url() -> TypeAdapter[AnyHttpUrl]:
    # pydantic's URL types and this adapter: 12 ms of start-up, built on first use
    from pydantic import AnyHttpUrl

    return TypeAdapter(AnyHttpUrl)


_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# http(s), a lowercase host name whose last label starts with a letter (one ending in a
# number is read as an IPv4 address) or a dotted IPv4 address, a port, a path of
# unreserved characters; nothing else (no user, query, fragment, escape, IDNA label)
_PLAIN_URL = re.compile(
    rf"https?://(?:(?:{_LABEL}\.)*[a-z](?:[a-z0-9-]*[a-z0-9])?|{_OCTET}(?:\.{_OCTET}){{3}})"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?(?:/[A-Za-z0-9._~-]*)*"
)


def plain_url(value: str) -> bool:
    """Whether ``value`` is an http(s) URL without credentials that pydantic's
    ``AnyHttpUrl`` accepts for certain, without building it (:data:`_PLAIN_URL`, a port
    up to 65535, no doubled hyphen: IDNA's reserved labels). Anything else goes to
    pydantic; ``tests/config/test_light_checks.py`` checks that it gives the same verdict."""
    match = _PLAIN_URL.fullmatch(value)
    return (
        match is not None
        and int(match["port"] or 0) <= 65535
        and "--" not in value.partition("://")[2].partition("/")[0]
    )


def check_http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL without credentials, else ValueError.

    The string is kept as written (pydantic's URL type would add a trailing slash).
    """
    if plain_url(value):
        return value
    try:
        url = _http_url().validate_python(value)
    except ValidationError:
        raise ValueError(f"not an http(s) URL: {value!r}") from None
    if url.username or url.password:
        raise ValueError(
            "the URL must not carry credentials (user:password@): they would end up in "
            "logs and reports; use the environment variables or profiles meant for them"
        )
    return value


HttpUrl = Annotated[str, AfterValidator(check_http_url)]

STORE_BACKENDS = ("sqlite", "postgresql")


def normalise_store_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; a bare path means SQLite."""
    if "://" not in url:
        return f"sqlite:///{url}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def check_store_url(value: str) -> str:
    """``value`` if it names a SQLite file or a PostgreSQL database, else ValueError.

    Read the way SQLAlchemy reads a URL (``dialect[+driver]://…``) without importing it:
    loading the configuration stays light.
    """
    from urllib.parse import urlsplit

    if not value.strip():
        raise ValueError("empty store URL")
    if "://" not in value and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:(?!\\)", value):
        raise ValueError(
            f"{value!r} looks like a URL missing '//' (a bare path would be taken as a "
            "SQLite file name): write sqlite:///file.db or postgresql+psycopg://host/db"
        )
    match = re.fullmatch(
        r"(?P<dialect>[A-Za-z0-9_]+)(\+[A-Za-z0-9_]+)?://(?P<rest>.*)",
        normalise_store_url(value),
        re.S,
    )
    if match is None:
        raise ValueError(f"not a database URL: {value!r}")
    backend = match["dialect"]
    if backend not in STORE_BACKENDS:
        raise ValueError(
            f"unsupported database {backend!r}: the store runs on sqlite or postgresql"
        )
    if backend == "postgresql" and not urlsplit("//" + match["rest"]).path.strip("/"):
        raise ValueError("a postgresql store URL needs a database name (…/hygiene)")
    return value


StoreUrl = Annotated[str, AfterValidator(check_store_url)]


# ------------------------------------------------------------------ time and schedule


def check_zone(value: str) -> str:
    """``value`` if it is an IANA time zone name (``America/Fortaleza``), else ValueError."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name like UTC)") from None
    return value


TimeZone = Annotated[str, AfterValidator(check_zone)]

# A schedule must fire within this window; 8 years covers every 29 February (2096→2104).
CRON_HORIZON = timedelta(days=366 * 9)


def check_crontab(value: str, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> str:
    """``value`` if it is a 5-field crontab that means the same to cron and to
    APScheduler 3 and fires at least once in the coming years, else ValueError.

    APScheduler 3 reads two things differently from cron, silently: a numeric day of
    week counts from Monday = 0 (cron: Sunday = 0, so ``* * * * 1`` would run on
    Tuesdays), and when both day of month and day of week are restricted it needs both
    to match (cron: either). Both are refused with a way to say it unambiguously.
    """
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"{value!r} is not a 5-field crontab (minute hour day-of-month month "
            f"day-of-week); it has {len(fields)} field{'s' if len(fields) != 1 else ''}"
        )
    day_of_month, day_of_week = fields[2], fields[4]
    if re.search(r"\d", day_of_week):
        raise ValueError(
            f"day of week {day_of_week!r}: use names (mon, tue … sun; mon-fri): cron "
            "counts Sunday as 0 and the scheduler counts Monday as 0, so a number would "
            "run on another day"
        )
    if day_of_month not in ("*", "?") and day_of_week not in ("*", "?"):
        raise ValueError(
            f"{value!r} restricts both day of month and day of week: cron runs when "
            "either matches, the scheduler only when both do; restrict one of them"
        )
    if plain_crontab(fields):
        return value
    from apscheduler.triggers.cron import CronTrigger

    try:
        trigger = CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"not a crontab expression {value!r}: {exc}") from None
    start = now()
    trigger.end_date = start + CRON_HORIZON
    if trigger.get_next_fire_time(None, start) is None:
        raise ValueError(f"{value!r} never fires (no such date in the next 9 years)")
    return value


# APScheduler's order of the days' names (``apscheduler.triggers.cron.fields.WEEKDAYS``)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _number(text: str, low: int, high: int) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 2 and low <= int(text) <= high


def _minute_or_hour(field: str, high: int) -> bool:
    """``*``, ``*/step`` (1 to ``high``: APScheduler's largest step) or 0–``high``."""
    if field.startswith("*/"):
        return _number(field[2:], 1, high)
    return field == "*" or _number(field, 0, high)


def _days_of_week(field: str) -> bool:
    """``*``, a day's name or an ascending range of names (``mon-fri``)."""
    first, _, last = field.partition("-")
    if field == "*" or (first in DAY_NAMES and not last):
        return True
    return (
        first in DAY_NAMES and last in DAY_NAMES and DAY_NAMES.index(first) <= DAY_NAMES.index(last)
    )


def plain_crontab(fields: list[str]) -> bool:
    """Whether five crontab fields, past :func:`check_crontab`'s own checks, are ones
    APScheduler accepts and that fire every year, for certain, without asking it:
    minute and hour ``*``, ``*/step`` or a number; day of month ``*`` or 1–28 (a day
    every month has); month ``*`` or 1–12; day of week ``*``, a day's name or an
    ascending range of names. Anything else goes to APScheduler's parser (importing it,
    and asyncio with it, took 8 ms of start-up); ``tests/config/test_light_checks.py``
    checks that APScheduler accepts, and finds a next run for, whatever this accepts."""
    minute, hour, day_of_month, month, day_of_week = fields
    return (
        _minute_or_hour(minute, 59)
        and _minute_or_hour(hour, 23)
        and (day_of_month == "*" or _number(day_of_month, 1, 28))
        and (month == "*" or _number(month, 1, 12))
        and _days_of_week(day_of_week)
    )


Crontab = Annotated[str, AfterValidator(check_crontab)]


# ------------------------------------------------------------------------- images


def check_digest(value: str) -> str:
    """``value`` if it is a sha256 image digest, or a glob that can match one
    (``sha256:4f1e*``), else ValueError: a digest that can never match mutes nothing."""
    if re.fullmatch(r"sha256:[0-9a-f]{64}", value):
        return value
    wildcard = any(c in value for c in "*?[")
    if wildcard and re.fullmatch(r"(sha256:|\*)[0-9a-f*?\[\]!-]*", value):
        return value
    raise ValueError(
        f"{value!r} is not an image digest (sha256: and 64 lowercase hex digits) nor a "
        "glob of one (sha256:4f1e*): it could never match an image"
    )


Digest = Annotated[str, AfterValidator(check_digest)]


__all__ = [
    "UNSAFE_CHARACTERS",
    "Crontab",
    "Digest",
    "EmailAddress",
    "HttpUrl",
    "Region",
    "SenderAddress",
    "SessionName",
    "StoreUrl",
    "TimeZone",
    "check_account",
    "check_crontab",
    "check_digest",
    "check_email",
    "check_http_url",
    "check_region",
    "check_store_url",
    "check_text",
    "check_zone",
    "escape_unsafe",
    "known_regions",
    "normalise_store_url",
]
