"""Apply: carry out eligible proposals on the registry, never losing anything.

Which proposals run (:func:`eligibility`):

- *approved* ones; unsafe (and manual) ones only once their grace date has passed —
  a proposal whose owners were never notified has no grace date and never runs;
- *proposed* safe ones only when ``apply.auto_safe`` is on;
- never rejected, expired or finished ones.

How an image deletion runs (:func:`_apply_images`), one repository at a time:

1. Re-read every target with ``DescribeImages`` by digest (≤ 100 ids a call). Missing →
   recorded ``gone``. A new tag, a pull newer than the evidence, an index outside the
   proposal that now lists it, or (for a referrer) a subject that exists and is kept →
   its whole unit is ``skipped`` with the reason.
2. Save each manifest (``BatchGetImage``) into the ``intent`` audit row of its batch.
3. ``BatchDeleteImage`` by digest, ≤ ``batch_size`` (≤ 100) ids a call, index batches
   before child batches; every ``failures[]`` code is mapped explicitly
   (:data:`FAILURE_OUTCOMES`); each batch's outcomes are committed before the next.

Crash safety: the intent row is committed before each write call; outcome rows point
back at it. On start, :func:`reconcile` finds intents without outcomes (a run killed
mid-batch), re-reads their targets and records ``deleted`` (gone now) or
``not-deleted`` (still there; the proposal stays approved and is retried in this same
run). Digests already recorded ``deleted``/``gone`` for a proposal are never sent again.

``dry_run=True`` is the same code with every write (registry and store) left out; the
would-be audit rows come back in :class:`ApplyResult`.

What each action reads from a :class:`~hygiene.model.Proposal` (the contract for
anyone building proposals, e.g. :mod:`hygiene.lifecycle`):

======================== =========================================== ==========================
action                   target                                      evidence (re-checked)
======================== =========================================== ==========================
delete-images            ``digests`` (indexes first)                 ``images`` [{digest, tags,
                                                                     last_pull, is_index …}],
                                                                     ``units`` [[digest …]]
delete-repository        ``repository``                              (repository must be empty)
put-lifecycle-policy     ``policy`` (JSON text)                      ``current_policy`` (text or
                                                                     None): must equal the live
                                                                     policy, else skipped
enable-scan-on-push      ``scan_on_push: true``                      —
set-tag-immutability     ``tag_mutability``, ``exclusions`` [str]    ``tag_mutability``
remove-policy-statement  ``statements`` [statement objects]          ``policy`` (text)
======================== =========================================== ==========================

Policy texts are compared as canonical JSON (key order and whitespace do not matter).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hygiene.config import Config
from hygiene.errors import ApplyError
from hygiene.inventory import INDEX_MEDIA_TYPES, legacy_signature_subject
from hygiene.model import Action, FixSafety, Proposal, ProposalState
from hygiene.store import Store, StoredProposal, whoami

log = logging.getLogger(__name__)

ClientFactory = Callable[[str, str], Any]
"""``clients(account, region)`` → a boto3 ECR client for that registry."""

MAX_IDS = 100
ACCEPTED_MEDIA_TYPES = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
]

# BatchDeleteImage failures[].failureCode → (outcome, explanation). ``retry`` leaves the
# proposal approved for the next apply; ``gone`` counts as done.
FAILURE_OUTCOMES: dict[str, tuple[str, str]] = {
    "ImageNotFound": ("gone", "already gone (ImageNotFound)"),
    "ImageReferencedByManifestList": (
        "skipped",
        "an image index not in this proposal still lists it (ImageReferencedByManifestList)",
    ),
    "UpstreamTooManyRequests": ("retry", "upstream registry throttled; retried by the next apply"),
    "UpstreamUnavailable": ("retry", "upstream registry unavailable; retried by the next apply"),
    "UpstreamAccessDenied": ("failed", "upstream registry denied access (UpstreamAccessDenied)"),
    "KmsError": ("failed", "KMS refused the operation (KmsError): check the repository's key"),
    "InvalidImageDigest": ("failed", "ECR says the digest is invalid (InvalidImageDigest)"),
    "InvalidImageTag": ("failed", "ECR says a tag is invalid (InvalidImageTag)"),
    "ImageTagDoesNotMatchDigest": (
        "failed",
        "tag and digest disagree (ImageTagDoesNotMatchDigest)",
    ),
    "MissingDigestAndTag": ("failed", "request had neither digest nor tag (MissingDigestAndTag)"),
}
THROTTLING = {
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailableException",
    "ServerException",
}
DONE_OUTCOMES = ("deleted", "gone")


class SimulatedCrash(BaseException):
    """Raised by tests' fault injection; not an Exception so nothing swallows it."""


