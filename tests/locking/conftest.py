from __future__ import annotations

from tests.apply.conftest import seeder
from tests.store.conftest import store_url

__all__ = ["seeder", "store_url"]
