from __future__ import annotations

from tests.apply.conftest import seeder

__all__ = ["seeder"]