@dataclass
class ApplyResult:
    run_id: str | None
    dry_run: bool
    states: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (state, detail)
    not_eligible: dict[str, str] = field(default_factory=dict)  # id → why not
    events: list[dict[str, Any]] = field(default_factory=list)  # audit rows (written or not)

    def count(self, outcome: str) -> int:
        return sum(1 for e in self.events if e["outcome"] == outcome)

    @property
    def failed(self) -> list[str]:
        return [i for i, (state, _) in self.states.items() if state == ProposalState.FAILED]

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "proposals": {i: {"state": s, "detail": d} for i, (s, d) in self.states.items()},
            "not_eligible": self.not_eligible,
            "deleted": self.count("deleted"),
            "would_delete": self.count("would-delete"),
            "events": [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in e.items()}
                for e in self.events
            ],
        }


def eligibility(stored: StoredProposal, config: Config, now: datetime) -> tuple[bool, str]:
    """May ``stored`` be applied at ``now``? Returns (yes/no, why)."""
    proposal = stored.proposal
    settings = config.policy.apply
    if proposal.state == ProposalState.APPROVED:
        if proposal.fix_safety != FixSafety.SAFE:
            if proposal.grace_until is None:
                return False, "approved, but owners were never notified (no grace date yet)"
            if now < proposal.grace_until:
                return False, f"approved, in grace period until {proposal.grace_until.isoformat()}"
        return True, f"approved by {stored.decided_by}"
    if proposal.state == ProposalState.PROPOSED:
        if proposal.fix_safety == FixSafety.SAFE and settings.auto_safe:
            return True, "safe fix and apply.auto_safe is on"
        if proposal.fix_safety == FixSafety.SAFE:
            return False, "safe fix awaiting approval (apply.auto_safe is off)"
        return False, "unsafe fix awaiting approval"
    return False, f"state is {proposal.state.value}"


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _canonical(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Recorder:
    """Audit rows: committed to the store, or (dry run) only collected."""

    def __init__(self, store: Store, result: ApplyResult, actor: str, now: datetime) -> None:
        self.store, self.result, self.actor, self.now = store, result, actor, now
        self._fake_id = 0

    def write(self, proposal: Proposal | None, rows: list[dict[str, Any]]) -> list[int]:
        full = []
        for row in rows:
            entry = {
                "run_id": self.result.run_id,
                "proposal_id": proposal.id if proposal else None,
                "actor": self.actor,
                "action": proposal.action.value if proposal else "apply",
                "account": proposal.account if proposal else None,
                "region": proposal.region if proposal else None,
                "repository": proposal.repository if proposal else None,
                "dry_run": self.result.dry_run,
                "at": datetime.now(UTC),
            }
            entry.update(row)
            if self.result.dry_run and entry["outcome"] == "deleted":
                entry["outcome"] = "would-delete"
            full.append(entry)
        if not full:
            return []
        if self.result.dry_run:
            ids = []
            for _entry in full:
                self._fake_id -= 1
                ids.append(self._fake_id)
        else:
            ids = self.store.audit_many(full)
        self.result.events.extend(full)
        return ids


# --------------------------------------------------------------------------- reading


def describe_digests(
    client: Any, proposal: Proposal, digests: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Live ``imageDetails`` by digest, and the digests that no longer exist.

    ECR answers a missing id with ``ImageNotFoundException`` for the whole call
    (DescribeImages has no ``failures[]``), and so does moto. On that exception the
    repository's digests are listed once (``ListImages``, 1000 a page) to tell which are
    gone, and the rest are described again; should the two disagree (a push or delete
    in between), the batch is split in halves until each missing digest is isolated. A
    digest silently left out of an answer counts as gone too.
    """
    live: dict[str, dict[str, Any]] = {}
    missing: set[str] = set()
    listing: list[set[str]] = []  # filled once, on the first ImageNotFoundException

    def listed() -> set[str]:
        if not listing:
            found: set[str] = set()
            paginator = client.get_paginator("list_images")
            pages = paginator.paginate(
                registryId=proposal.account,
                repositoryName=proposal.repository,
                filter={"tagStatus": "ANY"},
                PaginationConfig={"PageSize": 1000},
            )
            for page in pages:
                found.update(
                    i["imageDigest"] for i in page.get("imageIds", []) if "imageDigest" in i
                )
            listing.append(found)
        return listing[0]

    def read(batch: list[str], trust_listing: bool = True) -> None:
        try:
            response = client.describe_images(
                registryId=proposal.account,
                repositoryName=proposal.repository,
                imageIds=[{"imageDigest": d} for d in batch],
            )
        except ClientError as exc:
            code = _error_code(exc)
            if code == "RepositoryNotFoundException":
                missing.update(batch)
                return
            if code != "ImageNotFoundException":
                raise
            if trust_listing:
                present = [d for d in batch if d in listed()]
                missing.update(d for d in batch if d not in listed())
                if not present:
                    return
                if len(present) < len(batch):
                    read(present, trust_listing=False)
                    return
                # the listing says all are there: a race, isolate below
            if len(batch) == 1:
                missing.update(batch)
                return
            half = len(batch) // 2
            read(batch[:half], trust_listing=False)
            read(batch[half:], trust_listing=False)
            return
        for detail in response.get("imageDetails", []):
            live[detail["imageDigest"]] = detail
        missing.update(d for d in batch if d not in live)

    for batch in _chunks(list(digests), MAX_IDS):
        read(batch)
    return live, missing - set(live)


def get_manifests(
    client: Any, proposal: Proposal, digests: Sequence[str]
) -> dict[str, dict[str, str]]:
    """``{digest: {"mediaType", "manifest"}}`` via BatchGetImage (≤ 100 ids a call)."""
    manifests: dict[str, dict[str, str]] = {}
    for batch in _chunks(list(digests), MAX_IDS):
        response = client.batch_get_image(
            registryId=proposal.account,
            repositoryName=proposal.repository,
            imageIds=[{"imageDigest": d} for d in batch],
            acceptedMediaTypes=ACCEPTED_MEDIA_TYPES,
        )
        for image in response.get("images", []):
            digest = image["imageId"].get("imageDigest")
            if digest:
                manifests[digest] = {
                    "mediaType": image.get("imageManifestMediaType", ""),
                    "manifest": image.get("imageManifest", ""),
                }
    return manifests


def repository_links(client: Any, proposal: Proposal) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Read the repository now: (child digest → image indexes listing it, referrer digest
    → its subject digest, for subjects present in the repository).

    A referrer is an OCI 1.1 ``subjectManifestDigest`` or a legacy cosign tag
    ``sha256-<hex>.sig|att|sbom``.
    """
    indexes: list[str] = []
    present: set[str] = set()
    subject_of: dict[str, str] = {}
    paginator = client.get_paginator("describe_images")
    pages = paginator.paginate(
        registryId=proposal.account,
        repositoryName=proposal.repository,
        PaginationConfig={"PageSize": 1000},
    )
    for page in pages:
        for detail in page.get("imageDetails", []):
            digest = detail["imageDigest"]
            present.add(digest)
            if detail.get("imageManifestMediaType") in INDEX_MEDIA_TYPES:
                indexes.append(digest)
            subject = detail.get("subjectManifestDigest")
            if subject is None:
                legacy = {legacy_signature_subject(t) for t in detail.get("imageTags", [])}
                found = sorted(s for s in legacy if s is not None)
                subject = found[0] if len(found) == 1 else None
            if subject:
                subject_of[digest] = str(subject)
    parents: dict[str, set[str]] = {}
    for digest, manifest in get_manifests(client, proposal, indexes).items():
        try:
            body = json.loads(manifest["manifest"])
        except ValueError:
            continue
        for child in body.get("manifests", []) or []:
            if child.get("digest"):
                parents.setdefault(child["digest"], set()).add(digest)
    return parents, {d: s for d, s in subject_of.items() if s in present}


# --------------------------------------------------------------------------- applying


@dataclass
class _Context:
    store: Store
    clients: ClientFactory
    config: Config
    now: datetime
    recorder: _Recorder
    result: ApplyResult

    @property
    def dry_run(self) -> bool:
        return self.result.dry_run


def _finish(ctx: _Context, proposal: Proposal, state: ProposalState, detail: str) -> None:
    ctx.result.states[proposal.id] = (state.value, detail)
    if not ctx.dry_run:
        ctx.store.set_state(proposal.id, state, detail, ctx.now)
    log.info("%s %s: %s (%s)", proposal.id, proposal.action.value, state.value, detail)


def _recorded_digests(ctx: _Context, proposal: Proposal) -> set[str]:
    entries = ctx.store.audit_log(
        proposal_id=proposal.id, outcome=DONE_OUTCOMES, include_dry_run=False
    )
    return {e.digest for e in entries if e.digest}


def _apply_images(ctx: _Context, proposal: Proposal) -> None:
    client = ctx.clients(proposal.account, proposal.region)
    done = _recorded_digests(ctx, proposal)
    evidence = {i["digest"]: i for i in proposal.evidence.get("images", [])}
    wanted = [d for d in proposal.target.get("digests", []) if d not in done]
    units = [list(u) for u in proposal.evidence.get("units", [])]
    unit_of: dict[str, int] = {}
    for number, unit in enumerate(units):
        for digest in unit:
            unit_of.setdefault(digest, number)
    for digest in wanted:
        if digest not in unit_of:
            unit_of[digest] = len(units)
            units.append([digest])

    live, missing = describe_digests(client, proposal, wanted)
    ctx.recorder.write(
        proposal,
        [
            {"digest": d, "outcome": "gone", "detail": "already gone before apply"}
            for d in wanted
            if d in missing
        ],
    )

    reasons: dict[str, str] = {}
    for digest, detail in live.items():
        seen = evidence.get(digest, {})
        new_tags = sorted(set(detail.get("imageTags", [])) - set(seen.get("tags", [])))
        if new_tags:
            reasons[digest] = f"new tag(s) since the proposal: {', '.join(new_tags)}"
            continue
        pulled = _parse_time(detail.get("lastRecordedPullTime"))
        before = _parse_time(seen.get("last_pull"))
        if pulled is not None and (before is None or pulled > before):
            reasons[digest] = f"pulled at {pulled.isoformat()} after the proposal"

    parents, subjects = repository_links(client, proposal) if live else ({}, {})
    skipped_units = {unit_of[d] for d in reasons}
    while True:  # a kept image keeps its children and referrers: iterate to a fixed point
        deletable = {d for d in live if unit_of[d] not in skipped_units}
        newly = False
        for digest in sorted(deletable):
            outside = parents.get(digest, set()) - deletable
            subject = subjects.get(digest)
            if outside:
                why = f"listed by image index(es) not being deleted: {', '.join(sorted(outside))}"
            elif subject is not None and subject not in deletable:
                why = f"its subject {subject} exists and is not being deleted"
            else:
                continue
            reasons.setdefault(digest, why)
            skipped_units.add(unit_of[digest])
            newly = True
        if not newly:
            break

    skip_rows = []
    for digest in wanted:
        if digest in live and unit_of[digest] in skipped_units:
            why = reasons.get(digest) or next(
                (
                    f"unit member {m[:19]}…: {reasons[m]}"
                    for m in units[unit_of[digest]]
                    if m in reasons
                ),
                "its unit changed since the proposal",
            )
            skip_rows.append({"digest": digest, "outcome": "skipped", "detail": why})
    ctx.recorder.write(proposal, skip_rows)

    def is_index(digest: str) -> bool:
        media = live[digest].get("imageManifestMediaType") or evidence.get(digest, {}).get(
            "media_type"
        )
        return media in INDEX_MEDIA_TYPES or bool(evidence.get(digest, {}).get("is_index"))

    to_delete = [d for d in wanted if d in live and unit_of[d] not in skipped_units]
    ordered = [d for d in to_delete if is_index(d)] + [d for d in to_delete if not is_index(d)]
    manifests = get_manifests(client, proposal, ordered) if ordered else {}
    batch_size = min(ctx.config.policy.apply.batch_size, MAX_IDS)
    batches = list(_chunks([d for d in ordered if is_index(d)], batch_size))
    batches += list(_chunks([d for d in ordered if not is_index(d)], batch_size))

    outcomes: dict[str, str] = {}
    for number, batch in enumerate(batches):
        if ctx.dry_run:
            ctx.recorder.write(
                proposal,
                [{"digest": d, "outcome": "deleted", "detail": "dry run"} for d in batch],
            )
            outcomes.update(dict.fromkeys(batch, "deleted"))
            continue
        (intent_id,) = ctx.recorder.write(
            proposal,
            [
                {
                    "outcome": "intent",
                    "detail": f"batch {number + 1}/{len(batches)}: delete {len(batch)} image(s)",
                    "data": {
                        "digests": batch,
                        "manifests": {d: manifests.get(d) for d in batch},
                        "details": {d: _jsonable(live[d]) for d in batch},
                    },
                }
            ],
        )
        try:
            response = client.batch_delete_image(
                registryId=proposal.account,
                repositoryName=proposal.repository,
                imageIds=[{"imageDigest": d} for d in batch],
            )
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            outcome = "retry" if code in THROTTLING or isinstance(exc, BotoCoreError) else "failed"
            ctx.recorder.write(
                proposal,
                [
                    {"digest": d, "intent_id": intent_id, "outcome": outcome, "detail": str(exc)}
                    for d in batch
                ],
            )
            outcomes.update(dict.fromkeys(batch, outcome))
            break
        rows = _delete_outcomes(batch, response, intent_id)
        unreported = [r["digest"] for r in rows if r["outcome"] == "unreported"]
        if unreported:
            # Neither in imageIds nor in failures[] (moto does this for untagged images):
            # the live registry decides.
            still, _ = describe_digests(client, proposal, unreported)
            for row in rows:
                if row["outcome"] == "unreported":
                    present = row["digest"] in still
                    row["outcome"] = "retry" if present else "deleted"
                    row["detail"] = (
                        "not reported by BatchDeleteImage and still present; retried next apply"
                        if present
                        else "not reported by BatchDeleteImage; confirmed gone by re-reading"
                    )
        ctx.recorder.write(proposal, rows)
        outcomes.update({row["digest"]: row["outcome"] for row in rows})

    _finish_images(ctx, proposal, wanted, missing, skip_rows, outcomes, len(done))


def _delete_outcomes(
    batch: list[str], response: dict[str, Any], intent_id: int
) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for image_id in response.get("imageIds", []):
        digest = image_id.get("imageDigest")
        if digest:
            rows[digest] = {"digest": digest, "outcome": "deleted", "detail": ""}
    for failure in response.get("failures", []):
        digest = failure.get("imageId", {}).get("imageDigest")
        code = failure.get("failureCode", "")
        outcome, explanation = FAILURE_OUTCOMES.get(
            code, ("failed", f"unknown failure code {code!r}")
        )
        reason = failure.get("failureReason", "")
        if digest and digest not in rows:
            rows[digest] = {
                "digest": digest,
                "outcome": outcome,
                "detail": f"{explanation}: {reason}" if reason else explanation,
                "data": {"failureCode": code},
            }
    for digest in batch:
        if digest not in rows:
            rows[digest] = {"digest": digest, "outcome": "unreported", "detail": ""}
    out = [rows[d] for d in batch]
    for row in out:
        row["intent_id"] = intent_id
    return out


def _finish_images(
    ctx: _Context,
    proposal: Proposal,
    wanted: list[str],
    missing: set[str],
    skip_rows: list[dict[str, Any]],
    outcomes: dict[str, str],
    already: int,
) -> None:
    deleted = sum(1 for o in outcomes.values() if o == "deleted")
    gone = len(missing) + sum(1 for o in outcomes.values() if o == "gone")
    failed = sum(1 for o in outcomes.values() if o == "failed")
    retry = sum(1 for o in outcomes.values() if o == "retry")
    skipped = len(skip_rows) + sum(1 for o in outcomes.values() if o == "skipped")
    pending = len(wanted) - len(missing) - len(skip_rows) - len(outcomes)
    verb = "would delete" if ctx.dry_run else "deleted"
    parts = [f"{verb} {deleted}", f"already gone {gone}"]
    if already:
        parts.append(f"done by an earlier run {already}")
    if skipped:
        parts.append(f"skipped {skipped}")
    if failed:
        parts.append(f"failed {failed}")
    if retry or pending > 0:
        parts.append(f"left for the next apply {retry + max(pending, 0)}")
    detail = ", ".join(parts)
    if failed:
        _finish(ctx, proposal, ProposalState.FAILED, detail)
    elif retry or pending > 0:
        ctx.result.states[proposal.id] = (proposal.state.value, detail)  # stays approved
    elif skipped:
        _finish(ctx, proposal, ProposalState.SKIPPED, detail)
    else:
        _finish(ctx, proposal, ProposalState.APPLIED, detail)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# ---- repository-level actions --------------------------------------------------------


def _describe_repository(client: Any, proposal: Proposal) -> dict[str, Any] | None:
    try:
        response = client.describe_repositories(
            registryId=proposal.account, repositoryNames=[proposal.repository]
        )
    except ClientError as exc:
        if _error_code(exc) == "RepositoryNotFoundException":
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
        if _error_code(exc) in (missing, "RepositoryNotFoundException"):
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
        "repository": _jsonable(repo),
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
        "deleted empty repository",
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


# IAM actions each proposal action needs (for the "cleaner" policy in cron/).
PERMISSIONS: dict[Action, tuple[str, ...]] = {
    Action.DELETE_IMAGES: (
        "ecr:DescribeImages",
        "ecr:ListImages",
        "ecr:BatchGetImage",
        "ecr:BatchDeleteImage",
    ),
    Action.DELETE_REPOSITORY: (
        "ecr:DescribeRepositories",
        "ecr:ListImages",
        "ecr:GetRepositoryPolicy",
        "ecr:GetLifecyclePolicy",
        "ecr:DeleteRepository",
    ),
    Action.ENABLE_SCAN_ON_PUSH: ("ecr:DescribeRepositories", "ecr:PutImageScanningConfiguration"),
    Action.SET_TAG_IMMUTABILITY: ("ecr:DescribeRepositories", "ecr:PutImageTagMutability"),
    Action.REMOVE_POLICY_STATEMENT: (
        "ecr:DescribeRepositories",
        "ecr:GetRepositoryPolicy",
        "ecr:SetRepositoryPolicy",
        "ecr:DeleteRepositoryPolicy",
    ),
    Action.PUT_LIFECYCLE_POLICY: (
        "ecr:DescribeRepositories",
        "ecr:GetLifecyclePolicy",
        "ecr:PutLifecyclePolicy",
    ),
}


def required_permissions(actions: Iterable[Action] = tuple(Action)) -> list[str]:
    """Sorted IAM actions apply needs for ``actions`` (all by default)."""
    return sorted({p for action in actions for p in PERMISSIONS[action]})


REPOSITORY_STEPS: dict[Action, Callable[[Any, Proposal], _Step]] = {
    Action.DELETE_REPOSITORY: _step_delete_repository,
    Action.ENABLE_SCAN_ON_PUSH: _step_scan_on_push,
    Action.SET_TAG_IMMUTABILITY: _step_tag_immutability,
    Action.REMOVE_POLICY_STATEMENT: _step_remove_statement,
    Action.PUT_LIFECYCLE_POLICY: _step_lifecycle,
}


def _apply_repository(ctx: _Context, proposal: Proposal) -> None:
    client = ctx.clients(proposal.account, proposal.region)
    step = REPOSITORY_STEPS[proposal.action](client, proposal)
    if step.state is not None:
        ctx.recorder.write(proposal, [{"outcome": step.state.value, "detail": step.detail}])
        _finish(ctx, proposal, step.state, step.detail)
        return
    assert step.write is not None
    if ctx.dry_run:
        ctx.recorder.write(proposal, [{"outcome": "would-apply", "detail": step.detail}])
        ctx.result.states[proposal.id] = ("would-apply", step.detail)
        return
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
        code = _error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
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
        _finish(ctx, proposal, state, str(exc))
        return
    ctx.recorder.write(
        proposal, [{"intent_id": intent_id, "outcome": "applied", "detail": step.detail}]
    )
    _finish(ctx, proposal, ProposalState.APPLIED, step.detail)


# --------------------------------------------------------------------------- reconcile


def reconcile(ctx: _Context) -> int:
    """Answer intents a killed run left open; returns how many were reconciled."""
    intents = ctx.store.open_intents()
    for intent in intents:
        stored = ctx.store.get(intent.proposal_id) if intent.proposal_id else None
        if stored is None:
            ctx.store.audit(
                "reconcile",
                "not-deleted",
                intent_id=intent.id,
                actor=ctx.recorder.actor,
                run_id=ctx.result.run_id,
                detail="intent of an unknown proposal",
            )
            continue
        proposal = stored.proposal
        if proposal.action != Action.DELETE_IMAGES:
            ctx.recorder.write(
                proposal,
                [
                    {
                        "intent_id": intent.id,
                        "outcome": "interrupted",
                        "detail": f"run {intent.run_id} stopped during this write; re-checked now",
                    }
                ],
            )
            continue
        digests = list(intent.data.get("digests", []))
        client = ctx.clients(proposal.account, proposal.region)
        live, _missing = describe_digests(client, proposal, digests)
        ctx.recorder.write(
            proposal,
            [
                {
                    "digest": d,
                    "intent_id": intent.id,
                    "outcome": "not-deleted" if d in live else "deleted",
                    "detail": (
                        f"run {intent.run_id} stopped before deleting it; retried now"
                        if d in live
                        else f"deleted by run {intent.run_id}, which stopped before recording it"
                    ),
                }
                for d in digests
            ],
        )
    return len(intents)


# --------------------------------------------------------------------------- entry point


def apply(
    store: Store,
    clients: ClientFactory,
    config: Config,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    actor: str | None = None,
    ids: Iterable[str] | None = None,
    approved: bool = True,
    stop: threading.Event | None = None,
) -> ApplyResult:
    """Apply every eligible proposal (or only ``ids``) under the store's ``apply`` lock.

    ``stop`` (set by SIGTERM in the scheduler) is checked before each proposal: the one
    in progress finishes its batches and records them; the rest are left for next time.

    ``approved=False`` leaves approved proposals alone (the nightly job passes
    ``config.policy.apply.apply_approved``); safe proposals run when
    ``config.policy.apply.auto_safe`` is on. Raises :class:`LockHeldError` when another
    apply runs. Returns an :class:`ApplyResult`; ``result.failed`` lists failed ids.
    """
    now = now or datetime.now(UTC)
    actor = actor or whoami()
    result = ApplyResult(run_id=None, dry_run=dry_run)
    recorder = _Recorder(store, result, actor, now)
    if dry_run:
        _run(store, clients, config, now, result, recorder, ids, approved, stop)
        return result
    with store.lock("apply"):
        result.run_id = store.record_run("apply", started_at=now, source=actor)
        try:
            _run(store, clients, config, now, result, recorder, ids, approved, stop)
        except Exception as exc:
            store.finish_run(result.run_id, "failed", counts=_counts(result), errors=[str(exc)])
            raise
        except BaseException:
            # Killed (KeyboardInterrupt, a test's SimulatedCrash): the open intent row is
            # what the next run reconciles; leave the run marked as failed if we can.
            store.finish_run(
                result.run_id, "failed", counts=_counts(result), errors=["interrupted"]
            )
            raise
        status = "failed" if result.failed else "ok"
        store.finish_run(result.run_id, status, counts=_counts(result))
    return result


def _counts(result: ApplyResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in result.events:
        counts[event["outcome"]] = counts.get(event["outcome"], 0) + 1
    for state, _ in result.states.values():
        counts[f"proposals_{state}"] = counts.get(f"proposals_{state}", 0) + 1
    return counts


def _run(
    store: Store,
    clients: ClientFactory,
    config: Config,
    now: datetime,
    result: ApplyResult,
    recorder: _Recorder,
    ids: Iterable[str] | None,
    approved: bool,
    stop: threading.Event | None = None,
) -> None:
    ctx = _Context(store, clients, config, now, recorder, result)
    if not result.dry_run:
        reconcile(ctx)
    wanted = None if ids is None else list(ids)
    candidates = store.proposals(state=[ProposalState.PROPOSED, ProposalState.APPROVED], ids=wanted)
    if wanted is not None:
        known = {c.id for c in candidates}
        for proposal_id in wanted:
            if proposal_id not in known:
                result.not_eligible[proposal_id] = "unknown, or not proposed/approved"
    for stored in candidates:
        if stop is not None and stop.is_set():
            result.not_eligible[stored.id] = "not started: the run was asked to stop"
            continue
        ok, why = eligibility(stored, config, now)
        if ok and not approved and stored.state == ProposalState.APPROVED:
            ok, why = False, "approved proposals are not applied by this run (apply.apply_approved)"
        if not ok:
            result.not_eligible[stored.id] = why
            continue
        proposal = stored.proposal
        try:
            if proposal.action == Action.DELETE_IMAGES:
                _apply_images(ctx, proposal)
            elif proposal.action in REPOSITORY_STEPS:
                _apply_repository(ctx, proposal)
            else:  # pragma: no cover - every Action has a step
                raise ApplyError(f"{proposal.id}: no way to apply {proposal.action.value}")
        except (ClientError, BotoCoreError) as exc:
            # A read failed (throttled beyond botocore's retries, access denied …): nothing
            # was written for this proposal after its last recorded batch; try the next.
            recorder.write(proposal, [{"outcome": "retry", "detail": f"could not re-read: {exc}"}])
            result.states[proposal.id] = (proposal.state.value, f"could not re-read: {exc}")
