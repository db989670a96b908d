"""Where a repository is, as the reports name it.

A repository name is unique only within one account and region: with several accounts
(``registry.accounts``) the same ``suporte/api`` can exist in each, and a report that
printed the name alone would mix them up. So while a report covers one account and one
region it names a repository by its name; once it covers several accounts it adds the
account, and once it covers several regions the region: ``suporte/api (111122223333,
sa-east-1)``. The CSV and JSON exports always carry ``account`` and ``region`` columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hygiene.report.data import ReportData
from hygiene.report.findingrows import present


@dataclass(frozen=True)
class Places:
    """How one report names places: with the account and/or region when it spans several."""

    accounts: bool = False
    regions: bool = False

    def label(self, repository: str, account: Any = None, region: Any = None) -> str:
        extra = [
            str(value)
            for shown, value in ((self.accounts, account), (self.regions, region))
            if shown and value
        ]
        return f"{repository} ({', '.join(extra)})" if extra else repository

    def of(self, item: Any) -> str:
        """The label of anything with a ``repository`` (or ``name``, or ``namespace``)
        and, optionally, ``account`` and ``region``: a mapping or an object."""
        if isinstance(item, Mapping):
            values = item
        else:
            values = {k: getattr(item, k, None) for k in ("repository", "name", "namespace",
                                                         "account", "region")}  # fmt: skip
        where = values.get("repository") or values.get("name") or values.get("namespace") or "—"
        return self.label(str(where), values.get("account"), values.get("region"))


PLAIN = Places()
"""One account and region: a repository is its name."""


def _values(items: Iterable[Any], key: str) -> set[str]:
    out = set()
    for item in items:
        value = item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)
        if value:
            out.add(str(value))
    return out


def places_of(data: ReportData) -> Places:
    """The naming every report of ``data`` uses (the whole registry decides, so the
    nightly and every weekly report name a repository the same way)."""
    everything: list[Iterable[Any]] = [data.repositories, data.proposals, data.kept]
    columns = data.finding_rows.columns()
    accounts = present(columns.account).union(*(_values(items, "account") for items in everything))
    regions = present(columns.region).union(*(_values(items, "region") for items in everything))
    return Places(accounts=len(accounts) > 1, regions=len(regions) > 1)
