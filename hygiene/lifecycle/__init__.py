"""ECR lifecycle policies: generate from the config, validate against every ECR
constraint, preview locally with ECR's evaluation semantics, diff, and propose the PUT
as an unsafe fix. See docs/lifecycle.md."""

from hygiene.lifecycle.diff import PolicyDiff, diff_policies, equivalent, normalise
from hygiene.lifecycle.generate import (
    EffectiveLifecycle,
    GeneratedPolicy,
    effective_settings,
    generate_policy,
)
from hygiene.lifecycle.policy import LifecyclePolicy, LifecycleRule, parse_policy
from hygiene.lifecycle.preview import PreviewResult, preview_policy
from hygiene.lifecycle.propose import LifecyclePlan, build_proposal, plan_lifecycle, propose
from hygiene.lifecycle.validate import check_policy, validate_policy

__all__ = [
    "EffectiveLifecycle",
    "GeneratedPolicy",
    "LifecyclePlan",
    "LifecyclePolicy",
    "LifecycleRule",
    "PolicyDiff",
    "PreviewResult",
    "build_proposal",
    "check_policy",
    "diff_policies",
    "effective_settings",
    "equivalent",
    "generate_policy",
    "normalise",
    "parse_policy",
    "plan_lifecycle",
    "preview_policy",
    "propose",
    "validate_policy",
]
