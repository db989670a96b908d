"""The AWS operations each proposal action calls, as IAM action names.

A test reads every ``client.<operation>`` call in :mod:`hygiene.apply` and checks it is
listed here; another runs image and repository deletions against the embedded registry
and checks that every operation they called, the re-check's reads through the scan's
reader included, is listed for its action (tests/apply/test_permissions_seen.py), and
one more that the in-use re-check's reads of the workloads are
(tests/workloads/test_apply_in_use.py). The
IAM policies themselves are generated from :mod:`hygiene.iam`, whose *cleaner* role
grants every action listed here (also tested).
"""

from __future__ import annotations

from collections.abc import Iterable

from hygiene.iam import declared_actions
from hygiene.model import Action

# The repository read whole again, as a scan reads it, so that the deployed rules judge the
# change on the repository as it is now (hygiene.apply.recheck: rules_now before deleting
# images, proposed_now before changing settings). Without one of these, apply keeps the
# images (a ``retry`` audit row; docs/approvals.md §6).
RE_READ = (
    "ecr:DescribeRepositories",
    "ecr:DescribeImages",
    "ecr:BatchGetImage",
    "ecr:GetLifecyclePolicy",
    "ecr:GetRepositoryPolicy",
    "ecr:ListTagsForResource",
)

# The workloads read again right before deleting images (hygiene.apply.in_use: ECS with its
# scheduled tasks, Lambda, Batch, as ``in_use.aws_sources`` says), with the role apply runs
# as; the same reads the discovery policy grants. Refused, apply deletes nothing and fails
# the run (docs/in-use.md).
IN_USE_READ = tuple(sorted(declared_actions("discovery")))

PERMISSIONS: dict[Action, tuple[str, ...]] = {
    Action.DELETE_IMAGES: (
        "ecr:DescribeImages",
        "ecr:ListImages",
        "ecr:BatchGetImage",
        "ecr:BatchDeleteImage",
        *RE_READ,
        *IN_USE_READ,
    ),
    Action.DELETE_REPOSITORY: (
        "ecr:DescribeRepositories",
        "ecr:ListImages",
        "ecr:GetRepositoryPolicy",
        "ecr:GetLifecyclePolicy",
        "ecr:DeleteRepository",
        # an abandoned repository's images go first, as delete-images does it
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:BatchDeleteImage",
        *RE_READ,
        *IN_USE_READ,
    ),
    Action.ENABLE_SCAN_ON_PUSH: ("ecr:DescribeRepositories", "ecr:PutImageScanningConfiguration"),
    Action.SET_TAG_IMMUTABILITY: (
        "ecr:DescribeRepositories",
        "ecr:PutImageTagMutability",
        *RE_READ,
    ),
    Action.REMOVE_POLICY_STATEMENT: (
        "ecr:DescribeRepositories",
        "ecr:GetRepositoryPolicy",
        "ecr:SetRepositoryPolicy",
        "ecr:DeleteRepositoryPolicy",
        *RE_READ,
    ),
    Action.PUT_LIFECYCLE_POLICY: (
        "ecr:DescribeRepositories",
        "ecr:ListTagsForResource",  # the opt-out tag, read again right before the put
        "ecr:GetLifecyclePolicy",
        "ecr:PutLifecyclePolicy",
        # the repository previewed as it is now, and the workloads asked whether any image
        # the policy would expire runs (hygiene.apply.repository.lifecycle_in_use_now)
        *RE_READ,
        *IN_USE_READ,
    ),
}


def required_permissions(actions: Iterable[Action] = tuple(Action)) -> list[str]:
    """Sorted IAM actions apply needs for ``actions`` (all by default)."""
    return sorted({p for action in actions for p in PERMISSIONS[action]})
