"""Which decision stands, and when apply may count an approval (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hygiene.authz.decisions import Decision, content_hash, standing_decision, verify_approval
from hygiene.authz.policy import TrustPolicy
from hygiene.model import Action, FixSafety, Proposal, ProposalState

LAB = "851296927411"
ADMIN = f"arn:aws:sts::{LAB}:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/a"
DEV = f"arn:aws:sts::{LAB}:assumed-role/AWSReservedSSO_Developer_0123456789abcdef/bob"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = TrustPolicy(accounts=(LAB,), admins=("AdministratorAccess", "os:root"), objectors={})

PROPOSAL = Proposal(
    id="p-0123456789ab",
    action=Action.DELETE_IMAGES,
    account=LAB,
    region="us-east-1",
    repository="suporte/api",
    namespace="suporte",
    target={"digests": ["sha256:" + "a" * 64]},
    evidence={"images": [{"digest": "sha256:" + "a" * 64, "tags": []}]},
    rule_codes=("IM002",),
    fix_safety=FixSafety.UNSAFE,
    state=ProposalState.APPROVED,
    first_seen=T0,
)


def decision(
    n: int, what: str = "approved", who: str = ADMIN, source: str = "sts", **kw
) -> Decision:
    values = {
        "id": n,
        "proposal_id": PROPOSAL.id,
        "decision": what,
        "approver": who,
        "reason": None if what == "approved" else "no",
        "at": T0 + timedelta(hours=n),
        "content_hash": content_hash(PROPOSAL),
        "source": source,
    }
    values.update(kw)
    return Decision(**values)


def test_an_admin_approval_of_this_very_proposal_counts() -> None:
    verdict = verify_approval(PROPOSAL, [decision(1)], POLICY, None)
    assert verdict.counts and "AdministratorAccess" in verdict.why


def test_only_the_newest_decision_stands() -> None:
    assert not verify_approval(
        PROPOSAL, [decision(1), decision(2, "rejected")], POLICY, None
    ).counts
    # a rejection, then an admin's approval: the approval stands
    assert verify_approval(PROPOSAL, [decision(2), decision(1, "rejected")], POLICY, None).counts
    # an admin's approval followed by anyone's approval that cannot be verified
    later = decision(3, who=DEV)
    verdict = verify_approval(PROPOSAL, [decision(1), later], POLICY, None)
    assert not verdict.counts and "not an admin" in verdict.why


def test_changed_content_or_a_new_incarnation_has_no_standing_decision() -> None:
    approved = [decision(1)]
    retargeted = replace(PROPOSAL, target={"digests": ["sha256:" + "b" * 64]})
    assert not verify_approval(retargeted, approved, POLICY, None).counts
    assert not verify_approval(
        replace(PROPOSAL, fix_safety=FixSafety.SAFE), approved, POLICY, None
    ).counts
    revived = replace(PROPOSAL, first_seen=T0 + timedelta(days=20))
    verdict = verify_approval(revived, approved, POLICY, None)
    assert not verdict.counts and "no approval on record" in verdict.why
    assert standing_decision(PROPOSAL, [decision(1, content_hash=None)]) is None
    other = decision(1, proposal_id="p-ffffffffffff")
    assert standing_decision(PROPOSAL, [other]) is None


def test_os_approvals_count_only_inside_the_same_verified_demo() -> None:
    demo = decision(1, who="os:root", source="demo:d1")
    assert verify_approval(PROPOSAL, [demo], POLICY, "d1").counts
    outside = verify_approval(PROPOSAL, [demo], POLICY, None)
    assert not outside.counts and "only inside the demo" in outside.why
    assert not verify_approval(PROPOSAL, [demo], POLICY, "d2").counts
    claimed = decision(1, who="os:root", source="sts")  # written straight into the store
    assert not verify_approval(PROPOSAL, [claimed], POLICY, "d1").counts
    assert not verify_approval(
        PROPOSAL, [decision(1, who="os:eve", source="demo:d1")], POLICY, "d1"
    ).counts


def test_an_arn_approval_must_come_from_sts() -> None:
    assert not verify_approval(PROPOSAL, [decision(1, source="demo:d1")], POLICY, "d1").counts
    assert not verify_approval(PROPOSAL, [decision(1, source=None)], POLICY, None).counts
