"""Sizes for people: one unit system for the CLI, reports, exports and docs.

Binary units with their IEC names: 1 KiB = 1024 B, 1 MiB = 1024 KiB, 1 GiB = 1024 MiB
(1,073,741,824 bytes). ECR bills storage per "GB-month" of this size, so a size and its
cost use the same unit. Sizes stay bytes until they are shown; :func:`split_size` picks
the unit and the reports format the number for their locale with it
(:meth:`hygiene.report.format.Formatter.size`).
"""

from __future__ import annotations

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
STEP = 1024


def split_size(value: float) -> tuple[float, str]:
    """``(number, unit)`` with the number below 1024 (bytes stay whole)."""
    amount = float(value)
    unit = 0
    while abs(amount) >= STEP and unit < len(UNITS) - 1:
        amount /= STEP
        unit += 1
    return amount, UNITS[unit]


def human_bytes(value: float) -> str:
    """``480_245_554_375`` → ``"447.3 GiB"``; ``512`` → ``"512 B"``."""
    if type(value) is int:  # the unit from the bit length: what split_size's loop finds
        amount = float(value)
        unit = min(len(UNITS) - 1, max(0, (int(abs(amount)).bit_length() - 1) // 10))
        if unit == 0:
            return f"{amount:.0f} B"
        return f"{amount / _POWERS[unit]:.1f} {UNITS[unit]}"  # exact: powers of two
    amount, name = split_size(value)
    return f"{amount:.0f} {name}" if name == "B" else f"{amount:.1f} {name}"


_POWERS = tuple(float(STEP**n) for n in range(len(UNITS)))
