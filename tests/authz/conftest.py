from __future__ import annotations

from tests.apply.conftest import clients, seeded, seeder

__all__ = ["clients", "seeded", "seeder"]
