"""Sizes for people: one formatter for the CLI, plan summaries and lifecycle previews.

Decimal units (1 GB = 10^9 bytes), like the AWS console shows image sizes. The HTML
reports format sizes with Babel in binary units and say so (``GiB``).
"""

from __future__ import annotations


def human_bytes(value: float) -> str:
    """``5_410_000_000`` → ``"5.4 GB"``; ``512`` → ``"512 B"``."""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
