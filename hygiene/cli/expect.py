"""``--expect N[:DIGEST]``: the option of ``approve`` and ``reject --namespace``.

Its own module so that the commands' options can be declared without importing
:mod:`hygiene.cli.decisions` (what a decision selects and prints), which only ``approve``
and ``reject`` need, when they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from hygiene.model import SELECTION_DIGEST_LENGTH


@dataclass(frozen=True)
class Expectation:
    """``--expect N`` or ``--expect N:DIGEST``: how many proposals the admin reviewed
    and, with a digest (:func:`hygiene.model.selection_digest`), which."""

    count: int
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Expectation:
        count, sep, digest = text.strip().partition(":")
        if not count.isascii() or not count.isdigit():
            raise ValueError(f"{text!r}: give N or N:DIGEST (N a number of proposals)")
        if sep and not (
            len(digest) == SELECTION_DIGEST_LENGTH and set(digest) <= set("0123456789abcdef")
        ):
            raise ValueError(
                f"{text!r}: DIGEST is {SELECTION_DIGEST_LENGTH} lowercase hex digits, as the "
                "report prints it"
            )
        return cls(int(count), digest or None)

    def __str__(self) -> str:
        return f"{self.count}:{self.digest}" if self.digest else str(self.count)


class _ExpectType(click.ParamType):
    name = "N[:DIGEST]"

    def convert(self, value: Any, param: Any, ctx: Any) -> Expectation:
        if isinstance(value, Expectation):
            return value
        try:
            return Expectation.parse(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def expect_option(func: Any) -> Any:
    return click.option(
        "--expect",
        type=_ExpectType(),
        metavar="N[:DIGEST]",
        help="With --namespace: the number of proposals you reviewed and, after a colon, "
        "the digest of their ids the report prints; if the selection has another number "
        "or other proposals, nothing is decided (exit 2).",
    )(func)
