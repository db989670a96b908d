"""Apply's last word on a repository: the deployed rules, run again on it as it is now.

A proposal's target and evidence were written by a scan, days earlier, into the store.
Whoever can write the store could change them (docs/approvals.md, "What remains the root
of trust"), and the configuration may have changed since (a new protected tag pattern,
a mutelist entry, a longer pull window). So right before deleting, apply reads the whole
repository again with the scan's own reader (:func:`hygiene.collect.ecr.collect_repository`)
and evaluates **its own deployed configuration's** rules on it with the scan's own engine
(:func:`hygiene.rules.engine.evaluate`). A digest is deleted only when a deleting rule
flags it now and no protection keeps it; anything else is skipped with the reason. A
proposal applied *as a safe fix* (``apply.auto_safe``, or approved and let past its grace
period because it is safe) deletes a digest only when a rule whose fix is declared safe
flags it now (:attr:`RulesNow.safe_units`): its stored ``fix_safety`` is not trusted.

Workloads are not re-read here: :mod:`hygiene.apply.in_use` does that (and the configured
``protections.in_use_images_file`` is honoured by the engine as in a scan).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hygiene.collect.ecr import RepositoryReadError, collect_repository
from hygiene.config import Config
from hygiene.fixsafety import safe_code
from hygiene.inventory import Inventory, RunInfo, build_images, build_repositories
from hygiene.model import Proposal, canonical_json
from hygiene.rules import RULES
from hygiene.rules.base import Deletes
from hygiene.rules.engine import evaluate


class RecheckError(Exception):
    """The repository could not be read again: nothing of the proposal is deleted now."""


@dataclass(frozen=True)
class RulesNow:
    """What the deployed rules say about one repository now."""

    deletable: frozenset[str]  # digests in a deletion unit of a deleting rule
    kept: dict[str, tuple[str, ...]]  # digest → protections that keep it
    muted: frozenset[str]  # digests whose finding an active mutelist entry suppresses
    repository_flagged: tuple[str, ...]  # codes of repository-deleting rules that flag it
    # digests in a deletion unit of an image rule (``deletable`` adds every image of a
    # repository a repository-deleting rule flags)
    image_units: frozenset[str] = frozenset()
    # digests in a deletion unit of an image rule whose fix is declared safe (IM001, IM004)
    safe_units: frozenset[str] = frozenset()
    # digest → codes of the deleting image rules whose fix is not safe that flag it now
    unsafe_codes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def why_not(
        self, digest: str, whole_repository: bool = False, safe_only: bool = False
    ) -> str | None:
        """None when the digest may go; otherwise why the deployed rules keep it now.

        Only a repository deletion (``whole_repository``) takes every image of a
        repository a repository-deleting rule (RP003) flags now; an image deletion needs
        an image rule that deletes it, whatever the repository rules say. ``safe_only``
        (a proposal applied as a safe fix, without an approval or a grace period): a
        rule whose fix is safe must flag it now, whatever the stored proposal says."""
        if digest in (self.deletable if whole_repository else self.image_units):
            if not safe_only or digest in self.safe_units:
                return None
            codes = ", ".join(self.unsafe_codes.get(digest, ())) or "a rule"
            return (
                "taken as a safe fix, but no rule whose fix is safe flags it now "
                f"({codes} does: it needs an approval and its grace period)"
            )
        if self.kept.get(digest):
            return "kept by the deployed rules now: " + ", ".join(self.kept[digest])
        if digest in self.muted:
            return "kept by the deployed rules now: mutelisted"
        return "no deleting rule of the deployed configuration flags it now"


def read_now(client: Any, proposal: Proposal, config: Config, now: datetime) -> Inventory:
    """``proposal``'s repository read whole again, the way a scan reads it, as a
    one-repository inventory. Raises :class:`RecheckError` when it cannot be read
    completely."""
    try:
        found = client.describe_repositories(
            registryId=proposal.account, repositoryNames=[proposal.repository]
        )["repositories"]
        if not found:
            raise RecheckError(f"{proposal.repository}: DescribeRepositories found nothing")
        # the registry the deletes go to (registryId), whatever the credentials' own is
        data = collect_repository(
            client, found[0], proposal.region, config.policy.collect, proposal.account
        )
    except RepositoryReadError as exc:
        raise RecheckError(
            f"could not read {proposal.repository} again ({exc}); nothing deleted"
        ) from exc
    except (ClientError, BotoCoreError) as exc:
        raise RecheckError(
            f"could not read {proposal.repository} again ({exc}); nothing deleted"
        ) from exc
    images = build_images(data.images)
    return Inventory(
        images=images,
        repositories=build_repositories([data.record], images),
        run=RunInfo(id=f"apply-recheck-{proposal.id}", started_at=now, finished_at=now),
    )


def proposed_now(client: Any, proposal: Proposal, config: Config, now: datetime) -> bool:
    """Do the deployed rules, evaluated on ``proposal``'s repository as it is now, propose
    exactly this change (same action, same target)? For repository settings: a change
    whose target was forged in the store, or that the configuration no longer asks for,
    is not made. Raises :class:`RecheckError` when the repository cannot be read."""
    from hygiene.plan import plan

    inventory = read_now(client, proposal, config, now)
    wanted = canonical_json(proposal.target)
    return any(
        p.action is proposal.action
        and p.repository == proposal.repository
        and canonical_json(p.target) == wanted
        for p in plan(evaluate(inventory, config, now), inventory, config, now)
    )


def rules_now(client: Any, proposal: Proposal, config: Config, now: datetime) -> RulesNow:
    """Read ``proposal``'s repository whole and evaluate the deployed rules on it.

    Raises :class:`RecheckError` when the repository cannot be read completely.
    """
    inventory = read_now(client, proposal, config, now)
    images = inventory.images
    evaluation = evaluate(inventory, config, now)
    deletable: set[str] = set()
    safe: set[str] = set()
    unsafe: dict[str, set[str]] = {}
    flagged: list[str] = []
    for finding in evaluation.findings:
        deletes = RULES[finding.code].deletes
        if deletes is Deletes.IMAGES:
            unit = [str(d) for d in finding.details.get("unit", ())]
            deletable.update(unit)
            if safe_code(finding.code):
                safe.update(unit)
            else:
                for digest in unit:
                    unsafe.setdefault(digest, set()).add(finding.code)
        elif deletes is Deletes.REPOSITORY and finding.repository == proposal.repository:
            flagged.append(finding.code)
    image_units = frozenset(deletable)
    if flagged:  # the repository goes whole: so do all its images
        deletable.update(str(d) for d in images["digest"])
    muted = {d for f in evaluation.muted for d in f.details.get("unit", ())}
    return RulesNow(
        deletable=frozenset(deletable),
        kept={k.image_digest: k.reasons for k in evaluation.kept},
        muted=frozenset(muted),
        repository_flagged=tuple(sorted(flagged)),
        image_units=image_units,
        safe_units=frozenset(safe),
        unsafe_codes={d: tuple(sorted(codes)) for d, codes in unsafe.items()},
    )
