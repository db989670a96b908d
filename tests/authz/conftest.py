from __future__ import annotations

from tests.apply.conftest import clients, seeder

__all__ = ["clients", "seeder"]
