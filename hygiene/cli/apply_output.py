"""What ``hygiene apply`` prints: one line per proposal it acted on, every proposal it
left waiting with its date, and the totals (deleted, skipped by reason, failed, bytes).

A dry run says "would delete": nothing was changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hygiene.apply import ApplyResult
from hygiene.store import StoredProposal
from hygiene.units import human_bytes

# Apply's reasons for keeping an image, by how they start (hygiene.apply.images).
SKIP_KINDS: tuple[tuple[str, str], ...] = (
    ("new tag", "tagged since the proposal"),
    ("pulled at", "pulled since the proposal"),
    ("listed by image index", "listed by an index that stays"),
    ("its subject", "its signed image stays"),
    ("unit member", "another image of its unit stays"),
    ("its unit changed", "its unit changed since the proposal"),
    ("already gone", "already gone"),
    ("taken as a safe fix", "no rule whose fix is safe flags it now"),
)


def skip_kind(detail: str) -> str:
    for prefix, kind in SKIP_KINDS:
        if detail.startswith(prefix):
            return kind
    return detail.split(":", 1)[0] or "other"


@dataclass
class ApplyTotals:
    images: int = 0  # deleted (or would be)
    proposals: int = 0  # applied, or that deleted some of their images (or would)
    bytes: int = 0
    skipped_images: Counter[str] = field(default_factory=Counter)  # by reason
    skipped_proposals: int = 0
    failed: int = 0
    waiting: int = 0


def _image_bytes(stored: StoredProposal | None) -> dict[str, int]:
    if stored is None:
        return {}
    images = stored.proposal.evidence.get("images") or []
    return {str(i.get("digest")): int(i.get("bytes") or 0) for i in images}


def totals(result: ApplyResult, stored: Mapping[str, StoredProposal]) -> ApplyTotals:
    out = ApplyTotals(waiting=len(result.not_eligible))
    deleted = {"deleted", "would-delete"}
    acted: set[str] = set()
    for event in result.events:
        outcome = event.get("outcome")
        if outcome in deleted:
            out.images += 1
            acted.add(str(event.get("proposal_id")))
            sizes = _image_bytes(stored.get(str(event.get("proposal_id"))))
            out.bytes += sizes.get(str(event.get("digest")), 0)
        elif outcome in ("skipped", "gone"):
            out.skipped_images[skip_kind(str(event.get("detail") or outcome))] += 1
    for proposal_id, (state, _detail) in result.states.items():
        if state == "applied" or proposal_id in acted:
            out.proposals += 1
        if state == "skipped":
            out.skipped_proposals += 1
        elif state == "failed":
            out.failed += 1
    return out


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "no date yet"


def apply_lines(
    result: ApplyResult, stored: Mapping[str, StoredProposal], *, now: datetime
) -> list[str]:
    """The text ``hygiene apply`` prints for ``result`` (``stored``: the proposals by id)."""
    dry = result.dry_run
    lines: list[str] = []
    for proposal_id, (state, detail) in result.states.items():
        item = stored.get(proposal_id)
        where = item.proposal.repository if item else ""
        action = item.proposal.action.value if item else ""
        if dry and state == "applied":
            if action == "delete-images":
                count = sum(
                    1
                    for e in result.events
                    if e.get("proposal_id") == proposal_id and e.get("outcome") == "would-delete"
                )
                size = sum(
                    _image_bytes(item).get(str(e.get("digest")), 0)
                    for e in result.events
                    if e.get("proposal_id") == proposal_id and e.get("outcome") == "would-delete"
                )
                text = f"would delete {count} image(s), {human_bytes(size)}"
            else:
                text = f"would {action.replace('-', ' ')}"
            lines.append(f"{proposal_id}  {where}: {text}")
        else:
            lines.append(f"{proposal_id}  {where}: {state}: {detail}")
    waiting = sorted(
        result.not_eligible.items(),
        key=lambda item: (
            stored[item[0]].proposal.grace_until or now.replace(year=9999)
            if item[0] in stored
            else now.replace(year=9999),
            item[0],
        ),
    )
    if waiting:
        lines.append("")
        lines.append(f"not applied now ({len(waiting)}):")
        for proposal_id, why in waiting:
            item = stored.get(proposal_id)
            grace = item.proposal.grace_until if item else None
            where = item.proposal.repository if item else ""
            lines.append(f"  {proposal_id}  {where}  grace until {_when(grace)}: {why}")
    done = totals(result, stored)
    lines.append("")
    verb = "would delete" if dry else "deleted"
    summary = (
        f"{'dry run: ' if dry else ''}{verb} {done.images} image(s) "
        f"({human_bytes(done.bytes)}) in {done.proposals} proposal(s); "
    )
    if done.skipped_images:
        reasons = ", ".join(f"{n} {kind}" for kind, n in done.skipped_images.most_common())
        summary += f"skipped {sum(done.skipped_images.values())} image(s) ({reasons}); "
    else:
        summary += "skipped 0 images; "
    summary += f"{done.failed} failed; {done.waiting} not applied now"
    if not result.states and not result.not_eligible:
        summary = "nothing to apply"
    lines.append(summary)
    return lines


def stored_by_id(store: Any, result: ApplyResult) -> dict[str, StoredProposal]:
    ids = list(result.states) + list(result.not_eligible)
    return {s.id: s for s in store.proposals(ids=ids)} if ids else {}
