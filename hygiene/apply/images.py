"""Image deletion (``delete-images``), one repository at a time.

1. Re-read every target with ``DescribeImages`` by digest (≤ 100 ids a call). Missing →
   recorded ``gone``. A workload that runs it now (the in-use re-check,
   :mod:`hygiene.apply.in_use`), a new tag, a pull newer than the evidence, an index
   outside the proposal that now lists it, or (for a referrer) a subject that exists and
   is kept, or (last) a digest the deployed rules, evaluated again on the repository as
   it is now, do not delete (:mod:`hygiene.apply.recheck`) → its whole unit is
   ``skipped`` with the reason. An in-use source that cannot
   be read stops the proposal before anything is deleted.
2. Save each manifest (``BatchGetImage``) into the ``intent`` audit row of its batch.
3. ``BatchDeleteImage`` by digest, ≤ ``batch_size`` (≤ 100) ids a call, index batches
   before child batches; every ``failures[]`` code is mapped explicitly
   (:data:`FAILURE_OUTCOMES`); each batch's outcomes are committed before the next.

Digests already recorded ``deleted``/``gone`` for the proposal (by an earlier run, or by
:func:`hygiene.apply.reconcile.reconcile`) are never sent again.
"""

from __future__ import annotations

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
from hygiene.model import Proposal, ProposalState

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
DONE_OUTCOMES = ("deleted", "gone")  # a digest recorded with one of these is never sent again


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _recorded_digests(ctx: Context, proposal: Proposal) -> set[str]:
    entries = ctx.store.audit_log(
        proposal_id=proposal.id, outcome=DONE_OUTCOMES, include_dry_run=False
    )
    return {e.digest for e in entries if e.digest}


def apply_images(ctx: Context, proposal: Proposal) -> None:
    """Re-check, save and delete the proposal's images; record every digest's outcome."""
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

    parents, subjects = repository_links(client, proposal) if live else ({}, {})
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
        for digest in live:
            why_not = now_rules.why_not(digest)
            if why_not and unit_of[digest] not in skipped_units:
                reasons[digest] = why_not
                skipped_units.add(unit_of[digest])
        keep_dependents()

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
    batches = list(chunks([d for d in ordered if is_index(d)], batch_size))
    batches += list(chunks([d for d in ordered if not is_index(d)], batch_size))

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
                        "details": {d: jsonable(live[d]) for d in batch},
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
            code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
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
    ctx: Context,
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
        first = next((row["detail"] for row in skip_rows if row.get("detail")), "")
        parts.append(f"skipped {skipped}" + (f" (e.g. {first})" if first else ""))
    if failed:
        parts.append(f"failed {failed}")
    if retry or pending > 0:
        parts.append(f"left for the next apply {retry + max(pending, 0)}")
    detail = ", ".join(parts)
    if failed:
        finish(ctx, proposal, ProposalState.FAILED, detail)
    elif retry or pending > 0:
        ctx.result.states[proposal.id] = (proposal.state.value, detail)  # stays approved
    elif skipped:
        finish(ctx, proposal, ProposalState.SKIPPED, detail)
    else:
        finish(ctx, proposal, ProposalState.APPLIED, detail)
