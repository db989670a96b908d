"""The sessions the tool makes read AWS's times as UTC datetimes, in C.

ECR, ECS, Lambda and Batch speak AWS's JSON protocols, which send a time as seconds
since the epoch (``"imagePushedAt": 1732723714.0``). botocore turns each into a
``datetime`` with its default parser, ``botocore.utils.parse_timestamp``: it builds a
``dateutil`` local zone for every value and converts through it in Python: parsing a
DescribeImages page of 50 images takes 0.71 ms of CPU with it and 0.28 ms with
:func:`utc_timestamp` (docs/benchmarks.md, "Round 10: times read in UTC"), and every
frame conversion of those datetimes then calls back into the same Python zone once per
value.

:func:`utc_timestamp` gives the **same instant** as an aware ``datetime`` in UTC,
through ``datetime.fromtimestamp`` with the C library's UTC zone. Anything that is not a
plain number (the ISO 8601 and RFC 822 text of the XML and query protocols: S3, STS), and
a number ``fromtimestamp`` cannot take, goes to botocore's own parser, unchanged.

botocore documents the hook: a session's ``response_parser_factory`` component takes
parser defaults (``set_parser_defaults(timestamp_parser=...)``), used by every client the
session makes afterwards. What changes for a reader: a time the tool prints from a
response is written in UTC (``+00:00``), never in the machine's zone; the tool's own
times already are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
import botocore.utils

_NUMBERS = (int, float)


def utc_timestamp(value: Any) -> datetime:
    """A response's time as an aware ``datetime`` in UTC (see the module's text)."""
    if type(value) in _NUMBERS:  # not bool, not a numeric string
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass  # botocore's parser has a fallback for the out-of-range
    return botocore.utils.parse_timestamp(value)  # type: ignore[no-any-return]


def botocore_session() -> botocore.session.Session:
    """A new botocore session whose clients parse times with :func:`utc_timestamp`."""
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=utc_timestamp
    )
    return core


def new_session(**options: Any) -> boto3.Session:
    """``boto3.Session(**options)`` on a :func:`botocore_session`: the only way the tool
    (and its embedded registry) makes a session of its own."""
    return boto3.Session(botocore_session=botocore_session(), **options)
