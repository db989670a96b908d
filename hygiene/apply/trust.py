"""What apply checks before it acts on a proposal's decision, and against what.

:func:`applying_policy`: apply verifies approvals against its *own* configuration, and
only when that configuration is the deployed one: its trust policy must be the one the
scheduled job pinned in the store (the job pins before it applies, so its own run always
passes). A hand-run apply with other admins, owners, accounts or ``auto_safe`` stops
with exit code 4 before anything is read; a dry run only says so.

:class:`Verifier`: for each proposal apply is about to carry out, the standing decision
(:func:`hygiene.authz.standing_decision`) must allow it. A rejection always stands; an
approval counts only when :func:`hygiene.authz.verify_approval` verifies it. What cannot
be verified is skipped with an ``unverified`` audit row.
"""

from __future__ import annotations

from dataclasses import dataclass

from hygiene.authz import (
    Decision,
    TrustPolicy,
    config_differs,
    standing_decision,
    verify_approval,
)
from hygiene.config import Config
from hygiene.errors import NotAuthorisedError
from hygiene.model import ProposalState
from hygiene.store import Store, StoredProposal


def applying_policy(store: Store, config: Config, *, dry_run: bool) -> tuple[TrustPolicy, str]:
    """The policy apply verifies against, and a note for a dry run that differs."""
    own = TrustPolicy.from_config(config)
    pinned = store.pinned_trust()
    if pinned is None:
        if dry_run:
            return own, "no deployed configuration is pinned yet; checked against yours"
        raise NotAuthorisedError(
            f"no deployed configuration is pinned in the store {store.url}: the scheduled "
            "job pins its admins and owners on every run (run `hygiene run nightly` once); "
            "nothing was applied"
        )
    differences = config_differs(config, pinned)
    if not differences:
        return own, ""
    why = (
        f"your configuration ({config.policy_path or 'rules'}) is not the deployed one "
        f"({pinned.describe()}): {'; '.join(differences)}"
    )
    if dry_run:
        return pinned.policy, why + "; checked against the deployed one"
    raise NotAuthorisedError(
        f"{why}; apply verifies approvals only with the deployed configuration: run it with "
        "the deployed rules (--rules-dir), or let the scheduled job pin yours; nothing was "
        "applied"
    )


@dataclass
class Verifier:
    """The decisions apply found, judged against ``policy``; ``demo_id`` is set only when
    this process itself proved that its registry is that demo's embedded one."""

    policy: TrustPolicy
    demo_id: str | None
    decisions: dict[str, list[Decision]]

    def check(self, stored: StoredProposal) -> tuple[bool, str]:
        """(may apply, why not)."""
        proposal = stored.proposal
        history = self.decisions.get(proposal.id, [])
        standing = standing_decision(proposal, history)
        if standing is not None and standing.decision == ProposalState.REJECTED.value:
            return False, f"rejected by {standing.approver}: {standing.reason or ''}".strip()
        if proposal.state == ProposalState.APPROVED:
            verdict = verify_approval(proposal, history, self.policy, self.demo_id)
            return verdict.counts, verdict.why
        return True, ""
