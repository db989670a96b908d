"""Repository-level actions: delete a repository, put a lifecycle policy, enable scan on
push, set tag immutability, remove repository policy statements.

Each step re-reads the repository and decides: already in place (applied), changed
since the proposal (skipped), or a write. Before the write, an ``intent`` audit row saves
what the write replaces (settings, policy texts); the outcome row points back at it.
Policy texts are compared as canonical JSON (key order and whitespace do not matter).

Deleting an abandoned repository (RP003, whose evidence lists every image in it) is done
in two steps, never with a forced DeleteRepository: first its images, through the same
re-checked, batched and audited path as ``delete-images`` (:func:`delete_images`, all
images one unit: any change keeps them all), each manifest saved in its batch's intent;
then, once every image is gone, the empty repository. Anything pushed since the proposal
keeps the whole repository (skipped).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hygiene.apply.context import Context, finish
from hygiene.apply.images import delete_images, outcome_of, recorded_digests
from hygiene.apply.recheck import proposed_now, read_now
from hygiene.apply.registry import THROTTLING, error_code, jsonable, listed_digests
from hygiene.config import Config
from hygiene.errors import LifecycleError
from hygiene.lifecycle.diff import equivalent
from hygiene.lifecycle.generate import (
    generate_policy,
    in_use_shield_tags,
    with_in_use_shields,
)
from hygiene.lifecycle.preview import preview_policy
from hygiene.model import Action, Proposal, ProposalState


def _canonical(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


def _describe_repository(client: Any, proposal: Proposal) -> dict[str, Any] | None:
    try:
        response = client.describe_repositories(
            registryId=proposal.account, repositoryNames=[proposal.repository]
        )
    except ClientError as exc:
        if error_code(exc) == "RepositoryNotFoundException":
            return None
        raise
    repositories = response.get("repositories", [])
    return repositories[0] if repositories else None


def _optional_text(
    call: Callable[..., dict[str, Any]], key: str, missing: str, **kw: Any
) -> str | None:
    try:
        return str(call(**kw)[key])
    except ClientError as exc:
        if error_code(exc) in (missing, "RepositoryNotFoundException"):
            return None
        raise


@dataclass
class _Step:
    """What a repository-level action decided after re-reading the live state."""

    state: ProposalState | None  # None: go ahead and write
    detail: str
    write: Callable[[], Any] | None = None
    saved: dict[str, Any] = field(default_factory=dict)


def _step_delete_repository(client: Any, p: Proposal) -> _Step:
    repo = _describe_repository(client, p)
    if repo is None:
        return _Step(ProposalState.APPLIED, "repository already gone")
    images = client.list_images(
        registryId=p.account, repositoryName=p.repository, filter={"tagStatus": "ANY"}
    ).get("imageIds", [])
    if images:
        return _Step(ProposalState.SKIPPED, f"repository now holds {len(images)} image(s)")
    saved = {
        "repository": jsonable(repo),
        "repository_policy": _optional_text(
            client.get_repository_policy,
            "policyText",
            "RepositoryPolicyNotFoundException",
            registryId=p.account,
            repositoryName=p.repository,
        ),
        "lifecycle_policy": _optional_text(
            client.get_lifecycle_policy,
            "lifecyclePolicyText",
            "LifecyclePolicyNotFoundException",
            registryId=p.account,
            repositoryName=p.repository,
        ),
    }
    return _Step(
        None,
        "deleted the empty repository",
        lambda: client.delete_repository(registryId=p.account, repositoryName=p.repository),
        saved,
    )


def _step_scan_on_push(client: Any, p: Proposal) -> _Step:
    repo = _describe_repository(client, p)
    if repo is None:
        return _Step(ProposalState.SKIPPED, "repository is gone")
    if repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
        return _Step(ProposalState.APPLIED, "scan on push already enabled")
    return _Step(
        None,
        "enabled scan on push",
        lambda: client.put_image_scanning_configuration(
            registryId=p.account,
            repositoryName=p.repository,
            imageScanningConfiguration={"scanOnPush": True},
        ),
        {"scanOnPush": False},
    )


def _step_tag_immutability(client: Any, p: Proposal) -> _Step:
    repo = _describe_repository(client, p)
    if repo is None:
        return _Step(ProposalState.SKIPPED, "repository is gone")
    wanted = p.target["tag_mutability"]
    exclusions = list(p.target.get("exclusions") or [])
    current = repo.get("imageTagMutability")
    current_exclusions = sorted(
        f.get("filter", "") for f in repo.get("imageTagMutabilityExclusionFilters", []) or []
    )
    if current == wanted and current_exclusions == sorted(exclusions):
        return _Step(ProposalState.APPLIED, f"tag mutability already {wanted}")
    if current != p.evidence.get("tag_mutability"):
        return _Step(
            ProposalState.SKIPPED,
            "tag mutability changed since the proposal "
            f"({p.evidence.get('tag_mutability')} → {current})",
        )
    kwargs: dict[str, Any] = {"imageTagMutability": wanted}
    if wanted.endswith("_WITH_EXCLUSION"):
        kwargs["imageTagMutabilityExclusionFilters"] = [
            {"filterType": "WILDCARD", "filter": e} for e in exclusions
        ]
    return _Step(
        None,
        f"set tag mutability {wanted} (except {', '.join(exclusions)})",
        lambda: client.put_image_tag_mutability(
            registryId=p.account, repositoryName=p.repository, **kwargs
        ),
        {"imageTagMutability": current, "exclusions": current_exclusions},
    )


def _step_remove_statement(client: Any, p: Proposal) -> _Step:
    if _describe_repository(client, p) is None:
        return _Step(ProposalState.SKIPPED, "repository is gone")
    current = _optional_text(
        client.get_repository_policy,
        "policyText",
        "RepositoryPolicyNotFoundException",
        registryId=p.account,
        repositoryName=p.repository,
    )
    remove = {_canonical(json.dumps(s)) for s in p.target.get("statements", [])}
    if current is None:
        return _Step(ProposalState.APPLIED, "repository has no policy any more")
    document = json.loads(current)
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else list(statements)
    kept = [s for s in statements if _canonical(json.dumps(s)) not in remove]
    unchanged = _canonical(current) == _canonical(p.evidence.get("policy"))
    if len(kept) == len(statements):
        if unchanged:  # the proposal names statements its own evidence does not hold
            return _Step(ProposalState.FAILED, "proposal's statements are not in the policy")
        return _Step(ProposalState.APPLIED, "statement(s) already removed")
    if not unchanged:
        return _Step(ProposalState.SKIPPED, "repository policy changed since the proposal")
    if kept:
        document["Statement"] = kept
        new_text = json.dumps(document, indent=2)

        def write() -> Any:
            return client.set_repository_policy(
                registryId=p.account, repositoryName=p.repository, policyText=new_text
            )

    else:

        def write() -> Any:
            return client.delete_repository_policy(
                registryId=p.account, repositoryName=p.repository
            )

    removed = len(statements) - len(kept)
    return _Step(None, f"removed {removed} statement(s)", write, {"repository_policy": current})


def _step_lifecycle(client: Any, p: Proposal) -> _Step:
    if _describe_repository(client, p) is None:
        return _Step(ProposalState.SKIPPED, "repository is gone")
    current = _optional_text(
        client.get_lifecycle_policy,
        "lifecyclePolicyText",
        "LifecyclePolicyNotFoundException",
        registryId=p.account,
        repositoryName=p.repository,
    )
    policy = str(p.target["policy"])
    if current is not None and _canonical(current) == _canonical(policy):
        return _Step(ProposalState.APPLIED, "lifecycle policy already in place")
    if _canonical(current) != _canonical(p.evidence.get("current_policy")):
        return _Step(ProposalState.SKIPPED, "lifecycle policy changed since the proposal")
    return _Step(
        None,
        "put lifecycle policy",
        lambda: client.put_lifecycle_policy(
            registryId=p.account, repositoryName=p.repository, lifecyclePolicyText=policy
        ),
        {"lifecycle_policy": current},
    )


def lifecycle_not_deployed(config: Config, client: Any, p: Proposal) -> str | None:
    """Why the deployed configuration would not put ``p``'s lifecycle policy now (None:
    it would). A lifecycle policy is a deletion plan ECR carries out by itself, past every
    re-check apply makes for images, so apply puts only the policy its own configuration
    generates for the repository (a target forged in the store, or one the configuration
    no longer generates, is not), and never on a repository that opted out since."""
    repo = _describe_repository(client, p)
    if repo is None:
        return "repository is gone"
    key = config.policy.protections.opt_out_tag_key
    tags = client.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
    if any(t.get("Key") == key and str(t.get("Value", "")).lower() == "true" for t in tags):
        return f"{p.repository} opted out since the proposal (resource tag {key}=true)"
    try:
        generated = generate_policy(config, repository=p.repository)
    except LifecycleError as exc:
        return f"the deployed configuration generates no lifecycle policy for {p.repository}: {exc}"
    target = str(p.target.get("policy"))
    if not equivalent(target, generated.text):
        # the generated policy with exact-tag shields for images in use (each keeps the one
        # image its tag names: they only protect) is the deployed configuration's too
        tags = in_use_shield_tags(target, generated)
        try:
            shielded = with_in_use_shields(generated, tags) if tags else None
        except LifecycleError:
            shielded = None
        if shielded is None or not equivalent(target, shielded.text):
            return (
                "not the lifecycle policy the deployed configuration generates for "
                f"{p.repository} now"
            )
    return None


def lifecycle_in_use_now(ctx: Context, client: Any, p: Proposal) -> str | None:
    """Why ``p``'s policy must not be put because of what runs now (None: it may). The
    repository is read again whole, as a scan reads it, the policy previewed on it as it is
    now (``now``), and every image the preview would expire or archive asked of the
    workloads (:class:`~hygiene.apply.in_use.InUseCheck`, read now): ECR carries a policy
    out by itself, so this is the last look anyone takes. Raises
    :class:`~hygiene.apply.recheck.RecheckError` or
    :class:`~hygiene.apply.in_use.InUseUnknownError` when the repository or a source
    cannot be read (the proposal stays approved for the next apply)."""
    if ctx.in_use is None:
        return None
    inventory = read_now(client, p, ctx.config, ctx.now)
    preview = preview_policy(
        str(p.target["policy"]),
        inventory.images,
        now=ctx.now,
        repository=p.repository,
        never_pulled=ctx.config.policy.lifecycle.preview_never_pulled,
    )
    ctx.in_use.refresh()
    running = []
    for row in preview.actions.itertuples(index=False):
        why = ctx.in_use.reason(
            p.account, p.region, p.repository, str(row.digest), [str(t) for t in row.tags]
        )
        if why:
            running.append(f"{str(row.digest)[:19]} ({why})")
    if not running:
        return None
    shown = ", ".join(running[:3]) + (f" (+{len(running) - 3} more)" if len(running) > 3 else "")
    return (
        f"in use now: the policy would expire or archive {len(running)} image(s) a workload "
        f"runs: {shown}; not put"
    )


PROPOSED_NOW = (Action.SET_TAG_IMMUTABILITY, Action.REMOVE_POLICY_STATEMENT)
"""Settings changes made only as the deployed rules propose them for the repository now
(:func:`hygiene.apply.recheck.proposed_now`); enabling scan on push is the same write
whatever the target says."""


REPOSITORY_STEPS: dict[Action, Callable[[Any, Proposal], _Step]] = {
    Action.DELETE_REPOSITORY: _step_delete_repository,
    Action.ENABLE_SCAN_ON_PUSH: _step_scan_on_push,
    Action.SET_TAG_IMMUTABILITY: _step_tag_immutability,
    Action.REMOVE_POLICY_STATEMENT: _step_remove_statement,
    Action.PUT_LIFECYCLE_POLICY: _step_lifecycle,
}


def apply_repository(ctx: Context, proposal: Proposal) -> None:
    client = ctx.clients(proposal.account, proposal.region)
    step = REPOSITORY_STEPS[proposal.action](client, proposal)
    if step.state is not None:
        ctx.recorder.write(proposal, [{"outcome": step.state.value, "detail": step.detail}])
        finish(ctx, proposal, step.state, step.detail)
        return
    assert step.write is not None
    why = None
    if proposal.action is Action.PUT_LIFECYCLE_POLICY:
        why = lifecycle_not_deployed(ctx.config, client, proposal) or lifecycle_in_use_now(
            ctx, client, proposal
        )
    elif proposal.action in PROPOSED_NOW and not proposed_now(
        client, proposal, ctx.config, ctx.now
    ):
        why = (
            f"the deployed configuration does not propose this change for {proposal.repository} now"
        )
    if why is not None:
        ctx.recorder.write(proposal, [{"outcome": "skipped", "detail": why}])
        finish(ctx, proposal, ProposalState.SKIPPED, why)
        return
    if ctx.dry_run:
        ctx.recorder.write(proposal, [{"outcome": "would-apply", "detail": step.detail}])
        ctx.result.states[proposal.id] = ("would-apply", step.detail)
        return
    ctx.store.check_lock()  # taken over while this run was frozen: change nothing more
    (intent_id,) = ctx.recorder.write(
        proposal,
        [
            {
                "outcome": "intent",
                "detail": step.detail,
                "data": {"before": step.saved, "target": proposal.target},
            }
        ],
    )
    try:
        step.write()
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        if code == "RepositoryNotEmptyException":
            state, outcome = ProposalState.SKIPPED, "skipped"
        elif code in THROTTLING or isinstance(exc, BotoCoreError):
            ctx.recorder.write(
                proposal, [{"intent_id": intent_id, "outcome": "retry", "detail": str(exc)}]
            )
            ctx.result.states[proposal.id] = (proposal.state.value, f"retry later: {exc}")
            return
        else:
            state, outcome = ProposalState.FAILED, "failed"
        ctx.recorder.write(
            proposal, [{"intent_id": intent_id, "outcome": outcome, "detail": str(exc)}]
        )
        finish(ctx, proposal, state, str(exc))
        return
    ctx.recorder.write(
        proposal, [{"intent_id": intent_id, "outcome": "applied", "detail": step.detail}]
    )
    finish(ctx, proposal, ProposalState.APPLIED, step.detail)


def apply_repository_deletion(ctx: Context, proposal: Proposal) -> None:
    """``delete-repository``: an empty one at once; an abandoned one after its images
    (module docstring)."""
    expected = {str(i["digest"]) for i in proposal.evidence.get("images", [])}
    client = ctx.clients(proposal.account, proposal.region)
    if not expected or _describe_repository(client, proposal) is None:
        apply_repository(ctx, proposal)
        return
    live = listed_digests(client, proposal)
    new = sorted(live - expected)
    if new:
        detail = (
            f"{len(new)} image(s) pushed since the proposal ({', '.join(d[:19] for d in new[:3])}"
            f"{' …' if len(new) > 3 else ''}): the repository is in use again"
        )
        ctx.recorder.write(proposal, [{"outcome": "skipped", "detail": detail}])
        finish(ctx, proposal, ProposalState.SKIPPED, detail)
        return
    already = len(recorded_digests(ctx, proposal))
    wanted = sorted(live)
    deletion = delete_images(ctx, proposal, wanted, [wanted])
    state, detail = outcome_of(deletion, already, ctx.dry_run)
    if state is not ProposalState.APPLIED:
        if state is None:
            ctx.result.states[proposal.id] = (proposal.state.value, detail)  # stays approved
        else:
            finish(ctx, proposal, state, f"images: {detail}; the repository stays")
        return
    if ctx.dry_run:
        detail = f"images: {detail}; then delete the empty repository"
        ctx.recorder.write(proposal, [{"outcome": "would-apply", "detail": detail}])
        ctx.result.states[proposal.id] = ("would-apply", detail)
        return
    apply_repository(ctx, proposal)
