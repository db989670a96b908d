"""The ``in-use`` protection: which image rows a workload names, and why, vectorised.

Input: the derived images frame (row = position), its tag table (row, tag), and the
references frame the collector recorded (``inventory.in_use``: source, where, account,
region, repository, tag, digest, running). A reference matches an image

* by digest: same repository and digest;
* by tag: same repository, and the image carries that tag now;

and in both cases only in the registry the reference names (account and region), or in
any when it names none (the in-use file's short form). Everything is a hash join on the
images of the repositories named, never a Python loop over images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

USE_COLUMNS = ("source", "where", "account", "region", "repository", "tag", "digest")


@dataclass
class InUse:
    """Per image row: whether a workload names it, and the first reason (else None)."""

    used: np.ndarray  # bool
    reasons: np.ndarray  # object: "in-use:<source>:<where>[ (+N more)]" or None


def _strings(values: pd.Series) -> pd.Series:
    """A key column as plain Python strings with None for missing (merge-safe)."""
    return values.astype(object).where(values.notna(), None)


def in_use(images: pd.DataFrame, tag_table: pd.DataFrame, uses: pd.DataFrame) -> InUse:
    n = len(images)
    used = np.zeros(n, dtype=bool)
    reasons = np.full(n, None, dtype=object)
    if not n or uses is None or not len(uses):
        return InUse(used, reasons)
    refs = pd.DataFrame({c: _strings(uses[c]) for c in USE_COLUMNS})
    refs["label"] = "in-use:" + refs["source"].astype(str) + ":" + refs["where"].astype(str)
    wanted = images["repository"].astype(object).isin(set(refs["repository"].dropna()))
    rows = np.flatnonzero(wanted.to_numpy(dtype=bool))
    if not len(rows):
        return InUse(used, reasons)
    candidates = pd.DataFrame(
        {
            "row": rows,
            "img_account": images["account"].astype(object).to_numpy()[rows],
            "img_region": images["region"].astype(object).to_numpy()[rows],
            "repository": images["repository"].astype(object).to_numpy()[rows],
            "digest": images["digest"].astype(object).to_numpy()[rows],
        }
    )
    pairs = [
        refs[refs["digest"].notna()].merge(candidates, on=["repository", "digest"]),
    ]
    if len(tag_table):
        tagged = tag_table[np.isin(tag_table["row"].to_numpy(), rows)]
        by_row = candidates.set_index("row")
        tags = pd.DataFrame(
            {
                "row": tagged["row"].to_numpy(),
                "tag": tagged["tag"].astype(object).to_numpy(),
            }
        ).join(by_row[["img_account", "img_region", "repository"]], on="row")
        pairs.append(
            refs[refs["tag"].notna()].drop(columns=["digest"]).merge(tags, on=["repository", "tag"])
        )
    matched = pd.concat(
        [p[["row", "label", "account", "region", "img_account", "img_region"]] for p in pairs]
    )
    same_registry = (matched["account"].isna() | (matched["account"] == matched["img_account"])) & (
        matched["region"].isna() | (matched["region"] == matched["img_region"])
    )
    matched = matched.loc[same_registry.to_numpy(dtype=bool), ["row", "label"]]
    if not len(matched):
        return InUse(used, reasons)
    matched = matched.drop_duplicates().sort_values(["row", "label"], kind="stable")
    counts = matched.groupby("row", sort=True).size()
    first = matched.drop_duplicates("row")
    hit = first["row"].to_numpy(dtype=np.int64)
    more = counts.reindex(hit).to_numpy() - 1
    text = first["label"].to_numpy(dtype=object)
    suffix = np.where(more > 0, " (+" + more.astype(str).astype(object) + " more)", "")
    used[hit] = True
    reasons[hit] = text + suffix
    return InUse(used, reasons)
