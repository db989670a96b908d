"""Image deletion (``delete-images``), one repository at a time.

1. Re-read every target with ``DescribeImages`` by digest (≤ 100 ids a call). Missing →
   recorded ``gone``, unless an earlier run of this proposal recorded its delete intent:
   then that run deleted it and lost the answer (``deleted``, ``response_lost``). A
   workload that runs it now (the in-use re-check, :mod:`hygiene.apply.in_use`), a new
   tag, a pull newer than the evidence, an index outside the proposal that now lists it,
   or a subject that exists and stays → its whole unit is ``skipped`` with the reason.
   An in-use source that cannot be read stops the proposal before anything is deleted.
   Last, a digest the deployed rules, evaluated again on the repository as it is now, do
   not delete (:mod:`hygiene.apply.recheck`) is skipped with its unit; so is one of a
   proposal applied as a safe fix that no rule whose fix is safe flags now.
2. Read each remaining manifest (``BatchGetImage``): the last re-read. A manifest that
   cannot be read is not deleted; a manifest whose ``subject`` is present in the
   repository and not being deleted is not deleted either, whatever the plan said (ECR's
   ``subjectManifestDigest`` may be absent, the manifest is the truth). The manifests go
   into the ``intent`` audit row of their batch.
3. ``BatchDeleteImage`` by digest, ≤ ``batch_size`` (≤ 100) ids a call, owners before
   what depends on them: an index before its platform manifests (ECR refuses a child an
   index still lists), a subject before its referrers (a signature never outlives a
   subject that stays). A dependent whose owner was not deleted is skipped. Every
   ``failures[]`` code is mapped explicitly (:data:`FAILURE_OUTCOMES`); each batch's
   outcomes are committed before the next.

An image whose delete intent was recorded before the batch and that is gone afterwards
is ``deleted`` (with ``data.response_lost``), never ``gone``: when the connection drops
or ECR answers 500 after deleting, botocore's retry gets ``ImageNotFound``, and the next
re-read finds nothing; neither means someone else deleted it.

Digests already recorded ``deleted``/``gone`` for the proposal (by an earlier run, or by
:func:`hygiene.apply.reconcile.reconcile`) are never sent again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hygiene.apply.context import Context, finish
from hygiene.apply.recheck import rules_now
from hygiene.apply.registry import (
    MAX_IDS,
    THROTTLING,
    chunks,
    describe_digests,
    error_code,
    get_manifests,
    jsonable,
    repository_links,
)
from hygiene.inventory import INDEX_MEDIA_TYPES
from hygiene.model import Action, Proposal, ProposalState

# BatchDeleteImage failures[].failureCode → (outcome, explanation). ``retry`` leaves the
# proposal approved for the next apply. ImageNotFound is not here: a digest this run
# sent after recording its intent and that ECR no longer has was deleted by this run.
FAILURE_OUTCOMES: dict[str, tuple[str, str]] = {
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
DONE_OUTCOMES = ("deleted", "gone")  # a digest recorded with one of these is never sent again


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def recorded_digests(ctx: Context, proposal: Proposal) -> set[str]:
    entries = ctx.store.audit_log(
        proposal_id=proposal.id, outcome=DONE_OUTCOMES, include_dry_run=False
    )
    return {e.digest for e in entries if e.digest}


def _intended_digests(ctx: Context, proposal: Proposal) -> dict[str, str | None]:
    """Digest → run id, for every digest an earlier apply of this proposal may have
    deleted: its delete intent was recorded, and ECR never answered for it (no outcome
    row, or ``retry`` after the call failed). A digest ECR explicitly refused
    (``failures[]``: KmsError, ImageReferencedByManifestList …) is not one: if it is
    gone now, someone else deleted it."""
    if ctx.dry_run:
        return {}
    rows = ctx.store.audit_log(proposal_id=proposal.id, include_dry_run=False)
    answered = {
        (row.intent_id, row.digest)
        for row in rows
        if row.intent_id is not None
        and row.digest
        and (row.outcome != "retry" or (row.data or {}).get("failureCode"))
    }
    out: dict[str, str | None] = {}
    for intent in rows:
        if intent.outcome != "intent":
            continue
        for digest in intent.data.get("digests", []) or []:
            if (intent.id, str(digest)) not in answered:
                out[str(digest)] = intent.run_id
    return out


def subject_in(manifest: Mapping[str, str] | None) -> str | None:
    """The ``subject`` digest a stored manifest names (None: none, or not JSON)."""
    if not manifest:
        return None
    try:
        body = json.loads(manifest.get("manifest") or "")
    except ValueError:
        return None
    subject = body.get("subject") if isinstance(body, dict) else None
    digest = subject.get("digest") if isinstance(subject, dict) else None
    return str(digest) if digest else None


@dataclass
class Deletion:
    """What :func:`delete_images` did with each digest it was given."""

    wanted: list[str]
    missing: set[str] = field(default_factory=set)  # gone before this run touched them
    lost: set[str] = field(default_factory=set)  # of those, deleted by an earlier run
    skip_rows: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # digest → outcome of its batch

    @property
    def complete(self) -> bool:
        """Every digest is deleted or gone: nothing skipped, failed or left over."""
        done = set(self.missing) | {d for d, o in self.outcomes.items() if o in DONE_OUTCOMES}
        return not self.skip_rows and set(self.wanted) <= done


def apply_images(ctx: Context, proposal: Proposal, *, safe_only: bool = False) -> None:
    """Re-check, save and delete the proposal's images; record every digest's outcome.
    ``safe_only``: it runs as a safe fix (no approval, or no grace period served), so a
    rule whose fix is safe must flag each image now."""
    done = recorded_digests(ctx, proposal)
    wanted = [d for d in proposal.target.get("digests", []) if d not in done]
    units = [list(u) for u in proposal.evidence.get("units", [])]
    deletion = delete_images(ctx, proposal, wanted, units, safe_only=safe_only)
    _finish_images(ctx, proposal, deletion, len(done))


def delete_images(
    ctx: Context,
    proposal: Proposal,
    wanted: Sequence[str],
    units: Sequence[Sequence[str]],
    *,
    safe_only: bool = False,
) -> Deletion:
    """Delete ``wanted`` (digests of ``proposal``'s repository, never split across
    ``units``) after re-checking each against ``proposal.evidence["images"]`` and the live
    registry (module docstring). Records every outcome; returns them. ``safe_only``: only
    what a rule whose fix is safe flags now (:meth:`~hygiene.apply.recheck.RulesNow.why_not`)."""
    client = ctx.clients(proposal.account, proposal.region)
    evidence = {i["digest"]: i for i in proposal.evidence.get("images", [])}
    deletion = Deletion(wanted=list(wanted))
    unit_of: dict[str, int] = {}
    all_units = [list(u) for u in units]
    for number, unit in enumerate(all_units):
        for digest in unit:
            unit_of.setdefault(digest, number)
    for digest in wanted:
        if digest not in unit_of:
            unit_of[digest] = len(all_units)
            all_units.append([digest])

    live, missing = describe_digests(client, proposal, wanted)
    deletion.missing = missing
    intended = _intended_digests(ctx, proposal) if missing else {}
    deletion.lost = {d for d in missing if d in intended}
    ctx.recorder.write(proposal, [_gone_row(d, intended) for d in wanted if d in missing])

    reasons: dict[str, str] = {}
    if live and ctx.in_use is not None:
        # right before deleting: does a workload run any of them now (docs/in-use.md)?
        # Raises InUseUnknownError when a source cannot be read: nothing is deleted.
        ctx.in_use.refresh()
        for digest, detail in live.items():
            why = ctx.in_use.reason(
                proposal.account,
                proposal.region,
                proposal.repository,
                digest,
                detail.get("imageTags", []),
            )
            if why:
                reasons[digest] = f"in use now: {why}"
    for digest, detail in live.items():
        if digest in reasons:
            continue
        seen = evidence.get(digest, {})
        new_tags = sorted(set(detail.get("imageTags", [])) - set(seen.get("tags", [])))
        if new_tags:
            reasons[digest] = f"new tag(s) since the proposal: {', '.join(new_tags)}"
            continue
        pulled = _parse_time(detail.get("lastRecordedPullTime"))
        before = _parse_time(seen.get("last_pull"))
        if pulled is not None and (before is None or pulled > before):
            reasons[digest] = f"pulled at {pulled.isoformat()} after the proposal"

    links = repository_links(client, proposal) if live else None
    parents = links.parents if links else {}
    subjects = dict(links.subjects) if links else {}
    present = links.present if links else set()
    # the last re-read: each manifest about to be deleted, and the subject it names
    manifests = get_manifests(client, proposal, sorted(live)) if live else {}
    for digest in live:
        if digest not in manifests:
            reasons.setdefault(digest, "its manifest could not be read again; not deleted")
            continue
        subject = subject_in(manifests[digest])
        if subject is not None and subject in present and subject != digest:
            subjects[digest] = subject

    skipped_units = {unit_of[d] for d in reasons}

    def keep_dependents() -> None:
        """A kept image keeps its children and referrers: iterate to a fixed point."""
        while True:
            deletable = {d for d in live if unit_of[d] not in skipped_units}
            newly = False
            for digest in sorted(deletable):
                outside = parents.get(digest, set()) - deletable
                subject = subjects.get(digest)
                if outside:
                    why = "listed by image index(es) not being deleted: " + ", ".join(
                        sorted(outside)
                    )
                elif subject is not None and subject not in deletable:
                    why = f"its subject {subject} exists and is not being deleted"
                else:
                    continue
                reasons.setdefault(digest, why)
                skipped_units.add(unit_of[digest])
                newly = True
            if not newly:
                return

    keep_dependents()
    if any(unit_of[d] not in skipped_units for d in live):
        # Last: the deployed rules, evaluated again on the repository as it is now. A
        # digest no deleting rule flags now, or that a protection keeps, stays, whatever
        # the stored proposal says (hygiene.apply.recheck).
        now_rules = rules_now(client, proposal, ctx.config, ctx.now)
        whole = proposal.action is Action.DELETE_REPOSITORY  # an abandoned repository (RP003)
        for digest in live:
            why_not = now_rules.why_not(digest, whole_repository=whole, safe_only=safe_only)
            if why_not and unit_of[digest] not in skipped_units:
                reasons[digest] = why_not
                skipped_units.add(unit_of[digest])
        keep_dependents()

    for digest in wanted:
        if digest in live and unit_of[digest] in skipped_units:
            why = reasons.get(digest) or next(
                (
                    f"unit member {m[:19]}…: {reasons[m]}"
                    for m in all_units[unit_of[digest]]
                    if m in reasons
                ),
                "its unit changed since the proposal",
            )
            deletion.skip_rows.append({"digest": digest, "outcome": "skipped", "detail": why})
    ctx.recorder.write(proposal, deletion.skip_rows)

    def is_index(digest: str) -> bool:
        media = live[digest].get("imageManifestMediaType") or evidence.get(digest, {}).get(
            "media_type"
        )
        return media in INDEX_MEDIA_TYPES or bool(evidence.get(digest, {}).get("is_index"))

    to_delete = [d for d in wanted if d in live and unit_of[d] not in skipped_units]
    owners = _owners(to_delete, parents, subjects)
    batch_size = min(ctx.config.policy.apply.batch_size, MAX_IDS)
    batches: list[list[str]] = []
    for level in _levels(to_delete, owners, is_index):
        batches += list(chunks(level, batch_size))

    for number, planned in enumerate(batches):
        # an owner that was not deleted (skipped, failed, left for later) keeps its
        # dependents: deleting a child its index still lists fails, a signature whose
        # subject stays must stay
        batch: list[tuple[str, list[str]]] = []
        held: list[tuple[str, list[str]]] = []
        for digest in planned:
            kept_owner = sorted(
                o for o in owners.get(digest, ()) if deletion.outcomes.get(o) != "deleted"
            )
            (held if kept_owner else batch).append((digest, kept_owner))
        held_rows = [
            {
                "digest": d,
                "outcome": "skipped",
                "detail": f"not deleted because {', '.join(o)} was not deleted",
            }
            for d, o in held
        ]
        ctx.recorder.write(proposal, held_rows)
        deletion.outcomes.update({row["digest"]: "skipped" for row in held_rows})
        digests = [d for d, _ in batch]
        if not digests:
            continue
        if ctx.dry_run:
            ctx.recorder.write(
                proposal,
                [{"digest": d, "outcome": "deleted", "detail": "dry run"} for d in digests],
            )
            deletion.outcomes.update(dict.fromkeys(digests, "deleted"))
            continue
        ctx.store.check_lock()  # taken over while this run was frozen: delete nothing more
        (intent_id,) = ctx.recorder.write(
            proposal,
            [
                {
                    "outcome": "intent",
                    "detail": f"batch {number + 1}/{len(batches)}: delete {len(digests)} image(s)",
                    "data": {
                        "digests": digests,
                        "manifests": {d: manifests.get(d) for d in digests},
                        "details": {d: jsonable(live[d]) for d in digests},
                    },
                }
            ],
        )
        rows, answered = _delete_batch(client, proposal, digests, intent_id)
        ctx.recorder.write(proposal, rows)
        deletion.outcomes.update({row["digest"]: row["outcome"] for row in rows})
        if not answered:
            break  # ECR did not answer: leave the rest for the next apply
    return deletion


def _gone_row(digest: str, intended: Mapping[str, str | None]) -> dict[str, Any]:
    if digest in intended:
        return {
            "digest": digest,
            "outcome": "deleted",
            "detail": f"deleted by apply run {intended[digest]}, whose answer was lost",
            "data": {"response_lost": True},
        }
    return {"digest": digest, "outcome": "gone", "detail": "already gone before apply"}


def _owners(
    digests: Sequence[str], parents: Mapping[str, set[str]], subjects: Mapping[str, str]
) -> dict[str, set[str]]:
    """Digest → the digests among ``digests`` it depends on (indexes listing it, its
    subject): those must be deleted first."""
    chosen = set(digests)
    owners: dict[str, set[str]] = {}
    for digest in digests:
        mine = parents.get(digest, set()) & chosen
        subject = subjects.get(digest)
        if subject in chosen:
            mine = mine | {subject}
        if mine:
            owners[digest] = mine
    return owners


def _levels(
    digests: Sequence[str], owners: Mapping[str, set[str]], is_index: Any
) -> list[list[str]]:
    """``digests`` in deletion order: level 0 has no owner among them, level n+1 depends
    only on levels ≤ n; indexes first within a level (in ``digests`` order otherwise)."""
    level: dict[str, int] = {}

    def depth(digest: str, seen: frozenset[str] = frozenset()) -> int:
        if digest not in level:
            above = [o for o in owners.get(digest, ()) if o not in seen]
            level[digest] = 1 + max((depth(o, seen | {digest}) for o in above), default=-1)
        return level[digest]

    for digest in digests:
        depth(digest)
    out: list[list[str]] = []
    for number in range(max(level.values(), default=-1) + 1):
        members = [d for d in digests if level[d] == number]
        out.append([d for d in members if is_index(d)] + [d for d in members if not is_index(d)])
    return [batch for batch in out if batch]


def _delete_batch(
    client: Any, proposal: Proposal, batch: list[str], intent_id: int
) -> tuple[list[dict[str, Any]], bool]:
    """One BatchDeleteImage call (its intent is recorded) → one outcome row per digest,
    and whether ECR answered at all.

    Whatever ECR answered, a digest that is gone afterwards was deleted by this call:
    ``ImageNotFound`` in ``failures[]`` (botocore retried a request whose first answer
    was lost), no answer at all (connection dropped, 5xx after the delete), or an answer
    that leaves it out (moto does this for untagged images). The registry is re-read to
    tell, and such rows carry ``data.response_lost``.
    """
    try:
        response = client.batch_delete_image(
            registryId=proposal.account,
            repositoryName=proposal.repository,
            imageIds=[{"imageDigest": d} for d in batch],
        )
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        retry = code in THROTTLING or isinstance(exc, BotoCoreError)
        rows = [
            {"digest": d, "outcome": "unanswered", "detail": f"no answer: {code}: {exc}"}
            for d in batch
        ]
        return _settle(client, proposal, rows, intent_id, "retry" if retry else "failed"), False
    attempts = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
    rows = _delete_outcomes(batch, response, attempts)
    return _settle(client, proposal, rows, intent_id, "retry"), True


def _settle(
    client: Any,
    proposal: Proposal,
    rows: list[dict[str, Any]],
    intent_id: int,
    if_present: str,
) -> list[dict[str, Any]]:
    """Decide the rows ECR did not answer for by re-reading the registry: gone → deleted
    (``response_lost`` unless ECR simply left it out of a good answer), present →
    ``if_present``, unknown (the re-read failed) → retry."""
    open_rows = [r for r in rows if r["outcome"] in ("unanswered", "not-found", "unreported")]
    if open_rows:
        try:
            still, _ = describe_digests(client, proposal, [r["digest"] for r in open_rows])
        except (ClientError, BotoCoreError) as exc:
            still, reread_error = None, f"; re-reading failed too: {exc}"
        else:
            reread_error = ""
        for row in open_rows:
            why = row["detail"]
            if still is not None and row["digest"] not in still:
                if row["outcome"] == "unreported":
                    row["detail"] = f"{why}; confirmed gone by re-reading"
                else:
                    row["detail"] = f"gone after this run's delete request ({why})"
                    row["data"] = {**row.get("data", {}), "response_lost": True}
                row["outcome"] = "deleted"
            elif still is None:
                row["outcome"] = "retry"
                row["detail"] = f"{why}{reread_error}; the next apply re-reads it"
            else:
                row["outcome"] = if_present
                row["detail"] = f"{why}; still present"
    for row in rows:
        row["intent_id"] = intent_id
    return rows


def _delete_outcomes(
    batch: list[str], response: dict[str, Any], attempts: int
) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for image_id in response.get("imageIds", []):
        digest = image_id.get("imageDigest")
        if digest:
            rows[digest] = {"digest": digest, "outcome": "deleted", "detail": ""}
    for failure in response.get("failures", []):
        digest = failure.get("imageId", {}).get("imageDigest")
        if not digest or digest in rows:
            continue
        code = failure.get("failureCode", "")
        reason = failure.get("failureReason", "")
        if code == "ImageNotFound":
            rows[digest] = {
                "digest": digest,
                "outcome": "not-found",
                "detail": f"ECR answered ImageNotFound after {attempts} retried attempt(s)",
                "data": {"failureCode": code, "retry_attempts": attempts},
            }
            continue
        outcome, explanation = FAILURE_OUTCOMES.get(
            code, ("failed", f"unknown failure code {code!r}")
        )
        rows[digest] = {
            "digest": digest,
            "outcome": outcome,
            "detail": f"{explanation}: {reason}" if reason else explanation,
            "data": {"failureCode": code},
        }
    for digest in batch:
        if digest not in rows:
            rows[digest] = {
                "digest": digest,
                "outcome": "unreported",
                "detail": "not reported by BatchDeleteImage",
            }
    return [rows[d] for d in batch]


def outcome_of(deletion: Deletion, already: int, dry_run: bool) -> tuple[ProposalState | None, str]:
    """How a deletion ends (None: not finished, the proposal stays approved) and the
    one-line account of it."""
    outcomes = deletion.outcomes
    deleted = len(deletion.lost) + sum(1 for o in outcomes.values() if o == "deleted")
    gone = len(deletion.missing - deletion.lost) + sum(1 for o in outcomes.values() if o == "gone")
    failed = sum(1 for o in outcomes.values() if o == "failed")
    retry = sum(1 for o in outcomes.values() if o == "retry")
    skipped = len(deletion.skip_rows) + sum(1 for o in outcomes.values() if o == "skipped")
    pending = len(deletion.wanted) - len(deletion.missing) - len(deletion.skip_rows)
    pending -= len(outcomes)
    verb = "would delete" if dry_run else "deleted"
    parts = [f"{verb} {deleted}", f"already gone {gone}"]
    if already:
        parts.append(f"done by an earlier run {already}")
    if skipped:
        first = next((row["detail"] for row in deletion.skip_rows if row.get("detail")), "")
        parts.append(f"skipped {skipped}" + (f" (e.g. {first})" if first else ""))
    if failed:
        parts.append(f"failed {failed}")
    if retry or pending > 0:
        parts.append(f"left for the next apply {retry + max(pending, 0)}")
    detail = ", ".join(parts)
    if failed:
        return ProposalState.FAILED, detail
    if retry or pending > 0:
        return None, detail
    if skipped:
        return ProposalState.SKIPPED, detail
    return ProposalState.APPLIED, detail


def _finish_images(ctx: Context, proposal: Proposal, deletion: Deletion, already: int) -> None:
    state, detail = outcome_of(deletion, already, ctx.dry_run)
    if state is None:
        ctx.result.states[proposal.id] = (proposal.state.value, detail)  # stays approved
    else:
        finish(ctx, proposal, state, detail)
