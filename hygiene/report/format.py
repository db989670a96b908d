"""Locale-aware formatting of sizes, money, numbers and dates for the reports.

Sizes stay bytes until here. Sizes use binary units (KiB, MiB, GiB: what ECR bills as
"GB"); money is USD per month at ``policy.prices``; dates are shown in the project's
time zone (``Project.timezone``, else ``policy.report.timezone``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

from hygiene.units import split_size

GIB = 1024**3


def to_datetime(value: Any) -> datetime | None:
    """ISO text or datetime → aware datetime (naive is taken as UTC); None stays None."""
    if value is None or value == "":
        return None
    result = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return result if result.tzinfo else result.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Formatter:
    """The formatting functions a template calls as ``fmt.size(x)``, ``fmt.usd(x)`` …"""

    locale: str
    timezone: str
    usd_per_gib_month: float
    currency: str = "USD"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def number(self, value: float | int) -> str:
        return format_decimal(value, locale=self.locale)

    def size(self, value: float | int | None) -> str:
        """Human-readable binary size (:mod:`hygiene.units`): ``1.5 GiB`` / ``1,5 GiB``."""
        amount, unit = split_size(abs(float(value or 0)))
        sign = "-" if float(value or 0) < 0 else ""
        pattern = "#,##0" if unit == "B" else "#,##0.0"
        number = format_decimal(amount, format=pattern, locale=self.locale)
        return f"{sign}{number}\u00a0{unit}"

    def signed_size(self, value: int) -> str:
        return ("+" if value > 0 else "") + self.size(value)

    def signed_number(self, value: int) -> str:
        return ("+" if value > 0 else "") + self.number(value)

    def usd_month(self, size_bytes: float | int) -> float:
        return float(size_bytes) / GIB * self.usd_per_gib_month

    def money(self, amount: float) -> str:
        return format_currency(amount, self.currency, locale=self.locale)

    def cost(self, size_bytes: float | int) -> str:
        """Monthly storage cost of ``size_bytes`` at the configured price."""
        return self.money(self.usd_month(size_bytes))

    def percent(self, fraction: float) -> str:
        return format_percent(fraction, locale=self.locale)

    def datetime(self, value: Any) -> str:
        moment = to_datetime(value)
        if moment is None:
            return "—"
        return format_datetime(moment, format="medium", tzinfo=self.zone, locale=self.locale)

    def date(self, value: Any) -> str:
        """A moment's date in the report's zone; a calendar date (a day of the trend)
        is shown as it is."""
        if isinstance(value, date) and not isinstance(value, datetime):
            return format_date(value, format="medium", locale=self.locale)
        moment = to_datetime(value)
        if moment is None:
            return "—"
        return format_date(moment.astimezone(self.zone).date(), format="medium", locale=self.locale)

    def short_date(self, value: Any) -> str:
        moment = to_datetime(value)
        if moment is None:
            return "—"
        return format_date(moment.astimezone(self.zone).date(), format="short", locale=self.locale)

    def digest(self, value: str | None) -> str:
        """``sha256:abcdef…`` shortened to 12 hex digits, as ``docker images`` shows."""
        if not value:
            return "—"
        algorithm, _, hexpart = value.partition(":")
        return f"{algorithm}:{hexpart[:12]}" if hexpart else value[:19]
